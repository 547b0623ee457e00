"""Turn per-sample prediction records into the figures papers report, each labelled."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from qvl_agent.evaluation.grounding_sets import MACRO_CELLS, REPORTED_SPLITS


def _fraction(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _tally(records: list[dict], key, flag: str) -> dict[str, dict[str, Any]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        cell = counts[key(record)]
        cell[0] += 1
        cell[1] += bool(record[flag])
    return {name: {"n": n, "correct": hit, "accuracy": _fraction(hit, n)}
            for name, (n, hit) in sorted(counts.items())}


def grounding_metrics(records: list[dict], dataset_format: str, scorer: dict[str, str],
                      skipped: int = 0) -> dict[str, Any]:
    """``skipped``: every record left out, at loading or later; counted wrong in
    ``accuracy_counting_skipped``."""
    scored = [r for r in records if "skipped" not in r]
    correct = sum(bool(r["correct"]) for r in scored)
    splits = {}
    for names in REPORTED_SPLITS[dataset_format]:
        splits["/".join(names)] = _tally(scored, lambda r, n=names: "/".join(r["split"].get(k, "?") for k in n), "correct")
    cell_names = MACRO_CELLS[dataset_format]
    cells = splits["/".join(cell_names)]
    accuracies = [cell["accuracy"] for cell in cells.values() if cell["accuracy"] is not None]
    return {
        "scorer": scorer,
        "accuracy": _fraction(correct, len(scored)),
        "accuracy_is": "pooled: correct / all scored samples (micro); an answer without a "
                       "point is wrong and counted (wrong_format), as the ScreenSpot and "
                       "ScreenSpot-Pro evals count it",
        "accuracy_counting_skipped": _fraction(correct, len(scored) + skipped),
        "accuracy_counting_skipped_is": "correct / every record read, each skipped record "
                                        "counted wrong (the reference evals skip nothing: they "
                                        "stop at a missing image)",
        "macro_accuracy": round(sum(accuracies) / len(accuracies), 6) if accuracies else None,
        "macro_accuracy_is": f"unweighted mean over the {'/'.join(cell_names)} cells",
        "n": len(scored),
        "correct": correct,
        # As the references count it: answers that gave no point (unreadable, a refusal, or
        # an action without a point).
        "wrong_format": sum(r.get("point") is None for r in scored),
        "splits": splits,
    }


def step_metrics(records: list[dict], scorer: dict[str, str]) -> dict[str, Any]:
    """``scorer``: the scorer's name and source, recorded beside its figures."""
    scored = [r for r in records if "skipped" not in r]
    type_hits = sum(r["type_match"] for r in scored)
    exact_hits = sum(r["exact_match"] for r in scored)
    per_action = {}
    for action, group in _group(scored, lambda r: r["target"]["action"]).items():
        per_action[action] = {"n": len(group),
                              "type_match": _fraction(sum(r["type_match"] for r in group), len(group)),
                              "exact_match": _fraction(sum(r["exact_match"] for r in group), len(group))}
    # Grounding accuracy as OS-Atlas reports it: exact among point steps whose type matched.
    typed_points = [r for r in scored if r["type_match"] and r["target"].get("point") is not None]
    return {
        "scorer": scorer,
        "type_match": _fraction(type_hits, len(scored)),
        "exact_match": _fraction(exact_hits, len(scored)),
        "grounding_accuracy": _fraction(sum(r["exact_match"] for r in typed_points), len(typed_points)),
        "n": len(scored),
        "wrong_format": sum(r["error"] is not None for r in scored),
        "per_action": per_action,
        "episodes": _episode_metrics(records),
    }


def _episode_metrics(records: list[dict]) -> dict[str, Any]:
    """Success: every step exact; progress: the share of steps before the first miss.
    Episodes with a skipped step are left out of both (their ground truth is incomplete)."""
    complete, successes, progress = 0, 0, 0.0
    incomplete = 0
    for group in _group(records, lambda r: r["episode"]).values():
        if any("skipped" in r for r in group) or not all(r.get("episode_complete", True) for r in group):
            incomplete += 1
            continue
        group.sort(key=lambda r: r["step"])
        complete += 1
        leading = next((i for i, r in enumerate(group) if not r["exact_match"]), len(group))
        successes += leading == len(group)
        progress += leading / len(group)
    return {
        "n": complete,
        "success_rate": _fraction(successes, complete),
        "goal_progress": round(progress / complete, 6) if complete else None,
        "left_out_incomplete": incomplete,
    }


def _group(records: list[dict], key) -> dict[Any, list[dict]]:
    groups: dict[Any, list[dict]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    return groups
