"""The scorers on hand-computed cases: edges, thresholds, augmentation, conventions, text.

``aitw`` is AITW's check_actions_match and ``aitz`` CoAT's evaluate.py (their agreement with
transcriptions of the references is in test_scorer_references.py); ``strict`` keeps the rules
``aitw`` had before it was made exact (same sign, normalised text, terminate status checked).
"""

import pytest

from qvl_agent.evaluation.samples import StepSample, Target, finger_direction
from qvl_agent.evaluation.scorers import STEP_SCORERS, levenshtein_ratio, point_in_box

SIZE = (1000, 2000)  # width, height of the screenshot


def step(target: Target, ui_boxes=()) -> StepSample:
    return StepSample(
        id="e/0",
        episode="e",
        step=0,
        goal="g",
        image="x.png",
        target=target,
        ui_boxes=list(ui_boxes),
    )


def exact(scorer: str, predicted: Target, target: Target, ui_boxes=(), size=SIZE) -> bool:
    return STEP_SCORERS[scorer].exact_match(predicted, target, step(target, ui_boxes), size)


def click(x, y, boxes=()):
    return Target(action="click", point=(x, y), boxes=list(boxes))


def swipe(start, end, **fields):
    return Target(action="swipe", point=start, point2=end, **fields)


def test_grounding_boxes_include_their_edges():
    box = (100, 100, 200, 150)
    assert point_in_box((100, 100), box) and point_in_box((200, 150), box)
    assert not point_in_box((200.01, 120), box) and not point_in_box((150, 99.99), box)


# -- the tap rules, shared by aitw (exact) and strict (ours) -----------------------------------


@pytest.mark.parametrize("scorer", ["aitw", "strict"])
def test_tap_distance_is_014_of_the_normalised_screen(scorer):
    target = click(500, 1000)
    # 0.14 of the width is 140 px; of the height 280 px.
    assert exact(scorer, click(640, 1000), target)
    assert not exact(scorer, click(641, 1000), target)
    assert exact(scorer, click(500, 1280), target)
    assert not exact(scorer, click(500, 1281), target)


@pytest.mark.parametrize("scorer", ["aitw", "strict"])
def test_same_augmented_box_matches_beyond_the_distance(scorer):
    box = (100, 100, 200, 150)  # 100 x 50 px; x grows by 70 px each side, y by 35 px
    target = click(150, 125)
    assert exact(scorer, click(265, 180), target)  # within 0.14 anyway
    # A point 0.238 of the width away, but inside the augmented box [30, 65, 270, 185]:
    target_left, predicted = click(31, 66), click(269, 184)
    assert not exact(scorer, predicted, target_left)
    assert exact(scorer, predicted, target_left, ui_boxes=[box])
    assert not exact(scorer, click(271, 184), target_left, ui_boxes=[box])


@pytest.mark.parametrize("scorer", ["aitw", "strict"])
def test_augmentation_clips_the_corner_and_keeps_its_size(scorer):
    # x1 = 10, w = 100 -> left clips to 0 and the width is 240: [0, 240], not [0, 180].
    box = (10, 1000, 110, 1010)
    target = click(11, 1005)
    assert exact(scorer, click(239, 1005), target, ui_boxes=[box])
    assert not exact(scorer, click(241, 1005), target, ui_boxes=[box])


# -- aitw: exactly check_actions_match ---------------------------------------------------------


def aitz_tap(touch_yx, lift_yx):
    """A ground-truth AITZ tap as the reader gives it: the lift point, and the raw gesture."""
    return Target(
        action="click",
        point=(lift_yx[1] * SIZE[0], lift_yx[0] * SIZE[1]),
        touch_yx=touch_yx,
        lift_yx=lift_yx,
    )


def test_aitw_compares_the_touch_point_not_the_lift_point():
    # Touched at x = 0.50, lifted 0.035 further right (still a tap).
    truth = aitz_tap((0.5, 0.5), (0.5, 0.535))
    assert exact("aitw", click(630, 1000), truth)  # 0.13 from the touch
    assert not exact("aitw", click(660, 1000), truth)  # 0.125 from the lift, 0.16 from the touch
    assert exact("strict", click(660, 1000), truth)  # strict (ours) judges the lift point


def test_aitw_a_short_predicted_swipe_is_a_tap():
    truth = click(500, 1000)
    # 39 px of a 1000 px width is 0.039: a tap for AITW, on the target. (40 px is a swipe: in
    # float32, as the reference computes, 0.54 - 0.5 is a hair over 0.04.)
    assert exact("aitw", swipe((500, 1000), (539, 1000)), truth)
    assert not exact("aitw", swipe((500, 1000), (540, 1000)), truth)
    assert not exact("strict", swipe((500, 1000), (539, 1000)), truth)  # ours: a swipe is no click


def test_aitw_matches_swipes_on_their_axis_whatever_the_sign():
    up = swipe((500, 1500), (500, 500), direction="up")
    assert exact("aitw", swipe((500, 500), (500, 1500)), up)  # down: the same axis
    assert not exact("aitw", swipe((200, 1000), (800, 1000)), up)  # horizontal
    assert not exact("strict", swipe((500, 500), (500, 1500)), up)  # ours checks the sign
    # Axes are decided in normalised (y, x): 500 px across and 600 px down on this 1000x2000
    # screen is 0.5 of the width and 0.3 of the height, so horizontal (in pixels: vertical).
    diagonal = swipe((200, 1000), (700, 1600))
    assert exact("aitw", diagonal, swipe((100, 100), (900, 100)))
    assert not exact("aitw", diagonal, up)


def test_aitw_a_direction_only_swipe_is_a_canonical_drag():
    # AndroidControl gives only a direction: it is SeeClick's canonical drag along that axis.
    assert exact("aitw", swipe((300, 1800), (300, 200)), Target(action="swipe", direction="down"))
    assert not exact(
        "aitw", swipe((100, 1000), (900, 1000)), Target(action="swipe", direction="down")
    )


def test_aitw_compares_typing_and_status_by_type_only():
    assert exact(
        "aitw", Target(action="type", text="bye mail"), Target(action="type", text="buy milk")
    )
    assert not exact(
        "strict", Target(action="type", text="bye mail"), Target(action="type", text="buy milk")
    )
    done = Target(action="terminate", text="success")
    assert exact("aitw", Target(action="terminate", text="success"), done)
    # Completion and impossibility are two AITW action types (10 and 11).
    assert not exact("aitw", Target(action="terminate", text="failure"), done)
    back = Target(action="system_button", button="Back")
    assert exact("aitw", Target(action="system_button", button="back"), back)
    assert not exact("aitw", Target(action="system_button", button="Home"), back)


def test_aitw_kinds_without_an_aitw_type_match_only_themselves():
    assert exact("aitw", Target(action="open", text="Maps"), Target(action="open", text="Clock"))
    assert exact("aitw", Target(action="wait"), Target(action="wait"))
    assert not exact("aitw", Target(action="wait"), Target(action="open", text="Clock"))
    assert not exact(
        "aitw",
        Target(action="system_button", button="Menu"),
        Target(action="system_button", button="Back"),
    )


def test_aitw_a_long_press_is_a_tap_like_any_other():
    """AITW records every touch as a DUAL_POINT gesture: a long press is a tap to it."""
    target = click(150, 125)
    long_press = Target(action="long_press", point=(150, 125))
    assert STEP_SCORERS["aitw"].type_match(long_press, target)
    assert exact("aitw", long_press, target)


# -- the rules every other scorer shares -------------------------------------------------------


def test_a_different_action_type_never_matches():
    target = click(150, 125)
    long_press = Target(action="long_press", point=(150, 125))
    for name in ("aitz", "strict", "norm1000", "box"):
        scorer = STEP_SCORERS[name]
        assert not scorer.type_match(long_press, target)
        assert not scorer.exact_match(long_press, target, step(target), SIZE)
    for scorer in STEP_SCORERS.values():
        assert not scorer.exact_match(None, target, step(target), SIZE)


def test_norm1000_is_140_in_the_0_1000_frame():
    target = click(500, 1000)
    assert exact("norm1000", click(640, 1000), target)  # 140 in x
    assert not exact("norm1000", click(641, 1000), target)
    assert exact("norm1000", click(500, 1280), target)  # 1000 * 280 / 2000 = 140 in y
    assert not exact("norm1000", click(500, 1282), target)


def test_box_scorer_needs_the_point_inside_a_target_box():
    target = click(150, 125, boxes=[(100, 100, 200, 150)])
    assert exact("box", click(200, 150), target)
    assert not exact("box", click(201, 150), target)


def test_strict_swipes_compare_the_finger_direction_on_the_normalised_screen():
    up = Target(action="swipe", direction="up")
    assert finger_direction((500, 1500), (500, 500)) == "up"
    assert finger_direction((100, 500), (900, 600)) == "right"
    assert exact("strict", swipe((500, 1500), (500, 500), direction="up"), up)
    assert not exact("strict", Target(action="swipe", direction="down"), up)
    # 600 px up and 500 px across on a 1000x2000 screen: 0.3 of the height, 0.5 of the width.
    assert exact(
        "strict", swipe((200, 1600), (700, 1000)), Target(action="swipe", direction="right")
    )


@pytest.mark.parametrize(
    "scorer, predicted, expected",
    [
        ("strict", "buy milk", True),
        ("strict", "Buy Milk please", True),
        ("strict", "buy milc", True),  # Levenshtein ratio 0.875 > 0.8
        ("strict", "bye mail", False),
        ("aitz", "buy milk", True),
        ("aitz", "Buy Milk please", False),  # raw strings: no substring
        ("aitz", "buy milc", True),
        ("aitz", "Buy Milk", False),  # ratio 0.75 on the raw strings
        ("aitz", "buy milk ", True),  # "buy milk" is in it
        ("norm1000", "buy milk", True),
        ("norm1000", "milk", True),  # F1 = 2/3
        ("norm1000", "buy", True),
        ("norm1000", "oat", False),
        ("box", "milk", True),
        ("box", "buy milk now", True),
        ("box", "buy milc", False),
    ],
)
def test_typed_text_per_scorer(scorer, predicted, expected):
    target = Target(action="type", text="buy milk")
    assert exact(scorer, Target(action="type", text=predicted), target) is expected


def test_levenshtein_ratio_matches_the_indel_definition():
    assert levenshtein_ratio("kitten", "sitting") == pytest.approx(2 * 4 / 13)
    assert levenshtein_ratio("", "") == 1.0 and levenshtein_ratio("a", "") == 0.0


def test_buttons_waits_and_status():
    back = Target(action="system_button", button="Back")
    assert exact("strict", Target(action="system_button", button="back"), back)
    assert not exact("strict", Target(action="system_button", button="Home"), back)
    assert exact("norm1000", Target(action="wait"), Target(action="wait"))
    success, failure = (
        Target(action="terminate", text="success"),
        Target(action="terminate", text="failure"),
    )
    assert exact("box", failure, success)  # box and norm1000: the kind alone
    assert not exact("strict", failure, success) and exact("strict", success, success)
    assert exact("aitz", failure, success)  # CoAT: STOP is enough


# -- aitz: CoAT's evaluate.py ------------------------------------------------------------------


def test_aitz_judges_a_click_by_the_box_the_model_answered():
    truth = aitz_tap((0.5, 0.5), (0.5, 0.5))  # the point (500, 1000)
    ui = [(400, 950, 600, 1050)]
    # A box ending at x = 500 holds the point; one ending at 480, enlarged 1.2x about its
    # centre (430), ends at 490, short of 500.
    assert exact("aitz", click(450, 1000, boxes=[(400, 950, 500, 1050)]), truth, ui)
    miss = click(430, 1000, boxes=[(380, 990, 480, 1010)])
    assert not exact("aitz", miss, truth)
    # The same miss is saved by a UI box holding the point (enlarged: x 379-511) that overlaps
    # the enlarged answer (370-490 x 988-1012) by IoU 2664 / 4968 = 0.54 > 0.5.
    assert exact("aitz", miss, truth, [(390, 985, 500, 1015)])
    assert not exact("aitz", miss, truth, [(390, 950, 500, 1050)])  # IoU 0.19


def test_aitz_a_point_answer_is_a_zero_size_box():
    truth = aitz_tap((0.5, 0.5), (0.5, 0.5))
    assert exact("aitz", click(500.4, 999.6), truth)  # rounds onto the pixel
    assert not exact("aitz", click(501, 1000), truth, ui_boxes=[(400, 950, 600, 1050)])
    assert exact("aitw", click(501, 1000), truth)


def test_aitz_scroll_words_follow_the_truths_09_rule():
    # Truth: 0.3 down and 0.32 across: vertical for CoAT (0.3 >= 0.9 * 0.32), finger down.
    truth = Target(
        action="swipe",
        point=(0, 0),
        point2=(1, 1),
        direction="down",
        touch_yx=(0.2, 0.2),
        lift_yx=(0.5, 0.52),
    )
    assert exact("aitz", swipe((500, 400), (500, 1600)), truth)
    assert not exact("aitz", swipe((500, 1600), (500, 400)), truth)  # up: another word


# -- which scorer an eval uses, and resuming across rule changes -------------------------------


def test_each_format_gets_its_default_scorer_and_grounding_refuses_a_step_scorer(tmp_path):
    from qvl_agent.evaluation.runner import EvalConfig, EvalError, run_eval

    def config(fmt, **fields):
        return EvalConfig(format=fmt, annotations=str(tmp_path), model="m", **fields)

    assert config("aitz").scorer == "aitw" and config("androidcontrol").scorer == "aitw"
    assert config("run").scorer == "strict" and config("screenspot").scorer == "point_in_box"
    assert config("aitz", scorer="aitz").scorer == "aitz"
    with pytest.raises(EvalError, match="--scorer is for step formats"):
        run_eval(config("screenspot", scorer="aitw"), model=None, out=tmp_path / "o")


def test_an_eval_scored_under_older_rules_is_not_resumed(tmp_path):
    import json

    from environments.synthetic_screenspot import write_synthetic_screenspot
    from qvl_agent.evaluation.runner import EvalConfig, EvalError, run_eval

    data = write_synthetic_screenspot(tmp_path, 1)
    config = EvalConfig(format="screenspot", annotations=str(data["annotations"]),
                        images=str(data["images"]), model="m")
    out = tmp_path / "out"
    out.mkdir()
    older = {k: v for k, v in config.identity().items() if k != "scoring_rules"}
    (out / "eval.json").write_text(json.dumps(older))  # written before scoring_rules existed
    with pytest.raises(EvalError, match="scoring_rules"):
        run_eval(config, model=None, out=out)
