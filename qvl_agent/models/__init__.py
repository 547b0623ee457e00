"""Models: turn a prompt and a screenshot into response text."""

from __future__ import annotations

from typing import Any

from qvl_agent.models.base import Model, ModelError, Response

__all__ = ["Model", "ModelError", "Response", "load_model"]

SCRIPTED_PREFIX = "scripted:"
LOCAL_PREFIX = "local:"


def load_model(spec: str, *, endpoint: str | None = None, api_key: str | None = None,
               **options: Any) -> Model:
    """The model ``spec`` names.

    * with ``endpoint``: model ``spec`` on an OpenAI-compatible server (vLLM, SGLang,
      ``qvl-agent serve``, a hosted API), authenticated with ``api_key`` when given;
      ``options`` go to :class:`~qvl_agent.models.openai_api.EndpointModel`;
    * ``scripted:FILE.jsonl``: replays recorded answers; ``options`` (generation settings
      meant for a real model) do not apply to it and are ignored;
    * ``[local:]HUB_ID_OR_DIR``: a Qwen2.5-VL checkpoint run with transformers;
      ``options`` go to :class:`~qvl_agent.models.local.LocalModel`.
    """
    if endpoint is not None:
        from qvl_agent.models.openai_api import EndpointModel

        return EndpointModel(endpoint, spec, api_key=api_key, **options)
    if spec.startswith(SCRIPTED_PREFIX):
        from qvl_agent.models.scripted import ScriptedModel

        return ScriptedModel.from_file(spec[len(SCRIPTED_PREFIX) :])
    from qvl_agent.models.hub import before_local_load
    from qvl_agent.models.local import LocalModel

    source = spec.removeprefix(LOCAL_PREFIX)
    if source.endswith(".jsonl"):  # never a checkpoint: recorded answers without the prefix
        raise ModelError(f"{source} looks like a scripted model's answers (JSON Lines): use "
                         f"--model {SCRIPTED_PREFIX}{source}")
    before_local_load(source)  # a Hub that cannot be reached: fail fast, or use the cache
    return LocalModel(source, **options)
