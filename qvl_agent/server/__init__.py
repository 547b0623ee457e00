"""``qvl-agent serve``: an OpenAI-compatible chat-completions server around LocalModel, so
that several agents share one GPU. ``completions`` turns requests into answers; ``httpd``
speaks HTTP."""
