"""What one request or connection may cost ``qvl-agent serve``: the defaults of its limits.

Light on purpose (no imports): the command line shows these defaults in its help.
"""

# Prompt tokens (text + image) one request may have when the model's context allows more:
# the largest image the checkpoint's max_pixels gives (16384 tokens) plus a long history.
# Memory and time of the prefill grow with it (quadratically with eager attention).
MAX_PROMPT_TOKENS = 32768
# Pixels one request's image may have, checked from its header before it is decoded (an 8K
# screen). The model sees at most its max_pixels anyway; this bounds the decoding.
MAX_IMAGE_PIXELS = 7680 * 4320
# Images decoded at once: each may briefly take several bytes per pixel.
DECODERS = 2
# A 4K screenshot as PNG in base64 is ~30 MB.
MAX_BODY_BYTES = 64 * 1024 * 1024
# Seconds a connection may send nothing while the server waits for it (a request, the rest
# of its headers or body); the wait for the model is not counted.
READ_TIMEOUT = 30.0
# Connections (threads) at once: well above the default queue of 64, so that the idle
# keep-alive connections of many agents fit, and bounded, so that thousands of idle sockets
# cannot exhaust threads.
MAX_CONNECTIONS = 256
