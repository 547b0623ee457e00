"""The tiny Qwen2.5-VL checkpoint, loaded through from_pretrained, with its output layer
fitted so that greedy decoding gives UI-TARS-1.5's and GUI-Owl's well-formed answers: the
local backend renders each family's prompt (several screenshots for UI-TARS's history),
decodes, and the family's parser turns the decoded text into the intended actions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from qvl_agent.actions import Click, LeftClick, Terminate, TypeText
from qvl_agent.families import Turn, get_family
from qvl_agent.geometry import Monitor
from tests.model_fixtures import fit_answers

pytestmark = pytest.mark.local_model

SMALL = 160 * 28 * 28  # small frames: fast on a CPU
DESKTOP, PHONE = Monitor(width=1920, height=1080), Monitor(width=1080, height=2400)


def screenshot(frame, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(
        0, 256, (frame.resized_height, frame.resized_width, 3)
    )
    return Image.fromarray(pixels.astype(np.uint8))


def owl_answer(thinking: str, arguments: dict, conclusion: str) -> str:
    call = json.dumps({"name": "mobile_use", "arguments": arguments})
    return (
        f"<thinking>\n{thinking}\n</thinking>\n<tool_call>\n{call}\n</tool_call>\n"
        f"<conclusion>\n{conclusion}\n</conclusion>"
    )


def cases():
    """(family, space, prompt, screenshot, the answer fitted, the action it must parse to)."""
    tars, owl = get_family("ui-tars-1.5"), get_family("gui-owl")
    desk, phone = tars.frame(DESKTOP, max_pixels=SMALL), owl.frame(PHONE, max_pixels=SMALL)
    tars_phone = tars.frame(PHONE, max_pixels=SMALL)
    history = [
        Turn(
            action=LeftClick(coordinate={"model": (40, 60)}),
            response=f"Thought: step {i}.\nAction: click(start_box='(40,60)')",
            image=screenshot(desk, 20 + i),
        )
        for i in range(2)
    ]
    owl_history = [Turn(action=Click(coordinate={"model": (50, 80)}), summary="Opened Settings")]
    return [
        (
            "ui-tars-1.5",
            "computer",
            tars.prompt("Open the settings", "computer", desk, [], 5),
            screenshot(desk, 1),
            "Thought: The settings button is at the top right.\n"
            "Action: click(start_box='<|box_start|>(400,20)<|box_end|>')",
            LeftClick(coordinate={"model": (400, 20), "screen": desk.to_screen(400, 20)}),
        ),
        (
            "ui-tars-1.5",
            "computer",
            tars.prompt("Type the name", "computer", desk, history, 5),
            screenshot(desk, 2),
            "Thought: Now the name.\nAction: type(content='Ada\\n')",
            TypeText(text="Ada\n"),
        ),
        (
            "ui-tars-1.5",
            "mobile",
            tars.prompt("Find Zoe", "mobile", tars_phone, [], 5),
            screenshot(tars_phone, 3),
            "Thought: Zoe is further down.\nAction: scroll(point='<point>120 300</point>', "
            "direction='up')",
            None,
        ),
        (
            "gui-owl",
            "mobile",
            owl.prompt("Turn on airplane mode", "mobile", phone, [], 1),
            screenshot(phone, 4),
            owl_answer(
                "Settings is on the home screen.",
                {"action": "click", "coordinate": [50, 80]},
                "Opened Settings",
            ),
            Click(coordinate={"model": (50, 80), "screen": phone.to_screen(50, 80)}),
        ),
        (
            "gui-owl",
            "mobile",
            owl.prompt("Turn on airplane mode", "mobile", phone, owl_history, 1),
            screenshot(phone, 5),
            owl_answer("It is on.", {"action": "terminate", "status": "success"}, "Done"),
            Terminate(status="success"),
        ),
    ]


@pytest.fixture(scope="module")
def family_model(tiny_checkpoint):
    from qvl_agent.models.local import LocalModel

    model = LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=96)
    fit_answers(model, [(prompt, image, answer) for _, _, prompt, image, answer, _ in cases()])
    return model


def test_greedy_answers_in_each_family_format_parse_to_the_intended_actions(family_model):
    for family_name, space, prompt, image, answer, expected in cases():
        response = family_model.respond(prompt, image)
        # <|box_start|>/<|box_end|> are special tokens: decoding drops them, as it does for
        # the released model, and the parser reads what is left.
        assert response.text == answer.replace("<|box_start|>", "").replace("<|box_end|>", "")
        assert response.prompt_tokens > 100 * prompt.image_count()  # every image's patches
        family = get_family(family_name)
        frame_monitor = DESKTOP if space == "computer" else PHONE
        frame = family.frame(frame_monitor, max_pixels=SMALL)
        parsed = family.parse(response.text, frame, space)
        if expected is None:  # the phone scroll: a swipe up from the point
            assert parsed.action.action == "swipe"
            assert parsed.action.coordinate.model == (120, 300)
            assert parsed.action.coordinate2.screen[1] == parsed.action.coordinate.screen[1] - 200
        else:
            assert parsed.action == expected
        assert parsed.thought
        if family_name == "gui-owl":
            assert parsed.summary in ("Opened Settings", "Done")


def test_the_history_prompt_holds_three_screenshots_and_the_model_sees_them(family_model):
    _, _, prompt, image, _, _ = cases()[1]
    assert prompt.image_count() == 3
    inputs = family_model.encode(prompt, image)
    assert inputs["image_grid_thw"].shape[0] == 3
    pads = int((inputs["input_ids"] == family_model.image_pad_id).sum())
    assert pads == int(inputs["image_grid_thw"].prod(dim=1).sum()) // 4
    # The earlier screenshots matter: other pixels there, another answer.
    other = prompt.model_copy(
        update={
            "earlier_images": [
                screenshot(get_family("ui-tars-1.5").frame(DESKTOP, max_pixels=SMALL), 99)
            ]
            * 2
        }
    )
    assert family_model.respond(other, image).text != family_model.respond(prompt, image).text


def test_the_family_is_chosen_from_the_checkpoint_directory_with_a_notice(
    tiny_checkpoint, tmp_path
):
    """`ground` on the tiny checkpoint under UI-TARS's name: the notice, UI-TARS's frame (its
    pixel bounds), the family in the output (the fallback for unknown names is checked
    without loading a model in test_families)."""
    import subprocess
    import sys

    image = tmp_path / "shot.png"
    Image.new("RGB", (200, 150), "white").save(image)
    for name, family, notice in [
        (
            "UI-TARS-1.5-7B",
            "ui-tars-1.5",
            "model family: ui-tars-1.5 (from the name 'UI-TARS-1.5-7B'",
        ),
    ]:
        (tmp_path / name).symlink_to(tiny_checkpoint, target_is_directory=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "qvl_agent",
                "ground",
                str(image),
                "the OK button",
                "--model",
                str(tmp_path / name),
                "--max-new-tokens",
                "8",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert notice in result.stderr, result.stderr
        out = json.loads(result.stdout)
        assert out["family"] == family
        # UI-TARS's MIN_PIXELS (100*28*28) makes this small screenshot larger than Qwen's frame.
        assert out["resized"] == [336, 252]  # Qwen's frame would be 196x140
