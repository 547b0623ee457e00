"""Before a model is loaded by its Hugging Face Hub id: can the Hub be reached at all?

huggingface_hub retries a Hub it cannot reach for every file it asks about: an id that is not
cached takes half a minute or more to fail, and one that is cached takes minutes to load
(each file's freshness check is retried before the cached copy is used). One quick probe
decides instead: Hub reachable -> load as usual; unreachable and cached -> load from the cache
only (as HF_HUB_OFFLINE=1 does); unreachable and not cached -> a ModelError at once that says
what to do.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from qvl_agent.models.base import ModelError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PROBE_SECONDS = 3.0
_TRUE = {"1", "on", "yes", "true"}


def offline_requested() -> bool:
    return any(os.environ.get(name, "").strip().lower() in _TRUE
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def unreachable(endpoint: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why ``endpoint`` cannot be reached (one attempt, honouring proxy variables); None when
    it answers at all, whatever the status."""
    import httpx

    try:
        httpx.head(endpoint, timeout=timeout)
    except httpx.HTTPError as error:
        return str(error) or type(error).__name__
    return None


def is_cached(model_id: str) -> bool:
    """The checkpoint's config.json is in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(model_id, "config.json"), str)


def go_offline() -> None:
    """Load from the cache only, from now on in this process (huggingface_hub reads the
    variable once, at import: set its constant too when it is already imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def before_local_load(model_id: str) -> None:
    """:func:`prepare_hub_load` when the local backend is installed (without it, loading
    fails at once with what to install, which matters more than the network)."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return
    prepare_hub_load(model_id)


def prepare_hub_load(model_id: str, notice: Callable[[str], None] | None = None,
                     probe: Callable[[str], str | None] = unreachable) -> None:
    """Check the Hub before ``model_id`` is loaded from it (a local path, or offline mode
    already on, needs nothing); see the module's docstring."""
    if not HUB_ID.match(model_id) or Path(model_id).exists() or offline_requested():
        return
    endpoint = hub_endpoint()
    reason = probe(endpoint)
    if reason is None:
        return
    if is_cached(model_id):
        go_offline()
        (notice or _stderr)(f"the Hugging Face Hub ({endpoint}) cannot be reached; loading "
                            f"{model_id} from the local cache only (as HF_HUB_OFFLINE=1 does)")
        return
    raise ModelError(
        f"model {model_id!r} is not in the local Hugging Face cache and the Hub ({endpoint}) "
        f"cannot be reached ({reason}). Download it where there is a network "
        f"(`hf download {model_id}`) and pass --model PATH to its directory; with the model "
        "cached, set HF_HUB_OFFLINE=1 to load it without asking the Hub"
    )


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
