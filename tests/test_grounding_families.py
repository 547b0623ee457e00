"""Grounding-only families, registered like every other family: each prompt is byte for byte
what its release renders (the release's own message list through the real chat template of
its architecture), each answer lands on the right screen pixel through geometry, and
`qvl-agent ground` / `qvl-agent eval` score each format right through the command line (a
scripted model answering in the family's grammar). An agent run with such a family is
refused in one line naming the families that can act.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from PIL import Image
from pydantic import BaseModel, Field

from qvl_agent.families import FAMILIES, FamilyError, get_family
from qvl_agent.families.detect import choose_family
from qvl_agent.families.grounders import NOT_THERE
from qvl_agent.geometry import CoordinateError, Monitor
from qvl_agent.parsing import ActionParseError
from tests.agent_helpers import qvl_in_process as qvl
from tests.agent_helpers import write_script

TASK = "Book a hotel in Paris on August 3rd for 3 nights"
GROUNDERS = sorted(name for name, family in FAMILIES.items() if not family.acts)


@pytest.fixture(scope="module")
def chat_templates():
    """The Qwen2.5-VL and Qwen3-VL Instruct tokenizers (with their chat templates)."""
    from qvl_agent.models.checkpoint import build_tokenizer

    return {
        "qwen2_5_vl": build_tokenizer(architecture="qwen2.5-vl"),
        "qwen3_vl": build_tokenizer(architecture="qwen3-vl"),
    }


# -- each release's message list, transcribed ----------------------------------------------


def holo15_messages(task: str, width: int, height: int) -> list[dict[str, Any]]:
    """hcompai/hai-cookbook@2ba8961 holo1_5/holo_1_5_quickstart.ipynb, get_chat_messages."""

    class ClickAbsoluteAction(BaseModel):
        """Click at absolute coordinates."""

        action: Literal["click_absolute"] = "click_absolute"
        x: int = Field(description="The x coordinate, number of pixels from the left edge.")
        y: int = Field(description="The y coordinate, number of pixels from the top edge.")

    prompt = f"""Localize an element on the GUI image according to the provided target and output a click position.
     * You must output a valid JSON following the format: {ClickAbsoluteAction.model_json_schema()}
     Your target is:"""  # noqa: E501
    return [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": None},
                {"type": "text", "text": f"{prompt}\n{task}"},
            ],
        }
    ]


def holo1_messages(task: str, width: int, height: int) -> list[dict[str, Any]]:
    """hcompai/hai-cookbook@2ba8961 utils/localization.py, build_localization_task_messages."""
    localization_task_prompt = """\
Localize an element on the GUI image according to my instructions 
and output a click position as Click(x, y) with x num pixels from 
the left edge and y num pixels from the top edge.
"""  # noqa: W291 (the release's lines end in a space)
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:"}},
                {"type": "text", "text": f"{localization_task_prompt}\n{task}"},
            ],
        }
    ]


def gta1_messages(task: str, width: int, height: int) -> list[dict[str, Any]]:
    """Yan98/GTA1@81f0c4c README.md, Inference."""
    system_prompt = """
You are an expert UI element locator. Given a GUI image and a user's element description, provide the coordinates of the specified element as a single (x,y) point. The image resolution is height {height} and width {width}. For elements with area, return the center point.

Output the coordinate pair exactly:
(x,y)
"""  # noqa: E501
    system_prompt = system_prompt.strip()
    return [
        {"role": "system", "content": system_prompt.format(height=height, width=width)},
        {
            "role": "user",
            "content": [{"type": "image", "image": None}, {"type": "text", "text": task}],
        },
    ]


def venus_7b_messages(task: str, width: int, height: int) -> list[dict[str, Any]]:
    """inclusionAI/UI-Venus@cd77f3c models/grounding/ui_venus_ground_7b.py."""
    prompt_origin = (
        "Outline the position corresponding to the instruction: {}. The output should be only "
        "[x1,y1,x2,y2]."
    )
    return [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": None},
                {"type": "text", "text": prompt_origin.format(task)},
            ],
        }
    ]


def venus_72b_messages(task: str, width: int, height: int) -> list[dict[str, Any]]:
    """inclusionAI/UI-Venus@cd77f3c models/grounding/ui_venus_ground_72b.py."""
    prompt_origin = (
        'Output the bounding box in the image corresponding to the instruction "{}" with '
        "grounding. The output should be only [x1,y1,x2,y2]."
    )
    return [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": None},
                {"type": "text", "text": prompt_origin.format(task)},
            ],
        }
    ]


def venus15_messages(task: str, width: int, height: int) -> list[dict[str, Any]]:
    """inclusionAI/UI-Venus@c3a1442 models/grounding/ui_venus1_5_gd.py, inference()."""
    instruction = task[:-1] if task.endswith(".") else task
    prompt = (
        "Output the center point of the position corresponding to the following instruction: "
        "\n{}. \n\nThe output should just be the coordinates of a point, in the format [x,y]. "
        "Additionally, if the task is infeasible (e.g., the task is not related to the image), "
        "the output should be [-1,-1]."
    )
    return [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": None},
                {"type": "text", "text": prompt.format(instruction)},
            ],
        }
    ]


def qwen3_messages(task: str, width: int, height: int) -> list[dict[str, Any]]:
    """QwenLM/Qwen3-VL cookbooks/2d_grounding.ipynb: image first, then the prompt."""
    prompt = f"Locate {task}, output its bbox coordinates using JSON format."
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:"}},
                {"type": "text", "text": prompt},
            ],
        }
    ]


RELEASES = {
    "holo1.5": holo15_messages,
    "holo1": holo1_messages,
    "gta1": gta1_messages,
    "ui-venus-ground": venus_7b_messages,
    "ui-venus-ground-72b": venus_72b_messages,
    "ui-venus-1.5-ground": venus15_messages,
    "qwen3-vl-ground": qwen3_messages,
}


def test_every_grounding_family_has_its_release_transcribed():
    assert set(RELEASES) == set(GROUNDERS)
    for name in GROUNDERS:
        family = get_family(name)
        assert family.ground is not None and family.spaces == () and not family.acts


@pytest.mark.parametrize("name", sorted(RELEASES))
@pytest.mark.parametrize("task", [TASK, "the Save button.", 'a "quoted" {brace} tab\there'])
def test_prompt_is_what_the_release_renders(chat_templates, name, task):
    family = get_family(name)
    frame = family.frame(Monitor(width=1710, height=852))  # the Holo cookbook's screenshot
    ours = family.grounding().prompt(task, frame)
    expected = chat_templates[family.model_types[0]].apply_chat_template(
        RELEASES[name](task, frame.resized_width, frame.resized_height),
        tokenize=False,
        add_generation_prompt=True,
    )
    assert ours.chat_text() == expected
    assert ours.chat_text().count("<|image_pad|>") == 1


def test_family_data_is_each_releases():
    def bounds(name):
        family = get_family(name)
        return family.factor, family.min_pixels, family.max_pixels, family.coordinates

    assert bounds("holo1.5") == (28, 3136, 12845056, "pixels")
    assert bounds("holo1") == (28, 3136, 14 * 14 * 4 * 1280, "pixels")
    assert bounds("gta1") == (28, 3136, 4096 * 2160, "pixels")
    assert bounds("ui-venus-ground") == (28, 2000000, 4800000, "pixels")
    assert bounds("ui-venus-ground-72b") == (28, 3110400, 48000000, "pixels")
    assert (
        bounds("qwen3-vl-ground")
        == bounds("ui-venus-1.5-ground")
        == (32, 65536, 16777216, "rel1000")
    )
    # GTA1 states the resized size in its system prompt: that is the frame's.
    frame = get_family("gta1").frame(Monitor(width=3840, height=2160))
    system = get_family("gta1").grounding().prompt("x", frame).messages[0].text
    assert f"height {frame.resized_height} and width {frame.resized_width}" in system
    assert frame.resized_size == (3836, 2156)  # a 4K screen keeps its size (under 4096x2160)
    with pytest.raises(FamilyError, match="unknown model family 'holo2'; known: .*holo1.5"):
        get_family("holo2")


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("holo1.5", '{"action": "click_absolute", "x": 10, "y": 20}'),
        ("holo1", "Click(10, 20)"),
        ("gta1", "(10,20)"),
        ("ui-venus-ground", "[0,10,20,30]"),
        ("ui-venus-ground-72b", "[0,10,20,30]"),
        ("ui-venus-1.5-ground", "[10,20]"),
        ("qwen3-vl-ground", '[{"bbox_2d": [0, 10, 20, 30]}]'),
    ],
)
def test_each_parser_answers_in_its_familys_frame(name, answer):
    from qvl_agent import grounding_formats

    family = get_family(name)
    readers = {
        "holo1.5": grounding_formats.parse_holo15, "holo1": grounding_formats.parse_holo1,
        "gta1": grounding_formats.parse_gta1,
        "ui-venus-ground": grounding_formats.parse_ui_venus_ground,
        "ui-venus-ground-72b": grounding_formats.parse_ui_venus_ground,
        "ui-venus-1.5-ground": grounding_formats.parse_ui_venus15_ground,
        "qwen3-vl-ground": grounding_formats.parse_qwen3_vl_grounding,
    }
    read = readers[name](answer)
    assert read.coordinates == family.coordinates
    located = family.grounding().parse(answer, family.frame(Monitor(width=1920, height=1080)))
    assert (located.point, located.box) == (read.point, read.box)


def test_answers_land_on_the_screen_through_the_frame():
    monitor = Monitor(width=1920, height=1080)
    venus = get_family("ui-venus-ground")
    frame = venus.frame(monitor)
    assert frame.resized_size == (1932, 1092) and frame.coordinates == "pixels"
    located = venus.grounding().parse("[966,540,1000,560]", frame)  # resized pixels
    assert frame.to_screen(*located.point) == (977, 544) and located.box == (966, 540, 1000, 560)
    qwen = get_family("qwen3-vl-ground")
    frame = qwen.frame(monitor)
    assert frame.coordinates == "rel1000" and frame.factor == 32
    centre = qwen.grounding().parse('[{"bbox_2d": [0, 0, 1000, 1000]}]', frame).point
    assert frame.to_screen(*centre) == (960, 540)
    refused = get_family("ui-venus-1.5-ground").grounding().parse("[-1,-1]", frame)
    assert refused.point is None and refused.notes == [NOT_THERE]
    with pytest.raises(ActionParseError, match="bbox_2d"):
        qwen.grounding().parse("no box", frame)
    pixels = venus.frame(monitor)
    with pytest.raises(CoordinateError, match="outside the screenshot"):  # far past the image
        pixels.to_screen(*venus.grounding().parse("[5000, 10, 5100, 20]", pixels).point)


# -- through the command line: ground and eval ------------------------------------------------


@pytest.mark.parametrize(
    ("family", "size", "answer", "point", "box"),
    [
        # 1920x1080 is seen at 1932x1092: (966, 546) there is (960, 540) on the screen.
        ("holo1.5", (1920, 1080), '{"action": "click_absolute", "x": 966, "y": 546}',
         [960.0, 540.0], None),
        # A phone at 1092x2408.
        ("gta1", (1080, 2400), "(546,1204)", [540.0, 1200.0], None),
        # A box in resized pixels (read as 0-1000 it would centre on (927, 295)).
        ("ui-venus-ground", (1920, 1080), "[322,182,644,364]", [480.0, 270.0],
         [320.0, 180.0, 640.0, 360.0]),
        ("ui-venus-1.5-ground", (1080, 2400), "[250,500]", [270.0, 1200.0], None),
    ],
)
def test_ground_reads_each_format_onto_the_right_pixel(tmp_path, family, size, answer, point,
                                                         box):
    Image.new("RGB", size, "white").save(tmp_path / "shot.png")
    script = write_script(tmp_path / "answers.jsonl", [answer])
    result = qvl("ground", tmp_path / "shot.png", "the Send button", "--model",
                 f"scripted:{script}", "--family", family, "--save", tmp_path / "marked.png")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["family"] == family and out["point"] == point and out.get("box") == box
    assert f"model family: {family} (chosen with --family)" in result.stderr
    assert Image.open(tmp_path / "marked.png").size == size


def test_ground_says_when_the_model_found_nothing(tmp_path):
    Image.new("RGB", (1080, 2400), "white").save(tmp_path / "shot.png")

    def ground(answer):
        script = write_script(tmp_path / "answers.jsonl", [answer])
        result = qvl("ground", tmp_path / "shot.png", "the Send button", "--model",
                     f"scripted:{script}", "--family", "ui-venus-1.5-ground")
        assert result.returncode == 1
        return json.loads(result.stdout)["error"]

    assert ground("[-1,-1]") == NOT_THERE
    assert "[x,y]" in ground("The Send button.")


def test_parse_explains_a_grounding_answer():
    box = '```json\n[{"bbox_2d": [450, 300, 550, 400], "label": "OK"}]\n```'
    result = qvl("parse", "--family", "qwen3-vl-ground", "--screen", "1920x1080", stdin=box)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["coordinate"] == [500, 350] and out["screen_coordinate"] == [960, 378]
    assert out["box"] == [450, 300, 550, 400] and out["coordinates"] == "rel1000"
    refused = qvl("parse", "--family", "ui-venus-1.5-ground", "--screen", "1080x2400",
                  stdin="[-1,-1]")
    assert "coordinate" not in json.loads(refused.stdout)
    assert json.loads(refused.stdout)["notes"] == [NOT_THERE]
    far = qvl("parse", "--family", "gta1", "--screen", "1920x1080", stdin="(5000,10)")
    assert far.returncode == 2 and "x=5000 is outside the screenshot" in far.stderr
    bad = qvl("parse", "--family", "holo1", "--screen", "1920x1080", stdin="Click it")
    assert bad.returncode == 2 and "error: unusable answer: expected a click position" in bad.stderr


@pytest.fixture
def screenspot(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (1920, 1080), "white").save(images / "desk.png")
    Image.new("RGB", (1080, 2400), "white").save(images / "phone.png")
    records = [  # bbox = x, y, w, h
        {"img_filename": "desk.png", "instruction": "ok button", "bbox": [100, 100, 200, 50],
         "data_type": "text", "data_source": "windows"},
        {"img_filename": "desk.png", "instruction": "gear icon", "bbox": [1800, 20, 40, 40],
         "data_type": "icon", "data_source": "macos"},
        {"img_filename": "phone.png", "instruction": "send", "bbox": [900, 2200, 100, 100],
         "data_type": "icon", "data_source": "android"},
        {"img_filename": "phone.png", "instruction": "title", "bbox": [100, 300, 600, 80],
         "data_type": "text", "data_source": "ios"},
    ]
    annotations = tmp_path / "screenspot_desktop.json"
    annotations.write_text(json.dumps(records))
    return annotations, images


def eval_cli(tmp_path, screenspot, family, answers):
    """`qvl-agent eval` on the four samples with a scripted model of ``family``."""
    annotations, images = screenspot
    script = write_script(tmp_path / f"{family}.jsonl", answers)
    out = tmp_path / f"out-{family}"
    result = qvl("eval", "--format", "screenspot", "--annotations", annotations, "--images",
                 images, "--model", f"scripted:{script}", "--family", family, "--out", out)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    lines = (out / "predictions.jsonl").read_text().splitlines()
    predictions = [json.loads(line) for line in lines]
    assert metrics["config"]["family"] == family
    assert json.loads((out / "eval.json").read_text())["family"] == family
    return metrics, predictions


def test_an_eval_with_0_1000_boxes_is_scored_right(screenspot, tmp_path):
    metrics, predictions = eval_cli(tmp_path, screenspot, "qwen3-vl-ground", [
        # centre (105, 115.5)/1000 of 1920x1080 = (201.6, 124.7): inside (100..300, 100..150)
        '```json\n[{"bbox_2d": [90, 100, 120, 131], "label": "ok button"}]\n```',
        # centre (900, 40)/1000 = (1728, 43.2): left of the gear (1800..1840): wrong
        '[{"bbox_2d": [890, 30, 910, 50], "label": "gear icon"}]',
        # centre (880, 937.5)/1000 of 1080x2400 = (950.4, 2250): inside (900..1000, 2200..2300)
        '[{"bbox_2d": [870, 930, 890, 945], "label": "send"}]',
        "The title is at the top of the screen.",  # no box: wrong format, still counted
    ])
    assert metrics["n"] == 4 and metrics["correct"] == 2 and metrics["wrong_format"] == 1
    assert [p["correct"] for p in predictions] == [True, False, True, False]
    assert predictions[0]["point"] == pytest.approx([201.6, 124.74], abs=0.01)
    assert predictions[0]["predicted_box"] == pytest.approx([172.8, 108.0, 230.4, 141.48], abs=0.01)
    assert predictions[2]["point"] == pytest.approx([950.4, 2250.0], abs=0.01)
    # The model saw factor-32 images.
    assert predictions[0]["resized_size"] == [1920, 1088]
    assert predictions[2]["resized_size"] == [1088, 2400]


def test_an_eval_with_0_1000_points_and_a_refusal_is_scored_right(screenspot, tmp_path):
    metrics, predictions = eval_cli(tmp_path, screenspot, "ui-venus-1.5-ground", [
        "[105,115]",  # (201.6, 124.2): inside the OK button
        "[900,40]",  # (1728, 43.2): left of the gear: wrong
        "[880,937]",  # (950.4, 2248.8): inside Send
        "[-1,-1]",  # "not there": a miss without a point, though a well-formed answer
    ])
    assert [p["correct"] for p in predictions] == [True, False, True, False]
    # wrong_format counts every answer without a point, as the references count it.
    assert metrics["correct"] == 2 and metrics["wrong_format"] == 1
    assert predictions[3]["point"] is None and predictions[3]["error"] is None


def test_an_eval_with_resized_pixel_boxes_is_scored_right(screenspot, tmp_path):
    """UI-Venus-Ground-7B answers boxes in pixels of the image it saw (1932x1092 for a
    1920x1080 screenshot): read as 0-1000, the first box would land at (393, 135) and miss;
    read as pixels it is inside."""
    metrics, predictions = eval_cli(tmp_path, screenspot, "ui-venus-ground", [
        "[195,100,210,150]", "[1700,20,1720,40]", "[930,2210,960,2240]", "[1,2,3]",
    ])
    assert [p["correct"] for p in predictions] == [True, False, True, False]
    assert metrics["correct"] == 2 and metrics["wrong_format"] == 1
    assert predictions[0]["resized_size"] == [1932, 1092]
    assert predictions[0]["point"] == pytest.approx([202.5 * 1920 / 1932, 125 * 1080 / 1092])


# -- refused for acting -----------------------------------------------------------------------


def test_an_agent_run_with_a_grounding_family_is_refused_in_one_line(tmp_path):
    Image.new("RGB", (800, 600), "white").save(tmp_path / "shot.png")
    acting = [name for name, family in FAMILIES.items() if family.acts]
    for command in (
        ("run", "Open the settings", "--device", f"image:{tmp_path / 'shot.png'}"),
        ("run-batch", tmp_path / "missing-tasks.jsonl", "--device", "android:none"),
    ):
        result = qvl(*command, "--model", "scripted:none.jsonl", "--family", "holo1.5",
                     "--record", tmp_path / "run")
        assert result.returncode == 2
        error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "holo1.5 is a grounding model" in error[0]
        assert error[0].endswith("families that can act: " + ", ".join(acting))
        assert not (tmp_path / "run").exists()
    with pytest.raises(FamilyError, match="gta1 is a grounding model"):
        get_family("gta1").check_space("computer")


# -- chosen from the checkpoint's name --------------------------------------------------------


@pytest.mark.parametrize(
    ("checkpoint", "family"),
    [
        ("Hcompany/Holo1.5-7B", "holo1.5"),
        ("/models/holo1.5-3b", "holo1.5"),
        ("Hcompany/Holo1-3B", "holo1"),
        ("Salesforce/GTA1-7B", "gta1"),
        ("HelloKKMe/GTA1-7B-2507", "gta1"),
        ("inclusionAI/UI-Venus-Ground-7B", "ui-venus-ground"),
        ("inclusionAI/UI-Venus-Ground-72B", "ui-venus-ground-72b"),
        ("inclusionAI/UI-Venus-1.5-8B", "ui-venus-1.5-ground"),
        ("Hcompany/Holo2-8B", None),
        ("Qwen/Qwen2.5-VL-3B-Instruct", None),
        ("inclusionAI/UI-Venus-Navi-7B", None),
        ("acme/GTA12-vision", None),
    ],
)
def test_checkpoint_names_pick_their_grounding_family(checkpoint, family):
    choice = choose_family(checkpoint)
    if family is None:
        assert choice.family.acts  # no grounding family claims it
    else:
        assert choice.family.name == family
        assert choice.notice.startswith(f"model family: {family} (from the name ")
