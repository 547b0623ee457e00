"""Families are chosen from the checkpoint (with a notice), overridable, recorded; their
coordinate frames are converted by geometry alone; the CLI explains any family's answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from qvl_agent.families import FAMILIES, FamilyError, get_family
from qvl_agent.families.detect import choose_family
from qvl_agent.geometry import CoordinateError, Frame, Monitor
from qvl_agent.trajectory import read_run
from tests.agent_helpers import write_script

QWEN25 = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl"}
QWEN3 = {"architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl"}


def checkpoint_dir(root: Path, name: str, config: dict) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def qvl(*args, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qvl_agent", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- the registry -------------------------------------------------------------------------------


def test_every_family_is_complete_data():
    for name, family in FAMILIES.items():
        assert family.name == name and family.source and family.history
        assert family.factor in (28, 32) and 0 < family.min_pixels < family.max_pixels
        assert family.coordinates in ("pixels", "rel1000", "rel999", "rel1")
        assert (family.prompt is None) == (family.parse is None)
        assert family.prompt is not None or family.ground is not None


def test_ui_tars_and_gui_owl_have_their_own_pixel_bounds():
    assert (get_family("ui-tars-1.5").min_pixels, get_family("ui-tars-1.5").max_pixels) == (
        100 * 28 * 28,
        16384 * 28 * 28,
    )
    assert (get_family("gui-owl").min_pixels, get_family("gui-owl").max_pixels) == (3136, 10035200)
    # UI-TARS-1.5 answers in 1932x1092 for a 1920x1080 screen, not in 1920x1080.
    assert get_family("ui-tars-1.5").frame(Monitor(width=1920, height=1080)).resized_size == (
        1932,
        1092,
    )
    # A small window: UI-TARS's larger minimum makes it larger than Qwen's frame.
    small = Monitor(width=200, height=150)
    assert get_family("ui-tars-1.5").frame(small).resized_size == (336, 252)
    assert get_family("qwen2.5-vl").frame(small).resized_size == (196, 140)


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(FamilyError, match="unknown model family 'nope'; known: .*ui-tars-1.5"):
        get_family("nope")


def test_a_family_refuses_a_space_it_was_not_trained_for():
    with pytest.raises(FamilyError, match="gui-owl has no trained prompt for the computer"):
        get_family("gui-owl").check_space("computer")


# -- automatic choice ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "config", "family", "why"),
    [
        ("UI-TARS-1.5-7B", QWEN25, "ui-tars-1.5", "from the name 'UI-TARS-1.5-7B'"),
        ("GUI-Owl-7B", QWEN25, "gui-owl", "from the name 'GUI-Owl-7B'"),
        (
            "checkpoint-1200",
            {**QWEN25, "_name_or_path": "mPLUG/GUI-Owl-32B"},
            "gui-owl",
            "from the name 'mPLUG/GUI-Owl-32B'",
        ),
        (
            "models--ByteDance-Seed--UI-TARS-1.5-7B/snapshots/683d002dd99d",
            QWEN25,
            "ui-tars-1.5",
            "from the name 'ByteDance-Seed/UI-TARS-1.5-7B'",
        ),
        ("Qwen2.5-VL-7B-Instruct", QWEN25, "qwen2.5-vl", "from the name 'Qwen2.5-VL-7B-Instruct'"),
        (
            "my-sft",
            QWEN25,
            "qwen2.5-vl",
            "'my-sft' is a Qwen2_5_VLForConditionalGeneration of no known fine-tune: "
            "using qwen2.5-vl",
        ),
        ("my-vlm", {}, "qwen2.5-vl", "'my-vlm' is no known fine-tune: falling back to qwen2.5-vl"),
    ],
)
def test_the_family_comes_from_the_checkpoint(tmp_path, name, config, family, why):
    choice = choose_family(str(checkpoint_dir(tmp_path, name, config)))
    assert choice.family.name == family
    assert why in choice.notice and choice.notice.startswith(f"model family: {family} (")


def test_a_gui_owl_1_5_name_on_a_qwen3_checkpoint_is_not_gui_owl(tmp_path):
    """GUI-Owl-1.5 is a Qwen3-VL answering 0-1000: the 7B's absolute-pixel family is wrong."""
    choice = choose_family(str(checkpoint_dir(tmp_path, "GUI-Owl-1.5-8B-Instruct", QWEN3)))
    assert choice.family.name != "gui-owl"


def test_hub_ids_and_endpoints_are_chosen_by_name():
    assert choose_family("ByteDance-Seed/UI-TARS-1.5-7B").family.name == "ui-tars-1.5"
    served = choose_family("mPLUG/GUI-Owl-7B", endpoint="http://127.0.0.1:8000/v1")
    assert served.family.name == "gui-owl"
    unknown = choose_family("qwen-test", endpoint="http://127.0.0.1:8000/v1")
    assert unknown.family.name == "qwen2.5-vl" and "falling back" in unknown.notice


def test_scripted_models_and_explicit_choices():
    assert choose_family("scripted:answers.jsonl").family.name == "qwen2.5-vl"
    choice = choose_family("ByteDance-Seed/UI-TARS-1.5-7B", requested="qwen2.5-vl")
    assert choice.family.name == "qwen2.5-vl" and choice.reason == "chosen with --family"


# -- coordinate frames: geometry converts all of them ---------------------------------------------


def test_a_rel1000_point_maps_through_the_frame():
    frame = Frame.fit(Monitor(left=1920, width=1920, height=1080), factor=32, coordinates="rel1000")
    assert frame.to_screen(500, 500) == (1920 + 960, 540)
    assert frame.to_screen(1000, 1000) == (1920 + 1919, 1079)  # the edge, clamped on the monitor
    assert frame.to_image(250, 500) == (480.0, 540.0)
    assert frame.to_model(1920 + 960, 540) == (500, 500)
    with pytest.raises(CoordinateError, match="0 <= x <= 1000"):
        frame.to_screen(1100, 10)
    unit = Frame.fit(Monitor(width=1080, height=2400), coordinates="rel1")
    assert unit.to_screen(0.5, 0.25) == (540, 600)
    assert unit.to_model(540, 600) == pytest.approx((0.5, 0.25), abs=0.001)


# -- the command line -----------------------------------------------------------------------------


def test_parse_explains_a_ui_tars_answer():
    answer = (
        "Thought: The OK button is in the middle of the dialog.\n"
        "Action: click(start_box='<|box_start|>(966,546)<|box_end|>')"
    )
    result = qvl("parse", "--family", "ui-tars-1.5", "--screen", "1920x1080", stdin=answer)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["action"] == "left_click" and out["coordinate"] == [966, 546]
    assert out["screen_coordinate"] == [960, 540] and out["resized"] == [1932, 1092]
    assert out["thought"] == "The OK button is in the middle of the dialog."
    assert out["family"] == "ui-tars-1.5"


def test_parse_explains_a_gui_owl_answer_and_refuses_what_it_cannot():
    answer = (
        '<thinking>\nOpen Settings.\n</thinking>\n<tool_call>\n{"name": "mobile_use", '
        '"arguments": {"action": "click", "coordinate": [546, 1204]}}\n</tool_call>\n'
        "<conclusion>\nOpened Settings\n</conclusion>"
    )
    result = qvl(
        "parse", "--family", "gui-owl", "--space", "mobile", "--screen", "1080x2400", stdin=answer
    )
    out = json.loads(result.stdout)
    assert out["screen_coordinate"] == [540, 1200] and out["summary"] == "Opened Settings"
    refused = qvl("parse", "--family", "gui-owl", "--screen", "1920x1080", stdin=answer)
    assert refused.returncode == 2 and "no trained prompt for the computer" in refused.stderr
    unknown = qvl("parse", "--family", "tars", "--screen", "1920x1080", stdin=answer)
    assert unknown.returncode == 2 and "known: " in unknown.stderr
    bad = qvl("parse", "--family", "ui-tars-1.5", "--screen", "1920x1080", stdin="I clicked.")
    assert bad.returncode == 2 and "no 'Action: ...' line" in bad.stderr


def test_run_records_the_family_prints_the_notice_and_the_thoughts(tmp_path):
    Image.new("RGB", (1920, 1080), "white").save(tmp_path / "shot.png")
    script = write_script(
        tmp_path / "script.jsonl",
        [
            "Thought: The centre of the screen.\nAction: click(start_box='(966,546)')",
            "Thought: Nothing else to do.\nAction: finished()",
        ],
    )
    result = qvl(
        "run",
        "Click the centre",
        "--device",
        f"image:{tmp_path / 'shot.png'}",
        "--model",
        f"scripted:{script}",
        "--family",
        "ui-tars-1.5",
        "--settle",
        "0",
        "--record",
        str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.stderr
    assert "model family: ui-tars-1.5 (chosen with --family)" in result.stderr
    assert "left_click at (960, 540)" in result.stderr
    assert "thought: The centre of the screen." in result.stderr
    run = read_run(tmp_path / "run")
    assert run.meta.config["family"] == "ui-tars-1.5"
    assert (run.meta.config["min_pixels"], run.meta.config["max_pixels"]) == (78400, 12845056)
    assert run.meta.config["history_images"] == 5
    assert [s.thought for s in run.steps] == ["The centre of the screen.", "Nothing else to do."]
    assert run.steps[0].frame.resized_size == (1932, 1092)


def test_run_refuses_a_family_without_a_prompt_for_the_device(tmp_path):
    Image.new("RGB", (1920, 1080), "white").save(tmp_path / "shot.png")
    result = qvl(
        "run",
        "x",
        "--device",
        f"image:{tmp_path / 'shot.png'}",
        "--model",
        "scripted:none.jsonl",
        "--family",
        "gui-owl",
        "--record",
        str(tmp_path / "run"),
    )
    assert (
        result.returncode == 2 and "gui-owl has no trained prompt for the computer" in result.stderr
    )
    assert not (tmp_path / "run").exists()


# -- eval: the family's prompt and frame, recorded ------------------------------------------------


def test_eval_in_the_ui_tars_family_scores_its_answers_and_records_it(tmp_path):
    from environments.synthetic_screenspot import write_synthetic_screenspot

    data = write_synthetic_screenspot(tmp_path, 12, hit_share=0.5)
    assert 0 < data["hits"] < 12  # hits and misses both
    # The same points, in UI-TARS's grammar (its frame equals Qwen's at this budget).
    answers = []
    for line in data["script"].read_text().splitlines():
        call = json.loads(
            json.loads(line)["response"].split("<tool_call>\n")[1].split("\n</tool_call>")[0]
        )
        x, y = call["arguments"]["coordinate"]
        answers.append(f"Thought: There it is.\nAction: click(start_box='({x},{y})')")
    script = write_script(tmp_path / "ui_tars.jsonl", answers)
    result = qvl(
        "eval",
        "--format",
        "screenspot",
        "--annotations",
        str(data["annotations"]),
        "--images",
        str(data["images"]),
        "--model",
        f"scripted:{script}",
        "--family",
        "ui-tars-1.5",
        "--max-pixels",
        str(1280 * 28 * 28),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(data["hits"] / 12, abs=1e-6)
    assert metrics["wrong_format"] == 0
    assert metrics["config"]["family"] == "ui-tars-1.5"
    assert json.loads((tmp_path / "out" / "eval.json").read_text())["family"] == "ui-tars-1.5"
    # The questions went out in UI-TARS's grounding prompt.
    assert "model family: ui-tars-1.5" in result.stderr


def test_a_grounding_family_answering_0_1000_boxes_plugs_in_and_is_scored_right(tmp_path):
    """How a grounding-only family answering 0-1000 boxes (as Qwen3-VL does) plugs in: a prompt
    and a parser returning a box in its frame; geometry maps it back."""
    from environments.synthetic_screenspot import write_synthetic_screenspot
    from qvl_agent.evaluation.runner import EvalConfig, run_eval
    from qvl_agent.families import FAMILIES, Grounding, Located, register
    from qvl_agent.families.base import Family
    from qvl_agent.models.scripted import ScriptedModel
    from qvl_agent.parsing import NUMBER
    from qvl_agent.prompts import Message, Prompt

    def prompt(description, frame):
        return Prompt(messages=[Message(role="user", text=description, image=True)])

    def parse(text, frame):
        x1, y1, x2, y2 = (float(n) for n in NUMBER.findall(text)[:4])
        return Located(point=((x1 + x2) / 2, (y1 + y2) / 2), box=(x1, y1, x2, y2))

    data = write_synthetic_screenspot(tmp_path, 9, hit_share=2 / 3)
    assert 0 < data["hits"] < 9
    records = json.loads(data["annotations"].read_text())
    sizes = {"desktop": (1920, 1080), "mobile": (1080, 2400), "web": (1280, 720)}
    answers = []
    for record, line in zip(records, data["script"].read_text().splitlines()):
        width, height = sizes[record["img_filename"].split("_")[0]]
        x, y, w, h = record["bbox"]
        hit = json.loads(line)["response"]  # a hit or a miss, as the qwen script says
        qwen = Frame.fit(Monitor(width=width, height=height), max_pixels=1280 * 28 * 28)
        px, py = qwen.to_image(
            *json.loads(hit.split("<tool_call>\n")[1].split("\n</tool_call>")[0])["arguments"][
                "coordinate"
            ]
        )
        # A box 40 screen pixels wide around that point, on the 0-1000 grid.
        box = [
            round((px - 20) * 1000 / width),
            round((py - 10) * 1000 / height),
            round((px + 20) * 1000 / width),
            round((py + 10) * 1000 / height),
        ]
        answers.append(json.dumps(box))
    family = register(
        Family(
            name="test-ground-1000",
            title="test",
            source="test",
            coordinates="rel1000",
            factor=28,
            min_pixels=3136,
            max_pixels=1280 * 28 * 28,
            history="none",
            ground=Grounding(prompt=prompt, parse=parse, source="test"),
        )
    )
    try:
        config = EvalConfig(
            format="screenspot",
            annotations=str(data["annotations"]),
            images=str(data["images"]),
            model="scripted",
            family=family.name,
            max_pixels=1280 * 28 * 28,
        )
        metrics = run_eval(config, ScriptedModel(answers), tmp_path / "out")
    finally:
        del FAMILIES[family.name]
    assert metrics["accuracy"] == pytest.approx(data["hits"] / 9, abs=1e-6)
    assert metrics["config"]["family"] == "test-ground-1000"
