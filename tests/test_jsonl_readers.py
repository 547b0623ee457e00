"""Every JSON Lines file we read holds texts with U+2028, U+2029 and U+0085 (which JSON keeps
raw and ``str.splitlines()`` splits on) and lines torn mid-character: nothing is lost, and a
torn line is skipped and counted, never a crash. Through the CLI, as a user meets them."""

import contextlib
import io
import json
from types import SimpleNamespace

import pytest
from PIL import Image

from qvl_agent.cli import main
from qvl_agent.jsonl import read_lines, split_lines
from qvl_agent.trajectory import read_run
from tests.agent_helpers import tool_call

SEPARATORS = ("\u2028", "\u2029", "\x85")
HOSTILE = "one\u2028two\u2029three\x85four"


def qvl(*args: str) -> SimpleNamespace:
    """``qvl-agent ARGS`` in this process (the same parser and handlers, without the
    interpreter's start-up): returncode, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def write_raw_jsonl(path, records) -> None:
    """JSON Lines as ``ensure_ascii=False`` writes them: the separators stay raw."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    assert all(s in text for s in SEPARATORS)
    path.write_text(text, encoding="utf-8")


def screenshot(tmp_path, size=(800, 600)):
    path = tmp_path / "shot.png"
    Image.new("RGB", size, "white").save(path)
    return path


def test_the_one_splitter_splits_on_newline_only():
    data = ('{"a": "%s"}\r\n\n  \n{"b": 1}' % HOSTILE).encode()
    lines = [(line.number, json.loads(line.text)) for line in split_lines(b"\xef\xbb\xbf" + data)]
    assert lines == [(1, {"a": HOSTILE}), (4, {"b": 1})]


def test_a_run_with_separators_in_answers_and_typed_text_reads_back_whole(tmp_path):
    """scripted model file -> run -> steps.jsonl -> read_run and replay: every step is there."""
    shot = screenshot(tmp_path)
    script = tmp_path / "script.jsonl"
    answers = [
        f"I type it{HOSTILE}\n" + tool_call(action="type", text=HOSTILE),
        tool_call(action="left_click", coordinate=[100, 100]) + "\u2028",
        tool_call(action="answer", text=HOSTILE),
    ]
    write_raw_jsonl(script, [{"response": a} for a in answers])
    record = tmp_path / "run"
    result = qvl("run", f"Type {HOSTILE}", "--device", f"image:{shot}", "--model", f"scripted:{script}",
                 "--dry-run", "--settle", "0", "--record", str(record))
    assert result.returncode == 0, result.stderr
    run = read_run(record)
    assert [s.action.action for s in run.steps] == ["type", "left_click", "answer"]
    assert run.skipped_lines == 0 and run.meta.goal == f"Type {HOSTILE}"
    assert run.steps[0].action.text == HOSTILE and run.steps[0].response == answers[0]
    assert run.meta.outcome.answer == HOSTILE
    replay = qvl("replay", str(record), "--device", f"image:{shot}", "--dry-run")
    assert replay.returncode == 0, replay.stderr
    assert "3 steps replayed" in replay.stdout


def test_a_step_line_torn_mid_character_is_skipped_and_counted(tmp_path):
    shot = screenshot(tmp_path)
    script = tmp_path / "script.jsonl"
    write_raw_jsonl(script, [{"response": tool_call(action="type", text=HOSTILE + "é世界")},
                             {"response": tool_call(action="type", text="ok")},
                             {"response": tool_call(action="terminate", status="success")}])
    record = tmp_path / "run"
    assert qvl("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}", "--dry-run",
               "--settle", "0", "--record", str(record)).returncode == 0
    steps = record / "steps.jsonl"
    lines = steps.read_bytes().split(b"\n")
    # The disk filled while the last line was written: it ends inside "世" (3 bytes in UTF-8).
    torn = lines[0][: lines[0].index("世".encode()) + 1]
    steps.write_bytes(lines[0] + b"\n" + lines[1] + b"\n" + torn)
    run = read_run(record)
    assert [s.action.text for s in run.steps] == [HOSTILE + "é世界", "ok"]
    assert run.skipped_lines == 1
    # The report and a replay read it the same way.
    replay = qvl("replay", str(record), "--device", f"image:{shot}", "--dry-run")
    assert replay.returncode == 0 and "2 steps replayed" in replay.stdout, replay.stderr


def test_a_scripted_file_torn_mid_character_names_its_line(tmp_path):
    script = tmp_path / "script.jsonl"
    script.write_bytes(b'{"response": "a"}\n{"response": "\xe4\xb8"}\n')
    result = qvl("run", "x", "--device", f"image:{screenshot(tmp_path)}", "--model", f"scripted:{script}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "script.jsonl:2: not UTF-8" in result.stderr


def test_a_batch_task_with_separators_in_its_goal_runs(tmp_path):
    shot = screenshot(tmp_path)
    tasks = tmp_path / "tasks.jsonl"
    write_raw_jsonl(tasks, [{"id": "first", "goal": f"Say {HOSTILE}"},
                            {"id": "second", "goal": "Say hi", "note": HOSTILE}])
    script = tmp_path / "script.jsonl"
    write_raw_jsonl(script, [{"response": tool_call(action="answer", text=HOSTILE)}] * 2)
    result = qvl("run-batch", str(tasks), "--device", f"image:{shot}", "--model", f"scripted:{script}",
                 "--record", str(tmp_path / "suite"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "suite" / "summary.json").read_text(encoding="utf-8"))
    assert [e["status"] for e in summary["episodes"]] == ["answered", "answered"]
    assert read_run(tmp_path / "suite" / "first").meta.goal == f"Say {HOSTILE}"


def test_a_batch_tasks_file_torn_mid_character_names_its_line(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_bytes(b'{"id": "a", "goal": "x"}\n{"id": "b", "goal": "\xe4\xb8')
    result = qvl("run-batch", str(tasks), "--device", f"image:{screenshot(tmp_path)}",
                 "--model", "scripted:none.jsonl")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "tasks.jsonl:2: not UTF-8" in result.stderr


@pytest.fixture
def grounding_set(tmp_path):
    """Three ScreenSpot records in a .jsonl file, each instruction holding the separators, and
    a scripted model whose answers hold them too."""
    shot = screenshot(tmp_path, (1000, 500))
    annotations = tmp_path / "screenspot.jsonl"
    records = [{"img_filename": shot.name, "instruction": f"button {n} {HOSTILE}",
                "bbox": [100 * n, 100, 50, 50], "data_type": "text", "data_source": "windows"}
               for n in range(1, 4)]
    write_raw_jsonl(annotations, records)
    script = tmp_path / "answers.jsonl"
    write_raw_jsonl(script, [{"response": f"Here{HOSTILE}\n" + tool_call(action="left_click", coordinate=[40, 40])}
                             for _ in records])
    return annotations, script


def test_an_eval_reads_jsonl_annotations_and_resumes_from_predictions_with_separators(
        grounding_set, tmp_path):
    annotations, script = grounding_set
    out = tmp_path / "out"
    args = ["eval", "--format", "screenspot", "--annotations", str(annotations),
            "--model", f"scripted:{script}", "--out", str(out)]
    first = qvl(*args)
    assert first.returncode == 0, first.stderr
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n"] == 3 and metrics["skipped"] == 0
    predictions = [json.loads(line.text) for line in read_lines(out / "predictions.jsonl")]
    assert [p["instruction"] for p in predictions] == [f"button {n} {HOSTILE}" for n in range(1, 4)]
    # The same command again finds every sample done: the model (one answer left) is not asked.
    write_raw_jsonl(script, [{"response": f"unused{HOSTILE}"}])
    again = qvl(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["n"] == 3
    assert (out / "predictions.jsonl").read_bytes().count(b"\n") == 3


def test_an_annotation_line_torn_mid_character_is_skipped_with_its_line(grounding_set, tmp_path):
    annotations, script = grounding_set
    with open(annotations, "ab") as file:
        file.write(b'{"img_filename": "shot.png", "instruction": "\xe4\xb8')
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot", "--annotations", str(annotations),
                 "--model", f"scripted:{script}", "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n"] == 3 and metrics["skipped"] == 1
    assert "screenspot.jsonl:4" in metrics["skipped_samples"][0] and "UTF-8" in result.stderr
