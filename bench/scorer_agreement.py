"""How often each named step scorer agrees with its transcribed reference, on seeded boundary
cases (tests/scorer_cases.py): the figure behind "aitw is AITW's check_actions_match".

    python bench/scorer_agreement.py [--aitw 6000] [--aitz 3000] [--seed 10]

Prints one line per scorer, e.g. ``aitw: 6000/6000 agree``; exits 1 if any case differs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import scorer_cases  # noqa: E402
from tests.reference_aitz import ActionEvaluator  # noqa: E402
from tests.test_scorer_references import aitw_verdicts, aitz_verdicts  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aitw", type=int, default=6000, help="AITW cases")
    parser.add_argument("--aitz", type=int, default=3000, help="AITZ (CoAT) cases")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        cases = scorer_cases.aitw_cases(args.seed, args.aitw)
        pairs = aitw_verdicts(cases, scorer_cases.read_truths(cases, Path(folder) / "aitw"))
        agree = sum(ours == reference for ours, reference in pairs)
        matches = sum(reference for _, reference in pairs)
        print(
            f"aitw: {agree}/{len(pairs)} agree with google-research check_actions_match "
            f"({matches} matches, {len(pairs) - matches} misses; "
            f"{time.perf_counter() - started:.1f} s)"
        )
        failed |= agree != len(pairs)

        started = time.perf_counter()
        cases = scorer_cases.aitz_cases(args.seed + 1, args.aitz)
        evaluator = ActionEvaluator("COAT", "bbox", fill_gt_click_point=True)
        pairs = aitz_verdicts(
            cases, scorer_cases.read_truths(cases, Path(folder) / "aitz"), evaluator
        )
        agree = sum(ours == reference for ours, reference in pairs)
        matches = sum(reference[1] for _, reference in pairs)
        print(
            f"aitz: {agree}/{len(pairs)} agree with CoAT evaluate.py (type and exact match; "
            f"{matches} exact, {len(pairs) - matches} not; "
            f"{time.perf_counter() - started:.1f} s)"
        )
        failed |= agree != len(pairs)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
