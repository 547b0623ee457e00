"""The ``qwen3-vl`` agent family: its prompts are the Qwen3-VL cookbooks' to the byte (through
the real Qwen3-VL chat template), its answers land where the cookbooks map them (0-1000 on a
computer, 0-999 on a phone), a scripted Qwen3-VL turns on airplane mode on the simulated phone
through the real adb server, and the command line sends an endpoint factor-32 images and
refuses a checkpoint of the other factor."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from environments.tasks.android import ANDROID_TASKS, widget_centre
from qvl_agent.actions import Wait
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.android import AndroidDevice
from qvl_agent.families import Turn, get_family
from qvl_agent.families.detect import choose_family
from qvl_agent.geometry import Monitor
from qvl_agent.models.scripted import ScriptedModel
from qvl_agent.parsing import ActionParseError
from qvl_agent.trajectory import read_run
from tests import reference_prompts as reference
from tests.agent_helpers import qvl_in_process as qvl
from tests.agent_helpers import write_script
from tests.fault_server import FaultServer, completion

QWEN3 = get_family("qwen3-vl")
# The mobile cookbook's saved answer, for its 1440x3120 screenshot.
COOKBOOK_ANSWER = (
    "Thought: To search for Musk in X, I need to click on the search bar at the top of the "
    "screen. This will allow me to type in the search query.\n"
    'Action: "I tapped on the search bar to begin searching for Musk."\n'
    '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", "coordinate": '
    "[447, 81]}}\n</tool_call>"
)


@pytest.fixture(scope="module")
def chat_template():
    from qvl_agent.models.checkpoint import build_tokenizer

    tokenizer = build_tokenizer(architecture="qwen3-vl")
    return lambda messages: tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )


# -- the prompts --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1920, 1080), (2560, 1440), (1366, 768)])
@pytest.mark.parametrize("query", ["Reload cache", 'open the "first" issue {1}'])
def test_computer_prompt_is_the_cookbooks(chat_template, size, query):
    frame = QWEN3.frame(Monitor(width=size[0], height=size[1]), space="computer")
    assert (frame.coordinates, frame.factor) == ("rel1000", 32)
    ours = QWEN3.prompt(query, "computer", frame, [], QWEN3.history_images)
    assert ours.chat_text() == chat_template(reference.qwen3_computer_use_messages(query))
    assert "The screen's resolution is 1000x1000." in ours.messages[0].text


@pytest.mark.parametrize(
    "history",
    [
        [],
        ["I opened the X app from the home screen."],
        [  # the cookbook's Chinese example, and a summary with a newline and double quotes
            "Opening the Bilibili app.",
            "Type 'Qwen-VL' into the search bar.",
            "Clicking the '搜索' button to initiate the search for Qwen-VL videos.",
            'I tapped "Search"\nand waited.',
        ],
    ],
)
def test_mobile_prompt_is_the_cookbooks(chat_template, history):
    instruction = "Search for Musk in X and go to his homepage to open the first post."
    frame = QWEN3.frame(Monitor(width=1440, height=3120), space="mobile")
    assert frame.coordinates == "rel999"
    turns = [Turn(action=Wait(), summary=summary) for summary in history]
    ours = QWEN3.prompt(instruction, "mobile", frame, turns, 1)
    assert ours.chat_text() == chat_template(reference.qwen3_mobile_messages(instruction, history))
    assert ours.messages[0].text == reference.QWEN3_MOBILE_SYSTEM_PROMPT


# -- the answers --------------------------------------------------------------------------------


def test_the_cookbooks_answer_lands_where_the_cookbook_maps_it():
    frame = QWEN3.frame(Monitor(width=1440, height=3120), space="mobile")
    parsed = QWEN3.parse(COOKBOOK_ANSWER, frame, "mobile")
    assert parsed.action.action == "click"
    assert list(parsed.action.coordinate.screen) == reference.rescale_coordinates(
        [447, 81], 1440, 3120
    )
    assert parsed.thought.startswith("To search for Musk in X, I need to click")
    assert parsed.summary == '"I tapped on the search bar to begin searching for Musk."'


@pytest.mark.parametrize(
    ("space", "arguments", "expected"),
    [
        ("computer", {"action": "left_click", "coordinate": [500, 500]},
         ("left_click", (960, 540))),
        ("computer", {"action": "left_click", "coordinate": [1000, 1000]},
         ("left_click", (1919, 1079))),
        # The tool says: "simulated as double-click", "mapped to regular scroll".
        ("computer", {"action": "triple_click", "coordinate": [250, 750]},
         ("double_click", (480, 810))),
        ("computer", {"action": "hscroll", "pixels": -300}, ("scroll", None)),
        ("computer", {"action": "answer", "text": "42"}, ("answer", None)),
        ("mobile", {"action": "click", "coordinate": [999, 999]}, ("click", (1919, 1079))),
        ("mobile", {"action": "long_press", "coordinate": [333, 500], "time": 2},
         ("long_press", (round(333 / 999 * 1920), round(500 / 999 * 1080)))),
    ],
)
def test_tool_calls_map_through_the_spaces_grid(space, arguments, expected):
    frame = QWEN3.frame(Monitor(width=1920, height=1080), space=space)
    name = {"computer": "computer_use", "mobile": "mobile_use"}[space]
    call = json.dumps({"name": name, "arguments": arguments})
    parsed = QWEN3.parse(f"<tool_call>\n{call}\n</tool_call>", frame, space)
    points = parsed.action.points()
    assert (parsed.action.action, points[0].screen if points else None) == expected
    if arguments["action"] in ("triple_click", "hscroll"):
        assert parsed.notes[0] == f'action "{arguments["action"]}" read as "{expected[0]}"'


def test_unusable_answers_are_fed_back_with_the_grid():
    frame = QWEN3.frame(Monitor(width=1920, height=1080), space="computer")
    call = '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", ' \
           '"coordinate": [1920, 540]}}\n</tool_call>'
    with pytest.raises(ActionParseError, match="0 <= x <= 1000"):
        QWEN3.parse(call, frame, "computer")
    with pytest.raises(ActionParseError, match="no tool call"):
        QWEN3.parse("Thought: done.\nAction: nothing", frame, "computer")
    # Prose without the labels stays the thought, as for Qwen2.5-VL.
    plain = QWEN3.parse("I will wait." + call.replace("1920", "10"), frame, "computer")
    assert (plain.thought, plain.summary) == ("I will wait.", None)


def test_parse_explains_a_qwen3_answer_on_a_phone():
    result = qvl("parse", "--family", "qwen3-vl", "--space", "mobile", "--screen", "1440x3120",
                 stdin=COOKBOOK_ANSWER)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["coordinates"] == "rel999" and out["coordinate"] == [447, 81]
    assert out["screen_coordinate"] == [644, 253] and out["resized"] == [1440, 3136]
    assert out["summary"].startswith('"I tapped on the search bar')
    keys = '<tool_call>\n{"name": "computer_use", "arguments": {"action": "key", "keys": ' \
           '["ctrl", "s"]}}\n</tool_call>'
    result = qvl("parse", "--family", "qwen3-vl", "--screen", "1920x1080", stdin=keys)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["keys"] == ["ctrl", "s"]


# -- the tiny Qwen3-VL checkpoint, fitted to answer in this family's format --------------------

SMALL = 160 * 32 * 32  # keeps the CPU test fast
AGENT_CASES = [  # space, screen, goal, answer, the action and the screen pixel it lands on
    ("computer", (1920, 1080), "Open the settings",
     "Thought: The gear icon is at the top right.\nAction: Click the gear icon.\n<tool_call>\n"
     '{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [950, 40]}}'
     "\n</tool_call>", ("left_click", (1824, 43))),
    ("mobile", (1080, 2400), "Send the message",
     "Thought: The send button is at the bottom.\nAction: Tap send.\n<tool_call>\n"
     '{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [500, 900]}}'
     "\n</tool_call>", ("click", (541, 2162))),
]


@pytest.mark.local_model
def test_a_fitted_tiny_qwen3_vl_answers_in_its_format_and_lands_right(tiny_qwen3_checkpoint):
    """The real Qwen3-VL classes through LocalModel, the output layer fitted so that greedy
    decoding gives each answer after this family's prompt; the answers parse to the intended
    actions on the space's grid."""
    import numpy as np

    from qvl_agent.geometry import model_view
    from qvl_agent.models.local import LocalModel
    from tests.model_fixtures import fit_answers

    model = LocalModel(tiny_qwen3_checkpoint, device="cpu", max_new_tokens=96)
    cases = []
    for seed, (space, size, goal, answer, _) in enumerate(AGENT_CASES):
        frame = QWEN3.frame(Monitor(width=size[0], height=size[1]), max_pixels=SMALL, space=space)
        pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
        image = model_view(Image.fromarray(pixels), frame)
        cases.append((frame, QWEN3.prompt(goal, space, frame, [], 1), image, answer))
    fit_answers(model, [(prompt, image, answer) for _, prompt, image, answer in cases])
    for (frame, prompt, image, answer), (space, *_, expected) in zip(cases, AGENT_CASES):
        assert frame.factor == 32 and image.width % 32 == 0 == image.height % 32
        response = model.respond(prompt, image)
        assert response.text == answer
        parsed = QWEN3.parse(response.text, frame, space)
        assert (parsed.action.action, parsed.action.coordinate.screen) == expected
        assert parsed.summary and parsed.thought


# -- chosen from the checkpoint -----------------------------------------------------------------


def test_qwen3_checkpoints_are_recognised(tmp_path):
    assert choose_family("Qwen/Qwen3-VL-8B-Instruct").family is QWEN3
    served = choose_family("Qwen/Qwen3-VL-235B-A22B-Instruct", endpoint="http://h:8000/v1")
    assert served.family is QWEN3 and "from the name" in served.notice
    for name, config in [
        ("my-qwen3-sft", {"architectures": ["Qwen3VLForConditionalGeneration"],
                          "model_type": "qwen3_vl"}),
        ("GUI-Owl-1.5-8B-Instruct", {"architectures": ["Qwen3VLForConditionalGeneration"],
                                     "model_type": "qwen3_vl"}),
        ("moe-sft", {"architectures": ["Qwen3VLMoeForConditionalGeneration"],
                     "model_type": "qwen3_vl_moe"}),
    ]:
        path = tmp_path / name
        path.mkdir()
        (path / "config.json").write_text(json.dumps(config))
        choice = choose_family(str(path))
        assert choice.family is QWEN3, name
        assert f"'{name}' is a {config['architectures'][0]} of no known fine-tune: using " \
               "qwen3-vl" in choice.notice
    # A UI-Venus-1.5 fine-tune keeps its base's _name_or_path: its own name wins.
    venus = tmp_path / "UI-Venus-1.5-8B"
    venus.mkdir()
    (venus / "config.json").write_text(json.dumps({
        "architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl",
        "_name_or_path": "Qwen/Qwen3-VL-8B-Instruct"}))
    assert choose_family(str(venus)).family.name == "ui-venus-1.5-ground"


# -- a run on the simulated phone ---------------------------------------------------------------


def test_a_scripted_qwen3_vl_turns_on_airplane_mode_on_the_phone(phone, tmp_path):
    state = phone.state()
    settings = {**state, "foreground": "com.android.settings"}
    frame = QWEN3.frame(Monitor(width=1080, height=2400), space="mobile")

    def tap(screen_state, widget):
        return list(frame.to_model(*widget_centre(screen_state, widget)))

    def answer(thought, action, arguments):
        call = json.dumps({"name": "mobile_use", "arguments": arguments})
        return f"Thought: {thought}\nAction: {action}\n<tool_call>\n{call}\n</tool_call>"

    model = ScriptedModel([
        answer("Settings is on the home screen.", 'Open the "Settings" app.',
               {"action": "click", "coordinate": tap(state, "app:com.android.settings")}),
        answer("The airplane mode switch is off.", "Turn on airplane mode.",
               {"action": "click", "coordinate": tap(settings, "toggle:airplane_mode")}),
        answer("Airplane mode is on.", "Finish.", {"action": "terminate", "status": "success"}),
    ])
    device = AndroidDevice(phone.serial, client=phone.client)
    result = Agent(model, device, AgentConfig(family="qwen3-vl", settle_seconds=0)).run(
        ANDROID_TASKS["airplane_on"].goal, record=tmp_path / "run"
    )
    assert result.status == "success", result.reason
    assert ANDROID_TASKS["airplane_on"].check(phone.state())
    progress = "Task progress (You have done the following operation on the current device): "
    users = [prompt.messages[1].text for prompt in model.prompts]
    assert users[0].endswith(f"{progress}.\n")
    assert users[2].endswith(f"{progress}Step 1: Open the Settings app.; "
                             "Step 2: Turn on airplane mode.; .\n")
    assert "The screen's resolution is 999x999." in model.prompts[0].messages[0].text
    run = read_run(tmp_path / "run")
    assert run.meta.config["family"] == "qwen3-vl"
    assert (run.meta.config["min_pixels"], run.meta.config["max_pixels"]) == (65536, 16777216)
    step = run.steps[1]
    assert step.frame.coordinates == "rel999" and step.frame.resized_size == (1088, 2400)
    assert step.thought == "The airplane mode switch is off."
    assert step.summary == "Turn on airplane mode."


# -- the command line: endpoint pixels, checkpoint factor, eval ---------------------------------


def test_an_endpoint_serving_qwen3_vl_gets_factor_32_pixels(tmp_path):
    """Chosen by the served name, the family sizes the screenshot with factor 32 and the
    endpoint backend pins exactly that size; the 0-1000 answer lands on the right pixel."""
    Image.new("RGB", (1920, 1080), "white").save(tmp_path / "shot.png")
    answer = '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", ' \
             '"coordinate": [250, 750]}}\n</tool_call>'
    with FaultServer(models=["Qwen/Qwen3-VL-8B-Instruct"]) as server:
        server.plan = [completion(answer)]
        result = qvl("ground", tmp_path / "shot.png", "the OK button", "--endpoint", server.url,
                     "--model", "Qwen/Qwen3-VL-8B-Instruct", "--max-pixels", 1280 * 32 * 32)
        (request,) = server.chat_requests()
    assert result.returncode == 0, result.stderr
    assert "model family: qwen3-vl (from the name 'Qwen/Qwen3-VL-8B-Instruct'" in result.stderr
    out = json.loads(result.stdout)
    assert out["resized"] == [1504, 832] and out["point"] == [480.0, 810.0]
    body = request.json()
    size = body["mm_processor_kwargs"]["size"]
    assert size == {"shortest_edge": 1504 * 832, "longest_edge": 1504 * 832}
    image_url = body["messages"][1]["content"][1]["image_url"]["url"]
    sent = Image.open(io.BytesIO(base64.b64decode(image_url.split(",", 1)[1])))
    assert sent.size == (1504, 832)
    assert "The screen's resolution is 1000x1000." in body["messages"][0]["content"]


def test_a_checkpoint_of_the_other_factor_is_refused_in_one_line(tiny_checkpoint, tmp_path):
    Image.new("RGB", (800, 600), "white").save(tmp_path / "shot.png")
    result = qvl("ground", tmp_path / "shot.png", "the OK button", "--model", tiny_checkpoint,
                 "--family", "qwen3-vl")
    assert result.returncode == 2
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "resizes images with factor 28, but the qwen3-vl family with 32" in error
    assert "(factor 28: ui-tars-1.5, gui-owl, holo1.5" in error


def test_an_eval_in_the_qwen3_vl_family_asks_its_computer_prompt(tmp_path):
    from environments.synthetic_screenspot import write_synthetic_screenspot

    data = write_synthetic_screenspot(tmp_path, 6, hit_share=0.5)
    records = json.loads(data["annotations"].read_text())
    sizes = {"desktop": (1920, 1080), "mobile": (1080, 2400), "web": (1280, 720)}
    answers = []
    for record in records:  # the centre of each target box, on the 0-1000 grid: all hits
        width, height = sizes[record["img_filename"].split("_")[0]]
        x, y, w, h = record["bbox"]
        point = [round((x + w / 2) * 1000 / width), round((y + h / 2) * 1000 / height)]
        answers.append('<tool_call>\n{"name": "computer_use", "arguments": {"action": '
                       f'"left_click", "coordinate": {point}}}}}\n</tool_call>')
    script = write_script(tmp_path / "qwen3.jsonl", answers)
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot", "--annotations", data["annotations"],
                 "--images", data["images"], "--model", f"scripted:{script}", "--family",
                 "qwen3-vl", "--out", out)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == 1.0 and metrics["config"]["family"] == "qwen3-vl"
    lines = (out / "predictions.jsonl").read_text().splitlines()
    predictions = [json.loads(line) for line in lines]
    assert all(w % 32 == 0 and h % 32 == 0 for w, h in (p["resized_size"] for p in predictions))
