"""AndroidControl's split files: which episodes make up ``--split`` and ``--subsplit``.

Both ship beside the shards in gs://gresearch/android_control/: ``splits.json`` maps
``train``, ``validation`` and ``test`` to lists of episode ids, and ``test_subsplits.json``
maps ``IDD``, ``app_unseen``, ``task_unseen`` and ``category_unseen`` to lists of test
episode ids (the sub-splits overlap; each is scored on its own).
"""

from __future__ import annotations

import json
from pathlib import Path

from qvl_agent.evaluation.samples import DatasetError

SPLITS_FILE, SUBSPLITS_FILE = "splits.json", "test_subsplits.json"
SPLIT_FILES = (SPLITS_FILE, SUBSPLITS_FILE)
SOURCE = "gs://gresearch/android_control/"


def episode_key(episode_id: object) -> str:
    """An episode id as the split files and the records agree on it ("000123" is 123)."""
    text = str(episode_id).strip()
    return str(int(text)) if text.lstrip("-").isdigit() else text


def split_episodes(folder: Path, split: str | None, subsplit: str | None) -> set[str] | None:
    """The episode ids of ``split`` (or of the test ``subsplit``), read from the split files in
    ``folder``; None when neither is asked for (every episode)."""
    if subsplit is not None:
        if split not in (None, "test"):
            raise DatasetError(f"--subsplit {subsplit} is part of the test split, not {split}")
        return _members(folder / SUBSPLITS_FILE, subsplit, "--subsplit")
    if split is not None:
        return _members(folder / SPLITS_FILE, split, "--split")
    return None


def _members(path: Path, name: str, option: str) -> set[str]:
    if not path.is_file():
        raise DatasetError(f"{option} {name} needs {path.name} beside the dataset ({SOURCE} "
                           f"ships it): not found: {path}")
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"cannot read {path}: {error}") from None
    if not isinstance(table, dict) or not all(isinstance(v, list) for v in table.values()):
        raise DatasetError(f"{path} is not a map from split names to lists of episode ids")
    if name not in table:
        raise DatasetError(f"{option} {name}: {path.name} has {', '.join(table)}")
    return {episode_key(episode) for episode in table[name]}
