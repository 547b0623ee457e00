"""The named scorers against faithful transcriptions of their references, on thousands of
seeded cases at the rules' boundaries (tests/scorer_cases.py): every verdict must agree."""

import random
from collections import Counter

import Levenshtein
import numpy as np
import pytest

from qvl_agent.evaluation.scorers import STEP_SCORERS, grounding_hit, levenshtein_ratio
from tests import reference_aitw, reference_aitz, scorer_cases
from tests.reference_aitz import ActionEvaluator

AITW_CASES, AITZ_CASES = 4000, 2000  # bench/scorer_agreement.py runs 6000 and 3000


def aitw_verdicts(cases, truths):
    """(ours, reference) per case."""
    scorer = STEP_SCORERS["aitw"]
    pairs = []
    for case, sample in zip(cases, truths):
        ours = scorer.exact_match(case.predicted, sample.target, sample, case.size)
        reference = bool(
            reference_aitw.check_actions_match(
                *case.reference_args, scorer_cases.positions(case.boxes, case.size)
            )
        )
        pairs.append((ours, reference))
    return pairs


def aitz_verdicts(cases, truths, evaluator):
    scorer = STEP_SCORERS["aitz"]
    pairs = []
    for case, sample in zip(cases, truths):
        ours = (
            scorer.type_match(case.predicted, sample.target),
            scorer.exact_match(case.predicted, sample.target, sample, case.size),
        )
        result = evaluator(case.reference_record, case.prediction)
        pairs.append((ours, (result["type_match"], bool(result["exact_match"]))))
    return pairs


@pytest.fixture(scope="module")
def aitw(tmp_path_factory):
    cases = scorer_cases.aitw_cases(seed=10, count=AITW_CASES)
    return cases, scorer_cases.read_truths(cases, tmp_path_factory.mktemp("aitw"))


@pytest.fixture(scope="module")
def aitz(tmp_path_factory):
    cases = scorer_cases.aitz_cases(seed=11, count=AITZ_CASES)
    return cases, scorer_cases.read_truths(cases, tmp_path_factory.mktemp("aitz"))


def test_aitw_agrees_with_check_actions_match_on_every_case(aitw):
    cases, truths = aitw
    pairs = aitw_verdicts(cases, truths)
    differing = [
        (c.scenario, c.reference_args, ours) for c, (ours, ref) in zip(cases, pairs) if ours != ref
    ]
    assert not differing, f"{len(differing)} of {len(cases)} differ, e.g. {differing[:3]}"
    # The cases reach both sides of every rule, not just one verdict.
    outcomes = Counter((case.scenario, ref) for case, (_, ref) in zip(cases, pairs))
    for scenario in ("tap_distance", "tap_box", "gesture_length", "swipe", "types", "truth_forms"):
        assert outcomes[(scenario, True)] > 50 and outcomes[(scenario, False)] > 50, outcomes


def test_the_aitw_cases_sit_on_the_boundaries(aitw):
    """Distances within a few float32 steps of 0.14 and 0.04, and exact axis ties, occur."""
    cases, _ = aitw
    f32 = np.float32
    at_014 = at_004 = ties = 0
    for case in cases:
        pred_touch, pred_lift, _, truth_touch, truth_lift, _ = (
            np.asarray(v, dtype=f32) if isinstance(v, list) else v for v in case.reference_args
        )
        distance = np.sqrt(np.sum((pred_touch - truth_touch) ** 2, dtype=f32), dtype=f32)
        length = np.sqrt(np.sum((truth_lift - truth_touch) ** 2, dtype=f32), dtype=f32)
        at_014 += abs(float(distance) - 0.14) < 1e-6
        at_004 += abs(float(length) - 0.04) < 1e-6
        deltas = np.abs(truth_lift - truth_touch)
        ties += bool(deltas[0] == deltas[1] and deltas[0] > 0.04)
    assert at_014 > 300 and at_004 > 300 and ties > 50, (at_014, at_004, ties)


def test_aitz_agrees_with_coat_evaluate_on_every_case(aitz):
    cases, truths = aitz
    pairs = aitz_verdicts(cases, truths, ActionEvaluator("COAT", "bbox", fill_gt_click_point=True))
    differing = [
        (c.reference_record, c.prediction, ours, ref)
        for c, (ours, ref) in zip(cases, pairs)
        if ours != ref
    ]
    assert not differing, f"{len(differing)} of {len(cases)} differ, e.g. {differing[:2]}"
    kinds = Counter(
        (c.prediction["action_predict"]["COAT"]["bbox"]["ACTION"].split("_")[0], ref[1])
        for c, (_, ref) in zip(cases, pairs)
    )
    for kind in ("CLICK", "TYPE", "SCROLL", "PRESS", "STOP"):
        assert kinds[(kind, True)] > 20 and kinds[(kind, False)] > 20, kinds


def test_the_published_coat_code_judges_every_click_at_the_corner(aitz):
    """Why aitz fills in the click point: as published, _parse_answer_ leaves it [0, 0], so a
    click matches only when the predicted box reaches the screen's top-left corner."""
    cases, _ = aitz
    published = ActionEvaluator("COAT", "bbox")
    fixed = ActionEvaluator("COAT", "bbox", fill_gt_click_point=True)
    clicks = [
        c for c in cases if c.prediction["action_predict"]["COAT"]["bbox"]["ACTION"] == "CLICK"
    ]
    matched = [c for c in clicks if published(c.reference_record, c.prediction)["exact_match"]]
    with_point = sum(fixed(c.reference_record, c.prediction)["exact_match"] for c in clicks)
    assert len(matched) <= 10 and with_point > 25
    for case in matched:  # each of them reaches (0, 0): the box itself, or a UI box it overlaps
        width, height = case.size
        bbox = case.prediction["action_predict"]["COAT"]["bbox"]["ARGS"]["bbox"]
        pixels = [
            round(bbox[0] / 1000 * width),
            round(bbox[1] / 1000 * height),
            round(bbox[2] / 1000 * width),
            round(bbox[3] / 1000 * height),
        ]
        nodes = [[x, y, x + w, y + h] for y, x, h, w in case.boxes]
        reach = reference_aitz.enlarge_bbox([pixels] + nodes)
        assert any(b[0] <= 0 <= b[2] and b[1] <= 0 <= b[3] for b in reach)


def test_aitz_compares_raw_strings_where_strict_normalises():
    truth = scorer_cases.Target(action="type", text="Buy milk")
    sample = scorer_cases.StepSample(
        id="e/0", episode="e", step=0, goal="g", image="x.png", target=truth
    )
    shouted = scorer_cases.Target(action="type", text="BUY  MILK")
    assert not STEP_SCORERS["aitz"].exact_match(shouted, truth, sample, (1080, 2400))
    assert STEP_SCORERS["strict"].exact_match(shouted, truth, sample, (1080, 2400))


def test_our_levenshtein_ratio_is_the_library_s_to_the_last_bit():
    rng = random.Random(12)
    alphabet = "abcAB é世\u0301 \t"
    words = scorer_cases.WORDS
    pairs = [(rng.choice(words), rng.choice(words)) for _ in range(2000)]
    pairs += [
        (
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))),
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))),
        )
        for _ in range(8000)
    ]
    differing = [(a, b) for a, b in pairs if levenshtein_ratio(a, b) != Levenshtein.ratio(a, b)]
    assert not differing, differing[:5]
    # Exactly 0.8 is not "> 0.8": 10 characters in all, 2 edits.
    assert levenshtein_ratio("abcde", "abcdx") == Levenshtein.ratio("abcde", "abcdx") == 0.8


def reference_screenspot_hit(model_point, resized, bbox, img_size):
    """ScreenSpot-Pro's eval_sample_positive_gt with its Qwen2.5-VL wrapper's normalisation."""
    point = [model_point[0] / resized[0], model_point[1] / resized[1]]
    bbox = [
        bbox[0] / img_size[0],
        bbox[1] / img_size[1],
        bbox[2] / img_size[0],
        bbox[3] / img_size[1],
    ]
    return (bbox[0] <= point[0] <= bbox[2]) and (bbox[1] <= point[1] <= bbox[3])


def test_grounding_hits_agree_with_screenspot_pro_on_box_edges():
    rng = random.Random(13)
    agree = 0
    for _ in range(5000):
        width, height = rng.choice(scorer_cases.SIZES)
        resized = (rng.randrange(28, 2000, 28), rng.randrange(28, 2000, 28))
        x1, y1 = rng.randint(0, width - 2), rng.randint(0, height - 2)
        box = (x1, y1, rng.randint(x1 + 1, width), rng.randint(y1 + 1, height))
        # Model points on the box edges as the model frame shows them, give or take a pixel.
        x = rng.choice((box[0], box[2], rng.uniform(0, width))) * resized[0] / width
        y = rng.choice((box[1], box[3], rng.uniform(0, height))) * resized[1] / height
        point = (round(x) + rng.choice((-1, 0, 0, 1)), round(y) + rng.choice((-1, 0, 0, 1)))
        ours = grounding_hit(point, resized, box, (width, height))
        agree += ours == reference_screenspot_hit(point, resized, box, (width, height))
    assert agree == 5000


def test_the_agreement_bench_prints_its_counts():
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "bench" / "scorer_agreement.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--aitw", "60", "--aitz", "30"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "aitw: 60/60 agree" in result.stdout and "aitz: 30/30 agree" in result.stdout
