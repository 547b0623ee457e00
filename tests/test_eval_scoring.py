"""The scorers on hand-computed cases: edges, thresholds, augmentation, conventions, text."""

import pytest

from qvl_agent.evaluation.samples import StepSample, Target, finger_direction
from qvl_agent.evaluation.scorers import STEP_SCORERS, levenshtein_ratio, point_in_box

SIZE = (1000, 2000)  # width, height of the screenshot


def step(target: Target, ui_boxes=()) -> StepSample:
    return StepSample(id="e/0", episode="e", step=0, goal="g", image="x.png", target=target,
                      ui_boxes=list(ui_boxes))


def exact(scorer: str, predicted: Target, target: Target, ui_boxes=()) -> bool:
    return STEP_SCORERS[scorer].exact_match(predicted, target, step(target, ui_boxes), SIZE)


def click(x, y, boxes=()):
    return Target(action="click", point=(x, y), boxes=list(boxes))


def test_grounding_boxes_include_their_edges():
    box = (100, 100, 200, 150)
    assert point_in_box((100, 100), box) and point_in_box((200, 150), box)
    assert not point_in_box((200.01, 120), box) and not point_in_box((150, 99.99), box)


def test_aitw_tap_distance_is_014_of_the_normalised_screen():
    target = click(500, 1000)
    # 0.14 of the width is 140 px; of the height 280 px.
    assert exact("aitw", click(640, 1000), target)
    assert not exact("aitw", click(641, 1000), target)
    assert exact("aitw", click(500, 1280), target)
    assert not exact("aitw", click(500, 1281), target)


def test_aitw_same_augmented_box_matches_beyond_the_distance():
    box = (100, 100, 200, 150)  # 100 x 50 px; x grows by 70 px each side, y by 35 px
    target = click(150, 125)
    far_point = click(265, 180)  # (265-150)/1000 = 0.115, (180-125)/2000: within 0.14 anyway
    assert exact("aitw", far_point, target)
    # A point 0.2 away horizontally but inside the augmented box [30, 65, 270, 185]:
    target_left = click(31, 66)
    predicted = click(269, 184)  # 0.238 of the width away: too far, but the same element
    assert not exact("aitw", predicted, target_left)
    assert exact("aitw", predicted, target_left, ui_boxes=[box])
    assert not exact("aitw", click(271, 184), target_left, ui_boxes=[box])


def test_aitw_augmentation_clips_the_corner_and_keeps_its_size():
    # x1 = 10, w = 100 -> left clips to 0 and the width is 240: [0, 240], not [0, 180].
    box = (10, 1000, 110, 1010)
    target = click(11, 1005)
    assert exact("aitw", click(239, 1005), target, ui_boxes=[box])
    assert not exact("aitw", click(241, 1005), target, ui_boxes=[box])


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


def test_a_different_action_type_never_matches():
    target = click(150, 125)
    long_press = Target(action="long_press", point=(150, 125))
    for scorer in STEP_SCORERS.values():
        assert not scorer.type_match(long_press, target)
        assert not scorer.exact_match(long_press, target, step(target), SIZE)
        assert not scorer.exact_match(None, target, step(target), SIZE)


def test_swipes_compare_the_finger_direction():
    up = Target(action="swipe", direction="up")
    assert finger_direction((500, 1500), (500, 500)) == "up"
    assert finger_direction((100, 500), (900, 600)) == "right"
    assert exact("aitw", Target(action="swipe", point=(500, 1500), point2=(500, 500), direction="up"), up)
    assert not exact("aitw", Target(action="swipe", direction="down"), up)


@pytest.mark.parametrize("scorer, predicted, expected", [
    ("aitw", "buy milk", True), ("aitw", "Buy Milk please", True),
    ("aitw", "buy milc", True),  # Levenshtein ratio 0.875 > 0.8
    ("aitw", "bye mail", False),
    ("norm1000", "buy milk", True), ("norm1000", "milk", True),  # F1 = 2/3
    ("norm1000", "buy", True), ("norm1000", "oat", False),
    ("box", "milk", True), ("box", "buy milk now", True), ("box", "buy milc", False),
])
def test_typed_text_per_scorer(scorer, predicted, expected):
    target = Target(action="type", text="buy milk")
    assert exact(scorer, Target(action="type", text=predicted), target) is expected


def test_levenshtein_ratio_matches_the_indel_definition():
    assert levenshtein_ratio("kitten", "sitting") == pytest.approx(2 * 4 / 13)
    assert levenshtein_ratio("", "") == 1.0 and levenshtein_ratio("a", "") == 0.0


def test_buttons_and_waits():
    back = Target(action="system_button", button="Back")
    assert exact("aitw", Target(action="system_button", button="back"), back)
    assert not exact("aitw", Target(action="system_button", button="Home"), back)
    assert exact("norm1000", Target(action="wait"), Target(action="wait"))
    assert exact("box", Target(action="terminate", text="failure"), Target(action="terminate", text="success"))
