"""The grounding-only families' answer parsers: tables of real-looking and malformed answers,
and each parser against a faithful transcription of its release's own parsing code on
generated boundary cases (``eval`` in those transcriptions is ``ast.literal_eval``: the same
value for every literal the cases hold)."""

from __future__ import annotations

import ast
import random
import re

import pytest

from qvl_agent.grounding_formats import (
    GroundingFormatError,
    parse_gta1,
    parse_holo1,
    parse_holo15,
    parse_qwen3_vl_grounding,
    parse_ui_venus15_ground,
    parse_ui_venus_ground,
)

# -- tables: answers as the models write them ---------------------------------------------

GOOD = [
    # Holo1.5: the cookbook's saved output, and the same with spaces, field order, no action.
    (parse_holo15, '{"action": "click_absolute", "x": 947, "y": 338}', (947, 338), None),
    (parse_holo15, '\n{"y":338,"x":947,"action":"click_absolute"}\n', (947, 338), None),
    (parse_holo15, '{"x": 12, "y": 0}', (12, 0), None),
    (parse_holo15, '{"action": "click_absolute", "x": 947.0, "y": "338"}', (947, 338), None),
    # Holo1: Click(x, y) anywhere in the answer, the first one.
    (parse_holo1, "Click(352, 348)", (352, 348), None),
    (parse_holo1, "I will click the date. Click( 352 ,348 ) then Click(1, 2)", (352, 348), None),
    # GTA1: (x,y), the first pair.
    (parse_gta1, "(1043,512)", (1043, 512), None),
    (parse_gta1, "The element is at (1043, 512).", (1043, 512), None),
    (parse_gta1, "<answer>(7,9)</answer> (100,100)", (7, 9), None),
    # UI-Venus-Ground: a box in resized pixels, its centre.
    (parse_ui_venus_ground, "[1032,488,1130,536]", (1081, 512), (1032, 488, 1130, 536)),
    (parse_ui_venus_ground, " [10, 20, 30, 41]\n", (20, 30.5), (10, 20, 30, 41)),
    (parse_ui_venus_ground, "(10.5, 20, 30.5, 40)", (20.5, 30), (10.5, 20, 30.5, 40)),
    # UI-Venus-1.5: a 0-1000 point, a box's centre, two points' middle, the loose fallback.
    (parse_ui_venus15_ground, "[512,233]", (512, 233), None),
    (parse_ui_venus15_ground, "[ 512 , 233 ]", (512, 233), None),
    (parse_ui_venus15_ground, "[100,200,300,400]", (200, 300), None),
    (parse_ui_venus15_ground, "[100, 200], [300, 400]", (200, 300), None),
    (parse_ui_venus15_ground, "The point is [512,233].", (512, 233), None),
    # Qwen3-VL: the 2D grounding cookbook's JSON, fenced or not, truncated, single object.
    (
        parse_qwen3_vl_grounding,
        '```json\n[\n\t{"bbox_2d": [100, 200, 300, 400], "label": "OK"}\n]\n```',
        (200, 300),
        (100, 200, 300, 400),
    ),
    (
        parse_qwen3_vl_grounding,
        '[{"bbox_2d": [300, 400, 100, 200], "label": "swapped"}]',
        (200, 300),
        (100, 200, 300, 400),
    ),
    (
        parse_qwen3_vl_grounding,
        '```json\n[{"bbox_2d": [0, 0, 10, 10], "label": "a"}, {"bbox_2d": [5,',
        (5, 5),
        (0, 0, 10, 10),
    ),
    (
        parse_qwen3_vl_grounding,
        '{"bbox_2d": [0, 0, 1000, 1000], "label": "all"}',
        (500, 500),
        (0, 0, 1000, 1000),
    ),
    (
        parse_qwen3_vl_grounding,
        '```json\n[{"point_2d": [640, 120], "label": "bell"}]\n```',
        (640, 120),
        None,
    ),
]


@pytest.mark.parametrize(("parse", "text", "point", "box"), GOOD)
def test_real_looking_answers_give_their_point(parse, text, point, box):
    answer = parse(text)
    assert answer.point == pytest.approx(point) and not answer.refused
    assert (answer.box is None) if box is None else answer.box == pytest.approx(box)


def test_each_parser_names_its_frame():
    assert parse_holo15('{"x": 1, "y": 2}').coordinates == "pixels"
    assert parse_holo1("Click(1, 2)").coordinates == "pixels"
    assert parse_gta1("(1,2)").coordinates == "pixels"
    assert parse_ui_venus_ground("[1,2,3,4]").coordinates == "pixels"
    assert parse_ui_venus15_ground("[1,2]").coordinates == "rel1000"
    assert parse_qwen3_vl_grounding('[{"bbox_2d": [1, 2, 3, 4]}]').coordinates == "rel1000"


def test_ui_venus_15_says_when_the_target_is_not_there():
    for text in ("[-1,-1]", "[-1, -1]", " [ -1 , -1 ] "):
        answer = parse_ui_venus15_ground(text)
        assert answer.refused and answer.point is None


BAD = [
    (parse_holo15, "Click(352, 348)", "JSON object"),
    (parse_holo15, '```json\n{"action": "click_absolute", "x": 1, "y": 2}\n```', "JSON object"),
    (parse_holo15, '{"action": "click", "x": 1, "y": 2}', "action"),
    (parse_holo15, '{"action": "click_absolute", "x": 10.5, "y": 2}', "x: "),
    (parse_holo15, '{"action": "click_absolute", "x": 10}', "y: Field required"),
    (parse_holo15, '[{"x": 1, "y": 2}]', "JSON object"),
    (parse_holo1, "click(352, 348)", r"Click\(x, y\)"),
    (parse_holo1, "Click(352.5, 348)", r"Click\(x, y\)"),
    (parse_holo1, "Click(-3, 348)", r"Click\(x, y\)"),
    (parse_holo1, "", r"Click\(x, y\)"),
    (parse_gta1, "1043, 512", r"\(x,y\)"),
    (parse_gta1, "[1043, 512]", r"\(x,y\)"),
    (parse_gta1, "(1043.5,512)", "whole pixels"),
    (parse_gta1, "(.5,512)", "whole pixels"),
    (parse_ui_venus_ground, "[1,2,3]", r"\[x1,y1,x2,y2\]"),
    (parse_ui_venus_ground, "The box is [1,2,3,4]", r"\[x1,y1,x2,y2\]"),
    (parse_ui_venus_ground, "[1,2,3,'4']", "finite number"),
    (parse_ui_venus_ground, "[1,2,3,True]", "finite number"),
    (parse_ui_venus_ground, "[1,2,3,1e999]", "finite number"),
    (parse_ui_venus_ground, "__import__('os').system('true')", r"\[x1,y1,x2,y2\]"),
    (parse_ui_venus15_ground, "no point here", r"\[x,y\]"),
    (parse_ui_venus15_ground, "[512.5,233]", r"\[x,y\]"),
    (parse_ui_venus15_ground, "[1200,233]", "off the 0-1000 grid"),
    (parse_ui_venus15_ground, "[-5,233]", "off the 0-1000 grid"),
    (parse_ui_venus15_ground, "[12]", "1 number"),
    (parse_qwen3_vl_grounding, "The OK button is at the top.", "bbox_2d"),
    (parse_qwen3_vl_grounding, '[{"label": "OK"}]', "bbox_2d"),
    (parse_qwen3_vl_grounding, '[{"bbox_2d": [1, 2, 3]}]', "must hold 4 numbers"),
    (parse_qwen3_vl_grounding, '[{"bbox_2d": [1, 2, 3, 1001]}]', "off the 0-1000 grid"),
    (parse_qwen3_vl_grounding, '[{"bbox_2d": [1, 2, 3, "4"]}]', "finite number"),
]


@pytest.mark.parametrize(("parse", "text", "message"), BAD)
def test_malformed_answers_are_one_clear_error(parse, text, message):
    with pytest.raises(GroundingFormatError, match=message) as error:
        parse(text)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "parse",
    [
        parse_holo15,
        parse_holo1,
        parse_gta1,
        parse_ui_venus_ground,
        parse_ui_venus15_ground,
        parse_qwen3_vl_grounding,
    ],
)
def test_an_endless_answer_is_refused_before_it_is_read(parse):
    with pytest.raises(GroundingFormatError, match="characters long"):
        parse("[" * 10_000 + "1, 2" + "]" * 10_000 + " " * 5)
    with pytest.raises(GroundingFormatError, match="must be text"):
        parse(None)


# -- the releases' own parsing, transcribed -------------------------------------------------


def holo1_reference(response: str):
    """hcompai/hai-cookbook@2ba8961 holo1/vllm/invoke_localization.ipynb, extract_click."""
    pattern = r"Click\(\s*(\d+)\s*,\s*(\d+)\s*\)"
    match = re.search(pattern, response)
    if match:
        x, y = map(int, match.groups())
        return x, y
    raise ValueError("No click position found in the response")


def gta1_reference(raw_string: str):
    """Yan98/GTA1@81f0c4c README.md, extract_coordinates (a failure is the point (0, 0))."""
    try:
        matches = re.findall(r"\((-?\d*\.?\d+),\s*(-?\d*\.?\d+)\)", raw_string)
        return [tuple(map(int, match)) for match in matches][0]
    except Exception:
        return 0, 0


def venus_ground_reference(output_text: str, input_width: float, input_height: float):
    """inclusionAI/UI-Venus@cd77f3c models/grounding/ui_venus_ground_7b.py, inference(): the
    point as fractions of the resized image."""
    try:
        box = ast.literal_eval(output_text)
        abs_y1 = float(box[1] / input_height)
        abs_x1 = float(box[0] / input_width)
        abs_y2 = float(box[3] / input_height)
        abs_x2 = float(box[2] / input_width)
        box = [abs_x1, abs_y1, abs_x2, abs_y2]
    except Exception:
        box = [0, 0, 0, 0]
    return [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]


def venus15_reference(text: str):
    """inclusionAI/UI-Venus@c3a1442 models/grounding/ui_venus1_5_gd.py, _parse_point."""
    pattern_bbox = r"\[\s*-?\d+\s*,\s*-?\d+\s*,\s*-?\d+\s*,\s*-?\d+\s*\]"
    pattern_point = r"\[\s*-?\d+\s*,\s*-?\d+\s*\]"
    pattern_two_points = r"\[\s*-?\d+\s*,\s*-?\d+\s*\],\s*\[\s*-?\d+\s*,\s*-?\d+\s*\]"
    text = text.strip()
    try:
        if re.fullmatch(pattern_bbox, text, re.DOTALL):
            box = ast.literal_eval(text)
            point = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]
        elif re.fullmatch(pattern_point, text, re.DOTALL):
            point = ast.literal_eval(text)
        elif re.fullmatch(pattern_two_points, text.replace(" ", ""), re.DOTALL):
            bbox = ast.literal_eval("[" + text + "]")
            point = [(bbox[0][0] + bbox[1][0]) / 2, (bbox[0][1] + bbox[1][1]) / 2]
        else:
            point = list(map(int, text.split("]")[0].split("[")[1].split(",")))
        if point == [-1, -1]:
            return [-1, -1]
        abs_x = float(point[0] / 1000)
        abs_y = float(point[1] / 1000)
        return [abs_x, abs_y]
    except Exception:
        return None


def qwen3_reference(bounding_boxes: str, width: int, height: int):
    """QwenLM/Qwen3-VL cookbooks/2d_grounding.ipynb, parse_json + plot_bounding_boxes: the
    first box in ``width`` x ``height`` pixels (the cookbook draws every box)."""
    lines = bounding_boxes.splitlines()
    for i, line in enumerate(lines):
        if line == "```json":
            bounding_boxes = "\n".join(lines[i + 1 :])
            bounding_boxes = bounding_boxes.split("```")[0]
            break
    try:
        json_output = ast.literal_eval(bounding_boxes)
    except Exception:
        end_idx = bounding_boxes.rfind('"}') + len('"}')
        truncated_text = bounding_boxes[:end_idx] + "]"
        json_output = ast.literal_eval(truncated_text)
    if not isinstance(json_output, list):
        json_output = [json_output]
    bounding_box = json_output[0]
    abs_y1 = int(bounding_box["bbox_2d"][1] / 1000 * height)
    abs_x1 = int(bounding_box["bbox_2d"][0] / 1000 * width)
    abs_y2 = int(bounding_box["bbox_2d"][3] / 1000 * height)
    abs_x2 = int(bounding_box["bbox_2d"][2] / 1000 * width)
    if abs_x1 > abs_x2:
        abs_x1, abs_x2 = abs_x2, abs_x1
    if abs_y1 > abs_y2:
        abs_y1, abs_y2 = abs_y2, abs_y1
    return abs_x1, abs_y1, abs_x2, abs_y2


def _numbers(rng: random.Random) -> list[str]:
    """Numbers as models write them, and as they should not."""
    pool = [str(rng.randint(0, 1000)) for _ in range(6)]
    pool += ["0", "1000", "999", "-1", "-17", "12.5", ".5", "3.", "1e3", "0012", "2000", "-0"]
    return pool


def _space(rng: random.Random) -> str:
    return rng.choice(["", "", " ", "  ", "\n", "\t"])


def _cases(seed: int, shape, count: int = 600) -> list[str]:
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        numbers = _numbers(rng)
        cases.append(shape(rng, lambda: rng.choice(numbers)))
    return cases


def test_holo1_equals_its_release():
    def shape(rng, n):
        core = f"Click({_space(rng)}{n()}{_space(rng)},{_space(rng)}{n()}{_space(rng)})"
        return rng.choice(["", "Thought: the date. ", "click "]) + rng.choice(
            [core, core.lower(), core + core]
        )

    for text in _cases(1, shape):
        try:
            expected = holo1_reference(text)
        except ValueError:
            with pytest.raises(GroundingFormatError):
                parse_holo1(text)
            continue
        assert parse_holo1(text).point == expected, text


def test_gta1_equals_its_release():
    def shape(rng, n):
        core = f"({n()},{_space(rng)}{n()})"
        return rng.choice(["", "<answer>", "The point is "]) + rng.choice(
            [core, core * 2, f"[{n()},{n()}]"]
        )

    for text in _cases(2, shape):
        expected = gta1_reference(text)
        try:
            point = parse_gta1(text).point
        except GroundingFormatError:
            assert expected == (0, 0), text  # the release's failure value: a miss
            continue
        assert point == expected, text


def test_ui_venus_ground_equals_its_release():
    def shape(rng, n):
        items = [n() for _ in range(rng.choice([4, 4, 4, 3, 5]))]
        body = ("," + _space(rng)).join(items)
        return (
            _space(rng)
            + rng.choice([f"[{body}]", f"({body})", f"box: [{body}]", body])
            + _space(rng)
        )

    width, height = 1932, 1092
    for text in _cases(3, shape):
        expected = venus_ground_reference(text, width, height)
        try:
            answer = parse_ui_venus_ground(text)
        except GroundingFormatError:
            assert expected == [0, 0], text
            continue
        assert [answer.point[0] / width, answer.point[1] / height] == pytest.approx(expected), text


def test_ui_venus_15_equals_its_release():
    def shape(rng, n):
        sep = lambda: "," + _space(rng)  # noqa: E731
        return (
            _space(rng)
            + rng.choice(
                [
                    f"[{n()}{sep()}{n()}]",
                    f"[{n()}{sep()}{n()}{sep()}{n()}{sep()}{n()}]",
                    f"[{n()}{sep()}{n()}],{_space(rng)}[{n()}{sep()}{n()}]",
                    f"The point is [{n()}{sep()}{n()}] here",
                    f"[{_space(rng)}{n()}{_space(rng)}]",
                    f"{n()}, {n()}",
                ]
            )
            + _space(rng)
        )

    for text in _cases(4, shape, 900):
        expected = venus15_reference(text)
        try:
            answer = parse_ui_venus15_ground(text)
        except GroundingFormatError:
            # The release fails, or reads a point off the 0-1000 grid (scored as a miss).
            assert expected is None or not all(0 <= v <= 1 for v in expected), text
            continue
        if answer.refused:
            assert expected == [-1, -1], text
        else:
            assert [answer.point[0] / 1000, answer.point[1] / 1000] == pytest.approx(expected), text


def test_qwen3_vl_grounding_equals_its_cookbook():
    def shape(rng, n):
        box = ", ".join(str(rng.randint(0, 1000)) for _ in range(4))
        item = f'{{"bbox_2d": [{box}], "label": "the {rng.choice(["OK", "x"])} button"}}'
        body = rng.choice(
            [
                f"[{item}]",
                f"[\n\t{item}\n]",
                item,
                f"[{item}, {item}]",
                f'[{item}, {{"bbox_2d": [1, 2',
            ]
        )
        return rng.choice([f"```json\n{body}\n```", body])

    width, height = 1920, 1080
    for text in _cases(5, shape, 300):
        expected = qwen3_reference(text, width, height)
        box = parse_qwen3_vl_grounding(text).box
        # The cookbook truncates to whole pixels for drawing; we keep the exact box.
        ours = (
            box[0] / 1000 * width,
            box[1] / 1000 * height,
            box[2] / 1000 * width,
            box[3] / 1000 * height,
        )
        assert tuple(int(v) for v in ours) == expected, text


def test_holo15_validates_as_the_cookbooks_pydantic_model():
    from typing import Literal

    from pydantic import BaseModel, Field, ValidationError

    class ClickAbsoluteAction(BaseModel):  # hcompai/hai-cookbook@2ba8961, verbatim
        """Click at absolute coordinates."""

        action: Literal["click_absolute"] = "click_absolute"
        x: int = Field(description="The x coordinate, number of pixels from the left edge.")
        y: int = Field(description="The y coordinate, number of pixels from the top edge.")

    rng = random.Random(6)
    for _ in range(500):
        fields = {
            "action": rng.choice(['"click_absolute"', '"click"', None]),
            "x": rng.choice(["12", "12.0", "12.5", '"12"', "-3", "true", "null", None]),
            "y": rng.choice(["7", "7.0", '"7"', "1e2", None]),
        }
        text = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items() if v is not None) + "}"
        try:
            expected = ClickAbsoluteAction.model_validate_json(text)
        except ValidationError:
            with pytest.raises(GroundingFormatError):
                parse_holo15(text)
            continue
        assert parse_holo15(text).point == (expected.x, expected.y), text
