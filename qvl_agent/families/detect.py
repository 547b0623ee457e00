"""Which family a checkpoint belongs to, when the user did not say (``--family``).

The checkpoint's name decides first (hub id, directory name or the name an endpoint serves,
then ``_name_or_path`` in its config, which a fine-tune often keeps from its base): fine-tunes
share their base's architecture, so only the name tells UI-TARS-1.5 from GUI-Owl or Holo1.5.
A name match is dropped when the config says the checkpoint is another model type. Then the
config's architectures decide (a Qwen3-VL class: ``qwen3-vl``). Anything else is taken for a
Qwen2.5-VL fine-tune trained on its tool calls, and the notice says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qvl_agent.families import DEFAULT_FAMILY, FAMILIES, Family, get_family

SCRIPTED_PREFIX = "scripted:"
LOCAL_PREFIX = "local:"


@dataclass(frozen=True)
class Choice:
    family: Family
    # Why, for the one-line notice and the record ("from the name ...", "--family", ...).
    reason: str

    @property
    def notice(self) -> str:
        return f"model family: {self.family.name} ({self.reason})"


def choose_family(model: str, requested: str | None = None, endpoint: str | None = None) -> Choice:
    """The family for ``model`` as the CLI's ``--model`` names it (a hub id, a directory,
    ``scripted:FILE``, or with ``endpoint`` the served name)."""
    if requested:
        return Choice(get_family(requested), "chosen with --family")
    if endpoint is None and model.startswith(SCRIPTED_PREFIX):
        return Choice(get_family(DEFAULT_FAMILY),
                      "a scripted model; --family says which family its answers are in")
    spec = model if endpoint is not None else model.removeprefix(LOCAL_PREFIX)
    config = {} if endpoint is not None else read_config(spec)
    names = [spec, *(str(config[k]) for k in ("_name_or_path",) if k in config)]
    model_type = config.get("model_type")
    for name in names:  # the name the user gave first, then the one its config keeps
        for family in FAMILIES.values():
            if not any(re.search(pattern, _last_parts(name), re.I) for pattern in family.names):
                continue
            if model_type and model_type not in family.model_types:
                continue  # e.g. a GUI-Owl-1.5 name on a Qwen3-VL checkpoint
            return Choice(family, f"from the name {_last_parts(name)!r}; --family overrides")
    architectures = [str(a) for a in config.get("architectures") or []]
    shown = _last_parts(spec)
    for family in FAMILIES.values():
        if any(a in family.architectures for a in architectures) and \
                (not model_type or model_type in family.model_types):
            return Choice(family, f"{shown!r} is a {architectures[0]} of no known fine-tune: "
                                  f"using {family.name}; pass --family if it was trained on "
                                  "another format")
    return Choice(get_family(DEFAULT_FAMILY),
                  f"{shown!r} is no known fine-tune: falling back to {DEFAULT_FAMILY}; pass "
                  "--family if it was trained on another format")


def read_config(spec: str) -> dict[str, Any]:
    """config.json of a checkpoint directory, or of a hub id in the local cache ({} when
    neither is at hand; nothing is downloaded)."""
    path = Path(spec).expanduser()
    candidates = [path / "config.json"] if path.is_dir() else []
    if not candidates:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return {}
        try:
            cached = try_to_load_from_cache(spec, "config.json")
        except Exception:  # not a valid repo id
            return {}
        if isinstance(cached, str):
            candidates = [Path(cached)]
    for candidate in candidates:
        try:
            config = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(config, dict):
            return config
    return {}


def _last_parts(name: str) -> str:
    """The part of a name that names the model: ``org/Model`` of a hub id, a path's last
    component."""
    name = name.rstrip("/")
    if Path(name).expanduser().exists() or name.startswith(("/", ".", "~")):
        parts = Path(name).parts
        # A snapshot in the Hugging Face cache: .../models--Org--Name/snapshots/<hash>
        cached = [p for p in parts if p.startswith("models--")]
        return cached[-1].removeprefix("models--").replace("--", "/") if cached else parts[-1]
    return name
