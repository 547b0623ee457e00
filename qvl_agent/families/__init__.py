"""Model families: each checkpoint family's trained prompt, frame, history and parser.

``get_family(name)`` gives one; :func:`qvl_agent.families.detect.choose_family` picks one
from a checkpoint. A new family is a module with a ``FAMILY`` record (see
:class:`~qvl_agent.families.base.Family`), or a ``FAMILIES`` tuple of them (the grounding-only
families of :mod:`~qvl_agent.families.grounders`), named in ``_MODULES`` below.
"""

from __future__ import annotations

from importlib import import_module

from qvl_agent.families.base import Family, FamilyError, Grounding, Located, Turn

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "Family", "FamilyError", "Grounding", "Located", "Turn",
           "family_names", "get_family", "register"]

DEFAULT_FAMILY = "qwen2.5-vl"
# Registration order is detection order for names: the more specific first.
_MODULES = ("ui_tars", "gui_owl", "grounders", "qwen3vl", "qwen25vl")

FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    if family.name in FAMILIES and FAMILIES[family.name] is not family:
        raise FamilyError(f"two families are named {family.name!r}")
    FAMILIES[family.name] = family
    return family


def get_family(name: str | Family | None) -> Family:
    """The family called ``name`` (None: the default)."""
    if isinstance(name, Family):
        return name
    family = FAMILIES.get(name or DEFAULT_FAMILY)
    if family is None:
        raise FamilyError(f"unknown model family {name!r}; known: {', '.join(family_names())}")
    return family


def family_names() -> list[str]:
    return list(FAMILIES)


for _name in _MODULES:
    _module = import_module(f"qvl_agent.families.{_name}")
    for _family in getattr(_module, "FAMILIES", None) or (_module.FAMILY,):
        register(_family)
