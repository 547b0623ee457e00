"""``qvl-agent eval`` on small datasets in each format, with answers worked out by hand."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from environments.synthetic_screenspot import write_synthetic_screenspot
from qvl_agent.actions import TOOL_NAMES
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.still import StillImageDevice
from qvl_agent.evaluation.runner import EvalConfig, run_eval
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.models.base import Response
from qvl_agent.models.scripted import ScriptedModel
from tests.agent_helpers import tool_call, write_script

SMALL = 1280 * 28 * 28  # max_pixels for these tests: 1920x1080 -> 1316x728


def qvl(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qvl_agent", *args], capture_output=True, text=True, timeout=120)


def model_xy(size, point, space="computer"):
    """What a model answers to click ``point`` (screen pixels) on a screenshot of ``size``."""
    return list(Frame.fit(Monitor(width=size[0], height=size[1]), max_pixels=SMALL).to_model(*point))


def read_predictions(out):
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


# -- ScreenSpot ---------------------------------------------------------------------------------


@pytest.fixture
def screenspot(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (1920, 1080), "white").save(images / "desk.png")
    Image.new("RGB", (1080, 2400), "white").save(images / "phone.png")
    records = [  # bbox = x, y, w, h
        {"img_filename": "desk.png", "instruction": "ok button", "bbox": [100, 100, 200, 50], "data_type": "text", "data_source": "windows"},
        {"img_filename": "desk.png", "instruction": "gear icon", "bbox": [1800, 20, 40, 40], "data_type": "icon", "data_source": "macos"},
        {"img_filename": "phone.png", "instruction": "send", "bbox": [900, 2200, 100, 100], "data_type": "icon", "data_source": "android"},
        {"img_filename": "phone.png", "instruction": "title", "bbox": [100, 300, 600, 80], "data_type": "text", "data_source": "ios"},
        {"img_filename": "gone.png", "instruction": "lost", "bbox": [1, 1, 5, 5], "data_type": "icon", "data_source": "ios"},
        {"img_filename": "desk.png", "instruction": "no box"},
    ]
    annotations = tmp_path / "screenspot_desktop.json"
    annotations.write_text(json.dumps(records))
    answers = [
        tool_call(action="left_click", coordinate=model_xy((1920, 1080), (298, 148))),  # near the bottom-right corner: in
        tool_call(action="left_click", coordinate=model_xy((1920, 1080), (1700, 40))),  # left of the gear: out
        tool_call(action="left_click", coordinate=model_xy((1080, 2400), (950, 2250))),  # in
        "I think it is the title.",  # unparsable: wrong, still counted
    ]
    return annotations, images, write_script(tmp_path / "answers.jsonl", answers)


def test_screenspot_accuracy_splits_and_skips(screenspot, tmp_path):
    annotations, images, script = screenspot
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot", "--annotations", str(annotations), "--images", str(images),
                 "--model", f"scripted:{script}", "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["correct"] == 2 and metrics["accuracy"] == 0.5
    assert metrics["wrong_format"] == 1
    cells = metrics["splits"]["platform/type"]
    assert {k: v["accuracy"] for k, v in cells.items()} == {
        "desktop/icon": 0.0, "desktop/text": 1.0, "mobile/icon": 1.0, "mobile/text": 0.0}
    assert metrics["macro_accuracy"] == 0.5 and "unweighted" in metrics["macro_accuracy_is"]
    assert metrics["skipped"] == 2
    # The references count every record; ours leaves out the two it cannot score, and says
    # what the figure is with them counted wrong.
    assert metrics["accuracy_counting_skipped"] == pytest.approx(2 / 6, abs=1e-5)
    assert metrics["scorer"]["name"] == "point_in_box"
    assert "ScreenSpot-Pro-GUI-Grounding" in metrics["scorer"]["reference"]
    assert "scorer point_in_box: likaixin2000/ScreenSpot-Pro-GUI-Grounding" in result.stdout
    assert any("record 4" in s and "gone.png" in s for s in metrics["skipped_samples"])
    assert any("record 5" in s and '"bbox"' in s for s in metrics["skipped_samples"])
    assert "record 4" in result.stderr and "accuracy 50.0%" in result.stdout
    assert metrics["config"]["model"] == f"scripted:{script}" and metrics["config"]["max_pixels"] == SMALL
    assert metrics["config"]["format"] == "screenspot" and metrics["config"]["date"]
    predictions = read_predictions(out)
    assert [p["instruction"] for p in predictions] == ["ok button", "gear icon", "send", "title"]
    assert [p["correct"] for p in predictions] == [True, False, True, False]
    assert predictions[0]["point"] == pytest.approx([298, 148], abs=1)


def test_an_interrupted_eval_resumes_without_recomputing(screenspot, tmp_path):
    annotations, images, script = screenspot
    answers = script.read_text().splitlines()
    first = write_script(tmp_path / "first.jsonl", [])
    first.write_text("\n".join(answers[:2]) + "\n")
    args = ["eval", "--format", "screenspot", "--annotations", str(annotations), "--images", str(images),
            "--max-pixels", str(SMALL), "--out", str(tmp_path / "out")]
    # The model runs out after two answers: the eval stops, keeping both.
    stopped = qvl(*args, "--model", f"scripted:{first}")
    assert stopped.returncode == 2 and "rerun the same command to resume" in stopped.stderr
    assert len(read_predictions(tmp_path / "out")) == 2
    # A different setting in the same directory is refused rather than mixed in.
    clash = qvl(*args[:-4], "--max-pixels", "200000", "--out", str(tmp_path / "out"), "--model", f"scripted:{first}")
    assert clash.returncode == 2 and "max_pixels" in clash.stderr
    # The same eval again: only the two missing samples reach the model (it has just two answers).
    second = tmp_path / "second.jsonl"
    second.write_text("\n".join(answers[2:]) + "\n")
    (tmp_path / "out" / "eval.json").write_text((tmp_path / "out" / "eval.json").read_text()
                                               .replace(str(first), str(second)))
    resumed = qvl(*args, "--model", f"scripted:{second}")
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["correct"] == 2
    assert [p["index"] for p in read_predictions(tmp_path / "out")] == [0, 1, 2, 3]


def test_limit_takes_the_first_samples(screenspot, tmp_path):
    annotations, images, script = screenspot
    result = qvl("eval", "--format", "screenspot", "--annotations", str(annotations), "--images", str(images),
                 "--model", f"scripted:{script}", "--max-pixels", str(SMALL), "--out", str(tmp_path / "o"),
                 "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert [p["instruction"] for p in read_predictions(tmp_path / "o")] == ["ok button", "gear icon"]


def test_screenspot_pro_boxes_are_corners_and_box_answers_use_their_centre(tmp_path):
    Image.new("RGB", (2560, 1440), "white").save(tmp_path / "cad.png")
    records = [
        {"id": "a", "img_filename": "cad.png", "img_size": [2560, 1440], "bbox": [1000, 500, 1100, 540],
         "instruction": "extrude", "group": "CAD", "application": "inventor", "platform": "windows", "ui_type": "icon"},
        {"id": "b", "img_filename": "cad.png", "img_size": [2560, 1440], "bbox": [10, 10, 300, 40],
         "instruction": "file menu", "group": "Office", "application": "word", "platform": "windows", "ui_type": "text"},
        {"id": "c", "img_filename": "cad.png", "img_size": [2560, 1440], "bbox": [2500, 1400, 2600, 1500],
         "instruction": "off the image", "group": "CAD", "application": "inventor", "platform": "windows", "ui_type": "icon"},
    ]
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    (annotations / "inventor_windows.json").write_text(json.dumps(records))
    frame = Frame.fit(Monitor(width=2560, height=1440), max_pixels=SMALL)
    x1, y1 = frame.to_model(1000, 500)
    x2, y2 = frame.to_model(1100, 540)
    script = write_script(tmp_path / "a.jsonl", [
        tool_call(action="left_click", coordinate=[x1, y1, x2, y2]),  # a box round the target
        tool_call(action="left_click", coordinate=list(frame.to_model(1280, 720))),
    ])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot-pro", "--annotations", str(annotations),
                 "--images", str(tmp_path), "--model", f"scripted:{script}", "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == 0.5 and metrics["skipped"] == 1
    assert "outside the 2560x1440 image" in metrics["skipped_samples"][0]
    assert metrics["splits"]["group"]["CAD"]["accuracy"] == 1.0
    assert metrics["splits"]["group"]["Office"]["accuracy"] == 0.0
    assert set(metrics["splits"]["application"]) == {"inventor", "word"}
    first = read_predictions(out)[0]
    assert first["predicted_box"] == pytest.approx([1000, 500, 1100, 540], abs=2.5)


def test_workers_keep_input_order_and_every_answer(tmp_path):
    data = write_synthetic_screenspot(tmp_path, 40, hit_share=1.0)
    answers = {f"target {i}": json.loads(line)["response"]
               for i, line in enumerate(data["script"].read_text().splitlines())}

    class ByInstruction:  # answers whatever sample it is asked about, in any order
        name = "by-instruction"

        def respond(self, prompt, image):
            goal = prompt.messages[-1].text  # the computer_use cookbook's bare query
            return Response(text=answers[goal])

    config = EvalConfig(format="screenspot", annotations=str(data["annotations"]), images=str(data["images"]),
                        model="by-instruction", max_pixels=SMALL)
    metrics = run_eval(config, ByInstruction(), tmp_path / "out", workers=4)
    assert metrics["accuracy"] == 1.0 and metrics["n"] == 40
    assert [p["instruction"] for p in read_predictions(tmp_path / "out")] == [f"target {i}" for i in range(40)]


def test_the_tiny_checkpoint_is_scored_through_the_real_model_path(tiny_local_model, tmp_path):
    data = write_synthetic_screenspot(tmp_path, 3)
    config = EvalConfig(format="screenspot", annotations=str(data["annotations"]), images=str(data["images"]),
                        model="tiny", max_pixels=64 * 28 * 28)
    metrics = run_eval(config, tiny_local_model, tmp_path / "out")
    predictions = read_predictions(tmp_path / "out")
    assert metrics["n"] == 3 and len(predictions) == 3
    assert all(p["prompt_tokens"] > 64 and p["generated_tokens"] > 0 for p in predictions)
    # Random weights answer garbage: each unusable answer is wrong and counted as such.
    assert metrics["wrong_format"] == sum(p["error"] is not None for p in predictions)
    assert metrics["correct"] == sum(p["correct"] for p in predictions)


# -- step datasets ---------------------------------------------------------------------------------


def mobile(**arguments):
    return tool_call("mobile", **arguments)


@pytest.fixture
def aitz(tmp_path):
    """Two AITZ episodes on 540x1200 screens; the second has a step of an unknown type."""
    episode = tmp_path / "aitz" / "GENERAL-1"
    episode.mkdir(parents=True)
    for i in range(5):
        Image.new("RGB", (540, 1200), "white").save(episode / f"GENERAL-1_{i}.png")

    def record(step, action_type, touch="[-1.0, -1.0]", lift="[-1.0, -1.0]", text="", episode_id="1"):
        return {"episode_id": episode_id, "step_id": step, "instruction": "search for milk",
                "image_path": f"GENERAL-1/GENERAL-1_{step}.png", "result_action_type": action_type,
                "result_touch_yx": touch, "result_lift_yx": lift, "result_action_text": text,
                "ui_positions": "[[100, 50, 60, 200]]"}  # y, x, h, w: the box x 50-250, y 100-160
    steps = [
        record(0, 4, "[0.108, 0.3]", "[0.11, 0.3]"),      # tap at (162, 132)
        record(1, 4, "[0.8, 0.5]", "[0.2, 0.5]"),         # finger moves up: "up"
        record(2, 3, text="milk"),
        record(3, 5),                                     # back
        record(4, 10),                                    # task complete
    ]
    (episode / "GENERAL-1.json").write_text(json.dumps(steps))
    other = tmp_path / "aitz" / "GENERAL-2"
    other.mkdir()
    Image.new("RGB", (540, 1200), "white").save(other / "x.png")
    broken = [dict(record(0, 4, "[0.5, 0.5]", "[0.5, 0.5]"), episode_id="2", image_path="GENERAL-2/x.png"),
              dict(record(1, 99), episode_id="2", image_path="GENERAL-2/x.png")]
    (other / "GENERAL-2.json").write_text(json.dumps(broken))
    return tmp_path / "aitz"


def test_aitz_type_and_exact_match_with_the_aitw_scorer(aitz, tmp_path):
    size = (540, 1200)
    script = write_script(tmp_path / "a.jsonl", [
        mobile(action="click", coordinate=model_xy(size, (240, 150))),   # 0.144 of the width away, same box: exact
        mobile(action="swipe", coordinate=model_xy(size, (270, 900)), coordinate2=model_xy(size, (270, 300))),  # up: exact
        mobile(action="type", text="Bread"),                                # AITW: the type alone
        mobile(action="system_button", button="Home"),                      # type only
        mobile(action="terminate", status="success"),                       # exact
        mobile(action="click", coordinate=model_xy(size, (270, 600))),      # episode 2 step 0: exact
    ])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "aitz", "--annotations", str(aitz), "--model", f"scripted:{script}",
                 "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scorer"]["name"] == "aitw" and metrics["n"] == 6
    assert metrics["scorer"]["reference"] == "google-research/google-research"
    assert metrics["scorer"]["commit"] == "8d8a4f1b27753c7580d16261a1468b3d6ad2c3d3"
    assert "[aitw]" in result.stdout
    assert "scorer aitw: google-research/google-research" in result.stdout
    # PRESS_HOME and PRESS_BACK are two AITW action types: the Home answer misses its type.
    assert metrics["type_match"] == pytest.approx(5 / 6, abs=1e-5)
    assert metrics["exact_match"] == pytest.approx(5 / 6, abs=1e-5)
    assert metrics["skipped"] == 1 and "unknown action type 99" in metrics["skipped_samples"][0]
    assert "GENERAL-2.json record 1" in metrics["skipped_samples"][0]
    # Episode 1 misses at step 3 (of 5); episode 2 lost a step, so it is left out.
    assert metrics["episodes"] == {"n": 1, "success_rate": 0.0, "goal_progress": 0.6, "left_out_incomplete": 1}
    assert metrics["per_action"]["system_button"] == {"n": 1, "type_match": 0.0, "exact_match": 0.0}
    # Our strict rules also check the typed text: "Bread" is not "milk".
    strict = qvl("eval", "--format", "aitz", "--annotations", str(aitz), "--scorer", "strict",
                 "--model", f"scripted:{script}", "--max-pixels", str(SMALL),
                 "--out", str(tmp_path / "strict"))
    assert strict.returncode == 0, strict.stderr
    metrics = json.loads((tmp_path / "strict" / "metrics.json").read_text())
    assert metrics["scorer"]["name"] == "strict" and "reference" not in metrics["scorer"]
    assert metrics["exact_match"] == pytest.approx(4 / 6, abs=1e-5)
    assert "scorer strict: our own rules" in strict.stdout


def test_the_model_sees_the_ground_truth_history(aitz, tmp_path):
    model = ScriptedModel([mobile(action="wait")] * 6)
    run_eval(EvalConfig(format="aitz", annotations=str(aitz), model="s", max_pixels=SMALL), model, tmp_path / "o")
    third = model.prompts[2].messages[-1].text
    # Step 1 was the tap at (162, 132) and step 2 the upward swipe, in the model's own pixels.
    assert '"action": "click"' in third.split("Step 1:")[1].split("Step 2:")[0]
    assert '"action": "swipe"' in third.split("Step 2:")[1]
    assert TOOL_NAMES["mobile"] in third


@pytest.fixture
def androidcontrol(tmp_path):
    for i in range(3):
        Image.new("RGB", (1080, 2400), "white").save(tmp_path / f"s{i}.png")
    episode = {"episode_id": 7, "goal": "Find the weather", "screenshots": ["s0.png", "s1.png", "s2.png"],
               "actions": [json.dumps({"action_type": "open_app", "app_name": "Weather"}),
                           {"action_type": "scroll", "direction": "down"},
                           {"action_type": "click", "x": 540, "y": 1200}],
               "step_instructions": ["Open the Weather app", "Scroll down", "Tap today's forecast"],
               "step_boxes": [None, None, [[400, 1100, 700, 1300]]]}
    bad = {"episode_id": 8, "goal": "x", "screenshots": ["s0.png"], "actions": [{"action_type": "fly"}]}
    path = tmp_path / "ac.jsonl"
    path.write_text(json.dumps(episode) + "\n{not json\n" + json.dumps(bad) + "\n")
    return path


@pytest.mark.parametrize("scroll, scorer, exact", [
    ("content", "box", 1.0),      # "scroll down" = the finger moves up, as the model swiped
    ("finger", "box", 2 / 3),
    ("content", "norm1000", 1.0),
])
def test_androidcontrol_scroll_convention_and_scorers(androidcontrol, tmp_path, scroll, scorer, exact):
    size = (1080, 2400)
    script = write_script(tmp_path / "a.jsonl", [
        mobile(action="open", text="weather"),
        mobile(action="swipe", coordinate=model_xy(size, (540, 1800)), coordinate2=model_xy(size, (540, 600))),
        mobile(action="click", coordinate=model_xy(size, (650, 1250))),  # in the box, 104 away in 0-1000
    ])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "androidcontrol", "--annotations", str(androidcontrol), "--level", "low",
                 "--scroll", scroll, "--scorer", scorer, "--model", f"scripted:{script}", "--max-pixels", str(SMALL),
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["exact_match"] == pytest.approx(exact, abs=1e-5) and metrics["n"] == 3
    assert metrics["skipped"] == 2
    assert any("ac.jsonl:2" in s and "not valid JSON" in s for s in metrics["skipped_samples"])
    assert any("ac.jsonl:3 step 0" in s and "'fly'" in s for s in metrics["skipped_samples"])
    goals = [p["goal"] for p in read_predictions(out)]
    assert goals[2] == "Find the weather\nCurrent step query: Tap today's forecast"


def test_recorded_runs_are_ground_truth(tmp_path):
    Image.new("RGB", (1366, 768), "white").save(tmp_path / "shot.png")
    recorded = [tool_call(action="left_click", coordinate=[683, 384]),
                tool_call(action="type", text="hello"),
                tool_call(action="terminate", status="success")]
    device = StillImageDevice.from_file(tmp_path / "shot.png")
    Agent(ScriptedModel(recorded), device, AgentConfig(settle_seconds=0)).run("say hello", record=tmp_path / "runs" / "r1")
    same = write_script(tmp_path / "same.jsonl", recorded)
    result = qvl("eval", "--format", "run", "--annotations", str(tmp_path / "runs"), "--scorer", "norm1000",
                 "--model", f"scripted:{same}", "--out", str(tmp_path / "o1"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "o1" / "metrics.json").read_text())
    assert metrics["exact_match"] == 1.0 and metrics["n"] == 3 and metrics["episodes"]["success_rate"] == 1.0
    other = write_script(tmp_path / "other.jsonl", [tool_call(action="left_click", coordinate=[10, 10]), *recorded[1:]])
    qvl("eval", "--format", "run", "--annotations", str(tmp_path / "runs"), "--scorer", "norm1000",
        "--model", f"scripted:{other}", "--out", str(tmp_path / "o2"))
    metrics = json.loads((tmp_path / "o2" / "metrics.json").read_text())
    assert metrics["exact_match"] == pytest.approx(2 / 3, abs=1e-5) and metrics["episodes"]["success_rate"] == 0.0


def test_a_missing_dataset_is_a_one_line_error(tmp_path):
    result = qvl("eval", "--format", "aitz", "--annotations", str(tmp_path / "nope"), "--model", "scripted:x.jsonl",
                 "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "not found" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_keeps_finished_samples_and_the_rerun_skips_them(tmp_path):
    data = write_synthetic_screenspot(tmp_path, 9, hit_share=1.0)
    answers = [json.loads(line)["response"] for line in data["script"].read_text().splitlines()]
    asked = []

    class InterruptedAtFive:
        name = "scripted"

        def respond(self, prompt, image):
            if len(asked) == 5:
                raise KeyboardInterrupt
            asked.append(prompt)
            return Response(text=answers[len(asked) - 1])

    config = EvalConfig(format="screenspot", annotations=str(data["annotations"]), images=str(data["images"]),
                        model="scripted", max_pixels=SMALL)
    with pytest.raises(KeyboardInterrupt):
        run_eval(config, InterruptedAtFive(), tmp_path / "out")
    assert len(read_predictions(tmp_path / "out")) == 5
    rest = ScriptedModel(answers[5:])
    metrics = run_eval(config, rest, tmp_path / "out")
    assert rest.calls == 4 and metrics["n"] == 9 and metrics["accuracy"] == 1.0


def test_eval_keeps_n_requests_in_flight_against_an_endpoint(tmp_path):
    from tests.fault_server import FaultServer, completion

    data = write_synthetic_screenspot(tmp_path, 12, hit_share=1.0)
    answers = {f"target {i}": json.loads(line)["response"]
               for i, line in enumerate(data["script"].read_text().splitlines())}
    in_flight, peak, lock = [0], [0], __import__("threading").Lock()

    def oracle(request):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            query = request.json()["messages"][-1]["content"][0]["text"]  # the bare query
            __import__("time").sleep(0.3)  # a model that takes a while, so requests overlap
            return completion(answers[query])
        finally:
            with lock:
                in_flight[0] -= 1

    with FaultServer(models=["qwen-test"], respond=oracle) as server:
        result = qvl("eval", "--format", "screenspot", "--annotations", str(data["annotations"]),
                     "--images", str(data["images"]), "--endpoint", server.url, "--model", "qwen-test",
                     "--max-pixels", str(SMALL), "--workers", "4", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["accuracy"] == 1.0 and metrics["n"] == 12
    assert peak[0] == 4
