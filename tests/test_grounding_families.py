"""Grounding-only families: each prompt is byte for byte what its release renders (the
release's own message list through the real chat template of its architecture), and a
grounding eval whose answers are 0-1000 boxes (and one whose answers are resized-pixel
boxes) is scored right.

The eval goes through ``qvl_agent.evaluation``'s real runner, reader and scorer; only its
``predict`` step is swapped for a small adapter that asks the family (the family registry
that picks a family's prompt and parser in ``predict`` is wired in separately).
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import pytest
from PIL import Image
from pydantic import BaseModel, Field

from qvl_agent.evaluation import runner
from qvl_agent.evaluation.predict import Prediction
from qvl_agent.evaluation.runner import EvalConfig, run_eval
from qvl_agent.geometry import CoordinateError, Monitor, model_view
from qvl_agent.grounding_families import (
    GROUNDING_FAMILIES,
    UnknownGroundingFamily,
    grounding_family,
)
from qvl_agent.grounding_formats import GroundingFormatError
from qvl_agent.models.scripted import ScriptedModel

TASK = "Book a hotel in Paris on August 3rd for 3 nights"


@pytest.fixture(scope="module")
def chat_templates():
    """The Qwen2.5-VL and Qwen3-VL Instruct tokenizers (with their chat templates)."""
    from qvl_agent.models.checkpoint import build_tokenizer

    return {
        "Qwen2.5-VL": build_tokenizer(architecture="qwen2.5-vl"),
        "Qwen3-VL": build_tokenizer(architecture="qwen3-vl"),
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


def test_every_family_has_its_release_transcribed():
    assert set(RELEASES) == set(GROUNDING_FAMILIES)


@pytest.mark.parametrize("name", sorted(RELEASES))
@pytest.mark.parametrize("task", [TASK, "the Save button.", 'a "quoted" {brace} tab\there'])
def test_prompt_is_what_the_release_renders(chat_templates, name, task):
    family = grounding_family(name)
    frame = family.frame(Monitor(width=1710, height=852))  # the Holo cookbook's screenshot
    ours = family.prompt(task, frame)
    expected = chat_templates[family.architecture].apply_chat_template(
        RELEASES[name](task, frame.resized_width, frame.resized_height),
        tokenize=False,
        add_generation_prompt=True,
    )
    assert ours.chat_text() == expected
    assert ours.chat_text().count("<|image_pad|>") == 1


def test_family_data_is_each_releases():
    def bounds(name):
        family = grounding_family(name)
        return family.factor, family.min_pixels, family.max_pixels, family.coordinates

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
    frame = grounding_family("gta1").frame(Monitor(width=3840, height=2160))
    system = grounding_family("gta1").prompt("x", frame).messages[0].text
    assert f"height {frame.resized_height} and width {frame.resized_width}" in system
    assert frame.resized_size == (3836, 2156)  # a 4K screen keeps its size (under 4096x2160)
    with pytest.raises(UnknownGroundingFamily, match="holo1.5"):
        grounding_family("holo2")


def test_answers_land_on_the_screen_through_the_frame():
    monitor = Monitor(width=1920, height=1080)
    venus = grounding_family("ui-venus-ground")
    frame = venus.frame(monitor)
    assert frame.resized_size == (1932, 1092)
    located = venus.locate("[966,540,1000,560]", frame)  # resized pixels
    assert frame.to_screen(*located.point) == (977, 544) and located.box == (966, 540, 1000, 560)
    qwen = grounding_family("qwen3-vl-ground")
    frame = qwen.frame(monitor)
    assert frame.to_screen(*qwen.locate('[{"bbox_2d": [0, 0, 1000, 1000]}]', frame).point) == (
        960,
        540,
    )
    refused = grounding_family("ui-venus-1.5-ground").locate("[-1,-1]", frame)
    assert refused.refused and refused.point is None
    with pytest.raises(GroundingFormatError):
        qwen.locate("no box", frame)
    pixels = venus.frame(monitor)
    with pytest.raises(CoordinateError, match="outside the screenshot"):  # far past the image
        pixels.to_screen(*venus.locate("[5000, 10, 5100, 20]", pixels).point)


# -- a grounding eval scored through the family --------------------------------------------


def family_predict(family_name: str):
    """Stands in for evaluation.predict: the family's prompt, frame and parser."""
    family = grounding_family(family_name)

    def predict(model, image, goal, space, min_pixels, max_pixels, history=None) -> Prediction:
        frame = family.frame(
            Monitor(width=image.width, height=image.height), min_pixels, max_pixels
        )
        started = time.perf_counter()
        response = model.respond(family.prompt(goal, frame), model_view(image, frame))
        prediction = Prediction(
            response=response.text, frame=frame, model_ms=(time.perf_counter() - started) * 1000
        )
        try:
            located = family.locate(response.text, frame)
        except (GroundingFormatError, CoordinateError) as error:
            prediction.error = str(error)
            return prediction
        if located.point is not None:
            prediction.point = frame.to_image(*located.point)
        if located.box is not None:
            prediction.box = (*frame.to_image(*located.box[:2]), *frame.to_image(*located.box[2:]))
        return prediction

    return predict


@pytest.fixture
def screenspot(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (1920, 1080), "white").save(images / "desk.png")
    Image.new("RGB", (1080, 2400), "white").save(images / "phone.png")
    records = [  # bbox = x, y, w, h
        {
            "img_filename": "desk.png",
            "instruction": "ok button",
            "bbox": [100, 100, 200, 50],
            "data_type": "text",
            "data_source": "windows",
        },
        {
            "img_filename": "desk.png",
            "instruction": "gear icon",
            "bbox": [1800, 20, 40, 40],
            "data_type": "icon",
            "data_source": "macos",
        },
        {
            "img_filename": "phone.png",
            "instruction": "send",
            "bbox": [900, 2200, 100, 100],
            "data_type": "icon",
            "data_source": "android",
        },
        {
            "img_filename": "phone.png",
            "instruction": "title",
            "bbox": [100, 300, 600, 80],
            "data_type": "text",
            "data_source": "ios",
        },
    ]
    annotations = tmp_path / "screenspot_desktop.json"
    annotations.write_text(json.dumps(records))
    return annotations, images


def _eval(monkeypatch, family_name, answers, annotations, images, out):
    family = grounding_family(family_name)
    monkeypatch.setattr(runner, "predict", family_predict(family_name))
    config = EvalConfig(
        format="screenspot",
        annotations=str(annotations),
        images=str(images),
        model="scripted",
        min_pixels=family.min_pixels,
        max_pixels=family.max_pixels,
    )
    model = ScriptedModel(answers)
    metrics = run_eval(config, model, out)
    predictions = [
        json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()
    ]
    return metrics, predictions, model


def test_a_grounding_eval_with_0_1000_boxes_is_scored_right(monkeypatch, screenspot, tmp_path):
    annotations, images = screenspot
    answers = [
        # centre (105, 115.5)/1000 of 1920x1080 = (201.6, 124.7): inside (100..300, 100..150)
        '```json\n[{"bbox_2d": [90, 100, 120, 131], "label": "ok button"}]\n```',
        # centre (900, 40)/1000 = (1728, 43.2): left of the gear (1800..1840): wrong
        '[{"bbox_2d": [890, 30, 910, 50], "label": "gear icon"}]',
        # centre (880, 937.5)/1000 of 1080x2400 = (950.4, 2250): inside (900..1000, 2200..2300)
        '[{"bbox_2d": [870, 930, 890, 945], "label": "send"}]',
        "The title is at the top of the screen.",  # no box: wrong format, still counted
    ]
    metrics, predictions, model = _eval(
        monkeypatch, "qwen3-vl-ground", answers, annotations, images, tmp_path / "out"
    )
    assert metrics["n"] == 4 and metrics["correct"] == 2 and metrics["wrong_format"] == 1
    assert [p["correct"] for p in predictions] == [True, False, True, False]
    assert predictions[0]["point"] == pytest.approx([201.6, 124.74], abs=0.01)
    assert predictions[0]["predicted_box"] == pytest.approx([172.8, 108.0, 230.4, 141.48], abs=0.01)
    assert predictions[2]["point"] == pytest.approx([950.4, 2250.0], abs=0.01)
    # The model saw factor-32 images and Qwen3-VL's prompt, image first.
    assert predictions[0]["resized_size"] == [1920, 1088] and predictions[2]["resized_size"] == [
        1088,
        2400,
    ]
    assert model.prompts[0].messages[0].image_first and model.prompts[0].messages[0].role == "user"


def test_a_grounding_eval_with_resized_pixel_boxes_is_scored_right(
    monkeypatch, screenspot, tmp_path
):
    """UI-Venus-Ground-7B answers boxes in pixels of the image it saw (1932x1092 for a
    1920x1080 screenshot): read as 0-1000, the first box would land at (193, 137)...(232, 164)
    and miss; read as pixels it is inside."""
    annotations, images = screenspot
    answers = ["[195,100,210,150]", "[1700,20,1720,40]", "[930,2210,960,2240]", "[1,2,3]"]
    metrics, predictions, _ = _eval(
        monkeypatch, "ui-venus-ground", answers, annotations, images, tmp_path / "out"
    )
    assert [p["correct"] for p in predictions] == [True, False, True, False]
    assert metrics["correct"] == 2 and metrics["wrong_format"] == 1
    assert predictions[0]["resized_size"] == [1932, 1092]
    assert predictions[0]["point"] == pytest.approx([202.5 * 1920 / 1932, 125 * 1080 / 1092])


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
        ("Qwen/Qwen3-VL-4B-Instruct", None),
        ("Qwen/Qwen2.5-VL-3B-Instruct", None),
        ("inclusionAI/UI-Venus-Navi-7B", None),
        ("acme/GTA12-vision", None),
    ],
)
def test_checkpoint_names_pick_their_grounding_family(checkpoint, family):
    from qvl_agent.grounding_families import grounding_family_for

    found = grounding_family_for(checkpoint)
    assert (found.name if found else None) == family
