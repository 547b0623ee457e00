"""``qvl-agent eval`` on the dataset files as they ship: AndroidControl's GZIP TFRecord shards
with their split files, ScreenSpot/-v2/-Pro parquet from the Hub, inline screenshots, a
downscaled set, and corrupt or missing data. Everything is scored through the CLI with a
scripted model; the figures asserted are the ones a user reads."""

import base64
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from qvl_agent.evaluation.tfrecord import RecordFault, masked_crc32c, read_records
from qvl_agent.geometry import Frame, Monitor
from tests.agent_helpers import tool_call, write_script
from tests.dataset_builders import (
    crc32c, example, forest, frame, masked, node, png, truncated_png, varint_field, write_shard,
)

SMALL = 1280 * 28 * 28  # max_pixels for these tests
PHONE = (1080, 2400)


def qvl_process(*args) -> subprocess.CompletedProcess:
    """``qvl-agent ARGS`` as a user runs it, in its own process."""
    return subprocess.run([sys.executable, "-m", "qvl_agent", *args], capture_output=True,
                          text=True, timeout=120)


def qvl(*args) -> subprocess.CompletedProcess:
    """``qvl-agent ARGS`` through the same entry point, in this process (no interpreter and
    torch start per call); its exit status and what it printed, as from a process."""
    from qvl_agent.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


def model_xy(size, point):
    """What a model answers to click ``point`` (pixels) on a screenshot of ``size``."""
    frame_ = Frame.fit(Monitor(width=size[0], height=size[1]), max_pixels=SMALL)
    return list(frame_.to_model(*point))


def mobile(**arguments):
    return tool_call("mobile", **arguments)


def click(size, point, space="mobile"):
    return tool_call(space, action="click" if space == "mobile" else "left_click",
                     coordinate=model_xy(size, point))


def predictions(out):
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def metrics_of(out):
    return json.loads((out / "metrics.json").read_text())


# -- TFRecord framing ---------------------------------------------------------------------------

# A record written by TensorFlow's own TFRecordWriter (tensorflow/rust,
# test_resources/io/expected.tfrecord, made by its python_writer.py): "The Quick Brown Fox".
TENSORFLOW_RECORD = bytes.fromhex("13000000000000000c91321b"
                                  "54686520517569636b2042726f776e20466f78180de83a")


def test_framing_and_checksums_equal_tensorflows(tmp_path):
    assert crc32c(b"123456789") == 0xE3069283  # the CRC32C check value
    assert masked(b"1234567890asdfghjkl") == 4134599430  # a masked value from a TFRecord suite
    assert frame(b"The Quick Brown Fox") == TENSORFLOW_RECORD  # the tests' writer is TF's
    assert masked_crc32c(b"1234567890asdfghjkl") == 4134599430
    (tmp_path / "tf.tfrecord").write_bytes(TENSORFLOW_RECORD)
    assert list(read_records(tmp_path / "tf.tfrecord")) == [(0, b"The Quick Brown Fox")]


def test_a_corrupt_record_is_named_and_the_rest_is_read(tmp_path):
    records = [b"first", b"second record", b"third"]
    raw = bytearray(b"".join(frame(r) for r in records))
    raw[len(frame(records[0])) + 12 + 3] ^= 0xFF  # a flipped bit inside the second record's data
    (tmp_path / "flipped").write_bytes(bytes(raw))
    read = list(read_records(tmp_path / "flipped"))
    assert read[0] == (0, b"first") and read[2] == (2, b"third")
    assert isinstance(read[1], RecordFault) and read[1].index == 1 and not read[1].fatal
    assert "checksum" in str(read[1]) and "flipped record 1" in str(read[1])
    # A damaged length cannot be trusted: that file ends there, with a message.
    raw = bytearray(b"".join(frame(r) for r in records))
    raw[len(frame(records[0]))] ^= 0x01
    (tmp_path / "length").write_bytes(bytes(raw))
    read = list(read_records(tmp_path / "length"))
    assert read[0] == (0, b"first") and len(read) == 2 and read[1].fatal
    assert "rest of this file is skipped" in str(read[1])
    # A download cut short, compressed: what came before the cut is read.
    whole = write_shard(tmp_path / "whole.gz", records * 50).read_bytes()
    (tmp_path / "cut").write_bytes(whole[: len(whole) * 2 // 3])
    read = list(read_records(tmp_path / "cut"))
    assert isinstance(read[-1], RecordFault) and read[-1].fatal
    assert [r for _, r in read[:-1]] == (records * 50)[: len(read) - 1] and len(read) > 10


# -- AndroidControl, the official shards -------------------------------------------------------

WEATHER = (400, 1100, 700, 1300)
SETTINGS = (900, 100, 1040, 220)


def screen_forest() -> bytes:
    """One screen's accessibility forest: three labelled leaves (elements), and nodes that are
    not elements (a container, an invisible leaf, unlabelled leaves)."""
    app = [
        node(0, (0, 0, 1080, 2400), "android.widget.FrameLayout", children=(1, 2, 3, 4, 5)),
        node(1, WEATHER, text="Weather", clickable=True),
        node(2, SETTINGS, "android.widget.ImageButton", description="Settings", clickable=True),
        node(3, (500, 1180, 600, 1220), text="hidden", visible=False),  # not on screen
        node(4, (100, 300, 980, 400), "android.widget.EditText"),  # unlabelled
        node(5, (380, 1080, 720, 1320), "android.widget.LinearLayout", clickable=True),  # no label
    ]
    navigation = [node(0, (0, 2300, 360, 2400), text="Back")]
    return forest([app, navigation])


def episode(episode_id, actions, instructions=None, size=PHONE, screen=PHONE, broken_step=None):
    colours = ("white", "lightgrey", "lightblue", "beige")[: len(actions) + 1]
    shots = [png(size, colour) for colour in colours]
    instructions = instructions or [f"step {i}" for i in range(len(actions))]
    if broken_step is not None:
        shots[broken_step] = b"not a png at all"
    return example({
        "episode_id": [episode_id],
        "goal": [f"goal of episode {episode_id}".encode()],
        "screenshots": shots,
        "screenshot_widths": [screen[0]] * len(shots),
        "screenshot_heights": [screen[1]] * len(shots),
        "accessibility_trees": [screen_forest()] * len(shots),
        "actions": [json.dumps(a).encode() for a in actions],
        "step_instructions": [s.encode() for s in instructions],
    })


@pytest.fixture(scope="module")
def android_control(tmp_path_factory):
    """Two shards as gs://gresearch/android_control/ has them, and the two split files."""
    root = tmp_path_factory.mktemp("android_control")
    write_shard(root / "android_control-00000-of-00002", [
        episode(101, [{"action_type": "open_app", "app_name": "Weather"},
                      {"action_type": "scroll", "direction": "down"},
                      {"action_type": "click", "x": 540, "y": 1200}],
                ["Open the Weather app", "Scroll down", "Tap the forecast"]),
        episode(103, [{"action_type": "navigate_back"}]),
        episode(102, [{"action_type": "click", "x": 970, "y": 160}]),
    ])
    unreadable = frame(episode(107, [{"action_type": "wait"}]))
    unreadable = unreadable[:40] + bytes([unreadable[40] ^ 0xFF]) + unreadable[41:]
    second = [frame(e) for e in (episode(104, [{"action_type": "click", "x": 960, "y": 160}],
                                         size=(540, 1200)),)]  # screenshots downscaled by half
    second.append(unreadable)
    second += [frame(e) for e in (episode(105, [{"action_type": "input_text", "text": "milk"},
                                                {"action_type": "navigate_home"}], broken_step=1),
                                  episode(106, []))]
    import gzip
    (root / "android_control-00001-of-00002").write_bytes(gzip.compress(b"".join(second)))
    (root / "splits.json").write_text(json.dumps(
        {"train": [103], "validation": [], "test": [101, 102, 104, 105, 106, 107]}))
    (root / "test_subsplits.json").write_text(json.dumps(
        {"IDD": [101, 104, 105, 106, 107], "app_unseen": [102], "task_unseen": [102],
         "category_unseen": []}))
    return root


def test_androidcontrol_shards_scored_on_a_subsplit_with_tree_boxes(android_control, tmp_path):
    answers = write_script(tmp_path / "answers.jsonl", [
        mobile(action="open", text="Weather"),
        mobile(action="swipe", coordinate=model_xy(PHONE, (540, 1800)),
               coordinate2=model_xy(PHONE, (540, 600))),
        click(PHONE, (650, 1250)),            # inside the Weather element, not its centre
        click((540, 1200), (490, 80)),        # episode 104: Settings, in the half-size screenshot
        mobile(action="type", text="milk"),   # episode 105, step 0
    ])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "androidcontrol", "--annotations", str(android_control),
                 "--split", "test", "--subsplit", "IDD", "--scorer", "box", "--level", "low",
                 "--model", f"scripted:{answers}", "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(out)
    assert metrics["n"] == 5 and metrics["exact_match"] == 1.0 and metrics["type_match"] == 1.0
    # Skipped, each with its file and record: the record whose checksum fails, the step whose
    # screenshot is not a PNG, the episode without actions.
    assert metrics["skipped"] == 3
    skips = "\n".join(metrics["skipped_samples"])
    assert "android_control-00001-of-00002 record 1: the data's checksum does not match" in skips
    assert "android_control-00001-of-00002 record 2 step 1" in skips and "not an image" in skips
    assert "record 3 (episode 106): the episode has no actions" in skips
    assert metrics["episodes"] == {"n": 2, "success_rate": 1.0, "goal_progress": 1.0,
                                   "left_out_incomplete": 1}
    assert metrics["scaled_annotations"] == 1 and metrics["config"]["subsplit"] == "IDD"
    rows = predictions(out)
    assert [r["id"] for r in rows] == ["101/0", "101/1", "101/2", "104/0", "105/0"]
    # The click's target box is the smallest visible element holding the point.
    assert rows[2]["target"]["boxes"] == [list(map(float, WEATHER))]
    assert rows[3]["target"]["boxes"] == [[450.0, 50.0, 520.0, 110.0]]
    assert rows[3]["scaled_from"] == [1080, 2400]
    assert rows[3]["target"]["point"] == [480.0, 80.0]
    assert rows[2]["goal"] == "goal of episode 101\nCurrent step query: Tap the forecast"
    assert rows[1]["target"]["direction"] == "up"  # "scroll down" moves the finger up
    # The screenshots came out of the shards, each picture stored once (episode 105's first
    # screenshot is the same white screen as episode 101's).
    assert len(list((out / "images").iterdir())) == 4
    assert "dataset: 5 samples, 3 records skipped" in result.stderr
    assert "--subsplit IDD" not in result.stderr


def test_aitws_box_rule_uses_the_element_boxes_of_the_trees(android_control, tmp_path):
    # Episode 102 clicks Settings at (970, 160). (820, 290) is 0.149 of the screen away, past
    # AITW's 0.14, but both points lie in the Settings element enlarged 1.4x (802-1138, 16-304).
    answers = write_script(tmp_path / "a.jsonl", [click(PHONE, (820, 290))])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "androidcontrol", "--annotations", str(android_control),
                 "--subsplit", "app_unseen", "--scorer", "aitw", "--model", f"scripted:{answers}",
                 "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert metrics_of(out)["n"] == 1 and metrics_of(out)["exact_match"] == 1.0
    (row,) = predictions(out)
    assert row["id"] == "102/0" and [650.0, 400.0] not in row["target"]["boxes"]


def test_a_split_reads_only_its_episodes_and_a_glob_names_shards(android_control, tmp_path):
    answers = write_script(tmp_path / "a.jsonl", [mobile(action="system_button", button="Back")])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "androidcontrol", "--annotations",
                 str(android_control / "android_control-0000*"), "--split", "train",
                 "--model", f"scripted:{answers}", "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in predictions(out)] == ["103/0"]
    assert metrics_of(out)["exact_match"] == 1.0


def test_split_problems_are_one_line_errors_before_the_model_loads(android_control, tmp_path):
    shard = android_control / "android_control-00000-of-00002"
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / shard.name).write_bytes(shard.read_bytes())
    def ac_eval(annotations, *options, out):
        return qvl("eval", "--format", "androidcontrol", "--annotations", str(annotations),
                   *options, "--model", "scripted:none.jsonl", "--out", str(tmp_path / out))

    missing = ac_eval(lone, "--split", "test", out="o1")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "needs splits.json" in missing.stderr
    assert "gs://gresearch/android_control/" in missing.stderr
    assert "loading model" not in missing.stderr
    unknown = ac_eval(android_control, "--subsplit", "unseen", out="o2")
    assert unknown.returncode == 2
    assert "has IDD, app_unseen, task_unseen, category_unseen" in unknown.stderr
    empty = ac_eval(android_control, "--subsplit", "category_unseen", out="o3")
    assert empty.returncode == 2 and "nothing to score" in empty.stderr
    assert "category_unseen" in empty.stderr
    assert "loading model" not in empty.stderr


def test_the_tiny_checkpoint_scores_the_shards(android_control, tiny_local_model, tmp_path):
    from qvl_agent.evaluation.runner import EvalConfig, run_eval

    config = EvalConfig(format="androidcontrol", annotations=str(android_control), subsplit="IDD",
                        model="tiny", max_pixels=64 * 28 * 28, limit=3)
    metrics = run_eval(config, tiny_local_model, tmp_path / "out")
    rows = predictions(tmp_path / "out")
    assert metrics["n"] == 3 and [r["id"] for r in rows] == ["101/0", "101/1", "101/2"]
    assert all(r["prompt_tokens"] > 64 and r["generated_tokens"] > 0 for r in rows)
    assert metrics["exact_match"] == sum(r["exact_match"] for r in rows) / 3


# -- element boxes: differential test against UGround's pipeline, transcribed ------------------


def uground_elements(windows: list[list[dict]]) -> list[dict]:
    """android_world representation_utils.forest_to_ui_elements, then UGround's
    offline_evaluation/AndroidControl/extract_raw.py convert_ui_elements_to_dicts."""
    def text_or_none(text):
        return text if text else None

    elements = []
    for nodes in windows:  # for window in forest.windows: for node in window.tree.nodes
        for node in nodes:
            if not node["child_ids"] or node["content_description"] or node["is_scrollable"]:
                left, top, right, bottom = node["bounds"]
                elements.append({
                    "text": text_or_none(node["text"]),
                    "content_description": text_or_none(node["content_description"]),
                    "is_visible": node["is_visible_to_user"],
                    "bbox_pixels": {"x_min": left, "x_max": right, "y_min": top, "y_max": bottom}})
    filtered = []
    for element in elements:
        bbox = element["bbox_pixels"]
        if (
            (element["content_description"] is not None or element["text"] is not None)
            and element["is_visible"]
            and (bbox["y_max"] - bbox["y_min"] > 0)
            and (bbox["x_max"] - bbox["x_min"] > 0)
            and (bbox["x_min"] < 1080)
            and (bbox["y_min"] < 2400)
            and (bbox["x_max"] > 0)
            and (bbox["y_max"] > 0)
        ):
            filtered.append(element)
    return filtered


def uground_smallest(x, y, elements):
    """UGround eval.py get_smallest_bounding_box, on the flat element list."""
    def contains(bbox, x, y):
        return bbox["x_min"] <= x <= bbox["x_max"] and bbox["y_min"] <= y <= bbox["y_max"]

    smallest = None
    for element in elements:
        bbox = element["bbox_pixels"]
        if contains(bbox, x, y):
            area = (bbox["x_max"] - bbox["x_min"]) * (bbox["y_max"] - bbox["y_min"])
            if smallest is None or area < ((smallest["x_max"] - smallest["x_min"])
                                           * (smallest["y_max"] - smallest["y_min"])):
                smallest = bbox
    return smallest


def test_element_boxes_equal_ugrounds_on_generated_forests():
    import random

    from qvl_agent.evaluation.accessibility import element_boxes
    from qvl_agent.evaluation.samples import smallest_box_containing

    rng = random.Random(7)
    edges_x = (-50, -1, 0, 1, 300, 539, 540, 1079, 1080, 1081, 1500)
    edges_y = (-50, -1, 0, 1, 1200, 2399, 2400, 2401, 3000)
    forests = agreed_points = grounded = 0
    for _ in range(1500):
        windows = []
        for _ in range(rng.randint(1, 3)):
            nodes = []
            for unique_id in range(rng.randint(1, 12)):
                x1, x2 = rng.choice(edges_x), rng.choice(edges_x)
                y1, y2 = rng.choice(edges_y), rng.choice(edges_y)
                nodes.append({
                    "bounds": (x1, y1, x2, y2),
                    "text": rng.choice(["", "", "OK", "Send"]),
                    "content_description": rng.choice(["", "", "Back"]),
                    "is_visible_to_user": rng.random() < 0.8,
                    "is_scrollable": rng.random() < 0.2,
                    "child_ids": tuple(rng.sample(range(20), rng.choice((0, 0, 1, 3)))),
                })
            windows.append(nodes)
        encoded = forest([[node(i, n["bounds"], text=n["text"],
                                description=n["content_description"],
                                visible=n["is_visible_to_user"], children=n["child_ids"])
                           + (varint_field(21, 1) if n["is_scrollable"] else b"")  # is_scrollable
                           for i, n in enumerate(nodes)] for nodes in windows])
        ours = element_boxes(encoded, PHONE)
        reference = uground_elements(windows)
        corners = (tuple(float(e["bbox_pixels"][k]) for k in ("x_min", "y_min", "x_max", "y_max"))
                   for e in reference)
        expected = list(dict.fromkeys(corners))  # in order, each box once
        assert ours == expected, windows
        forests += 1
        for _ in range(5):
            x, y = rng.choice(edges_x), rng.choice(edges_y)
            theirs = uground_smallest(x, y, reference)
            mine = smallest_box_containing(ours, (x, y))
            assert mine == (None if theirs is None else
                            (theirs["x_min"], theirs["y_min"], theirs["x_max"], theirs["y_max"]))
            agreed_points += 1
            grounded += theirs is not None
    print(f"{forests} forests, {agreed_points} points, {grounded} grounded in an element")
    assert forests == 1500 and agreed_points == 7500 and grounded > 1000  # not a vacuous agreement


# -- ScreenSpot on the Hub: parquet with the screenshots inside ----------------------------------


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)
    return path


def hub_image(data: bytes, name: str) -> dict:
    return {"bytes": data, "path": name}


def test_screenspot_v1_parquet_normalised_corner_boxes(tmp_path):
    """rootsautomation/ScreenSpot: file_name, bbox = normalised [x1, y1, x2, y2], image struct."""
    desk, phone = png((1920, 1080)), png(PHONE)
    rows = [
        {"file_name": "pc_1.png", "bbox": [0.1, 0.1, 0.2, 0.15], "instruction": "save",
         "data_type": "icon", "data_source": "windows", "image": hub_image(desk, "pc_1.png")},
        {"file_name": "pc_1.png", "bbox": [0.5, 0.5, 0.6, 0.6], "instruction": "close",
         "data_type": "text", "data_source": "macos", "image": hub_image(desk, "pc_1.png")},
        {"file_name": "m_1.png", "bbox": [0.8, 0.9, 0.95, 0.95], "instruction": "send",
         "data_type": "icon", "data_source": "android", "image": hub_image(phone, "m_1.png")},
        {"file_name": "m_1.png", "bbox": [80, 90, 95, 95], "instruction": "pixels, not this layout",
         "data_type": "icon", "data_source": "ios", "image": hub_image(phone, "m_1.png")},
    ]
    data = tmp_path / "ScreenSpot" / "data"
    data.mkdir(parents=True)
    write_parquet(data / "test-00000-of-00001.parquet", rows)
    answers = write_script(tmp_path / "a.jsonl", [
        click((1920, 1080), (380, 150), "computer"),   # in [192, 108, 384, 162]
        click((1920, 1080), (900, 500), "computer"),   # left of [960, 540, ...]: a miss
        click(PHONE, (900, 2200), "computer"),         # in [864, 2160, 1026, 2280]
    ])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot", "--annotations", str(tmp_path / "ScreenSpot"),
                 "--model", f"scripted:{answers}", "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(out)
    assert metrics["n"] == 3 and metrics["correct"] == 2 and metrics["skipped"] == 1
    assert "row 3" in metrics["skipped_samples"][0]
    assert "not normalised" in metrics["skipped_samples"][0]
    assert predictions(out)[0]["box"] == pytest.approx([192, 108, 384, 162])
    assert set(metrics["splits"]["platform"]) == {"desktop", "mobile"}
    assert len(list((out / "images").iterdir())) == 2  # two screenshots, each stored once


def test_screenspot_v2_parquet_with_broken_screenshots(tmp_path):
    """lmms-lab/ScreenSpot-v2: img_filename, bbox = [x, y, w, h] pixels, image struct. One
    embedded screenshot is not an image, one is cut off, one box is NaN: each skips its row,
    named."""
    def row(name, bbox, data):
        return {"img_filename": name, "bbox": bbox, "instruction": f"find {name}",
                "data_type": "icon", "data_source": "shop", "image": hub_image(data, name)}

    rows = [row("web_1.png", [100, 100, 200, 50], png((1280, 720))),
            row("web_2.png", [10, 10, 50, 50], b"<html>not found</html>"),
            row("web_3.png", [10, 10, 50, 50], truncated_png((640, 480))),
            row("web_4.png", [float("nan"), 10, 50, 50], png((1280, 720)))]
    parquet = write_parquet(tmp_path / "train-00000-of-00001.parquet", rows)
    answers = write_script(tmp_path / "a.jsonl", [click((1280, 720), (250, 120), "computer")] * 2)
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot", "--annotations", str(parquet),
                 "--model", f"scripted:{answers}", "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(out)
    assert metrics["n"] == 1 and metrics["accuracy"] == 1.0 and metrics["skipped"] == 3
    skips = metrics["skipped_samples"]
    assert any(f"{parquet} row 1" in s and "not an image" in s for s in skips)
    assert any(f"{parquet} row 3" in s and "not finite" in s for s in skips)
    assert any(f"{parquet} row 2" in s and "cannot read" in s for s in skips)
    assert f"skipped {parquet} row 2" in result.stderr


def test_screenspot_pro_parquet_downscaled_from_img_size(tmp_path):
    """lmms-lab/ScreenSpot-Pro: bbox = [x1, y1, x2, y2] pixels of img_size; here the embedded
    screenshot is half that size, so the box is scaled into the screenshot's pixels."""
    half = png((1280, 720))
    base = {"img_size": [2560, 1440], "bbox": [1000, 500, 1100, 540], "instruction": "extrude",
            "group": "CAD", "application": "inventor", "platform": "windows", "ui_type": "icon",
            "img_filename": "inventor/1.png", "image": hub_image(half, "inventor/1.png")}
    rows = [{**base, "id": "a"},
            {**base, "id": "b", "img_size": [2560, 1600]}]  # another shape: not this image resized
    parquet = write_parquet(tmp_path / "ScreenSpot-Pro.parquet", rows)
    # (525, 260) lies in the scaled box [500, 250, 550, 270]; unscaled it would miss by far.
    answers = write_script(tmp_path / "a.jsonl", [click((1280, 720), (525, 260), "computer")])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot-pro", "--annotations", str(parquet),
                 "--model", f"scripted:{answers}", "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(out)
    assert metrics["n"] == 1 and metrics["accuracy"] == 1.0 and metrics["scaled_annotations"] == 1
    assert metrics["skipped"] == 1 and "another shape" in metrics["skipped_samples"][0]
    (row,) = predictions(out)
    assert row["box"] == [500.0, 250.0, 550.0, 270.0] and row["scaled_from"] == [2560, 1440]


def test_screenspot_v2_json_with_its_images_still_in_the_zip(tmp_path):
    """OS-Copilot/ScreenSpot-v2 as downloaded: the JSON files and screenspotv2_image.zip."""
    import zipfile

    with zipfile.ZipFile(tmp_path / "screenspotv2_image.zip", "w") as archive:
        archive.writestr("screenspotv2_image/mobile_1.png", png(PHONE))
    records = [{"img_filename": name, "instruction": "send", "bbox": [900, 2200, 100, 100],
                "data_type": "icon", "data_source": "android"}
               for name in ("mobile_1.png", "mobile_2.png")]
    (tmp_path / "screenspot_mobile_v2.json").write_text(json.dumps(records))
    answers = write_script(tmp_path / "a.jsonl", [click(PHONE, (950, 2250), "computer")])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot", "--annotations",
                 str(tmp_path / "screenspot_mobile_v2.json"), "--images",
                 str(tmp_path / "screenspotv2_image.zip"), "--model", f"scripted:{answers}",
                 "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(out)
    assert metrics["n"] == 1 and metrics["accuracy"] == 1.0 and metrics["skipped"] == 1
    assert "image not found: mobile_2.png in" in metrics["skipped_samples"][0]


def test_inline_base64_screenshots_are_decoded_not_taken_for_file_names(tmp_path):
    image = png((1920, 1080))
    inline = base64.b64encode(image).decode()
    records = [{"img_filename": name, "instruction": "ok", "bbox": [100, 100, 200, 50],
                "data_type": "text", "data_source": "windows"}
               for name in (inline, "data:image/png;base64," + inline,
                            "data:image/png;base64,bm90IGFuIGltYWdl")]  # "not an image"
    (tmp_path / "inline.json").write_text(json.dumps(records))
    answers = write_script(tmp_path / "a.jsonl", [click((1920, 1080), (250, 120), "computer")] * 2)
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot", "--annotations", str(tmp_path / "inline.json"),
                 "--model", f"scripted:{answers}", "--max-pixels", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(out)
    assert metrics["n"] == 2 and metrics["accuracy"] == 1.0 and metrics["skipped"] == 1
    assert "record 2" in metrics["skipped_samples"][0]
    assert "not an image" in metrics["skipped_samples"][0]
    assert [Path(r["image"]).parent for r in predictions(out)] == [out / "images"] * 2


# -- an eval that scores nothing fails, and a corrupt image only skips its record ----------------


@pytest.fixture
def grounding_json(tmp_path):
    def write(images: dict[str, bytes]) -> Path:
        for name, data in images.items():
            (tmp_path / name).write_bytes(data)
        records = [{"img_filename": name, "instruction": f"find {name}", "bbox": [10, 10, 100, 50],
                    "data_type": "text", "data_source": "windows"} for name in images]
        (tmp_path / "set.json").write_text(json.dumps(records))
        return tmp_path / "set.json"
    return write


def test_one_corrupt_image_skips_its_record_and_the_eval_goes_on(grounding_json, tmp_path):
    annotations = grounding_json({"good.png": png((640, 480)),
                                  "garbage.png": b"\x89PNG\r\n\x1a\nnot really",
                                  "cut.png": truncated_png((640, 480))})
    answers = write_script(tmp_path / "a.jsonl", [click((640, 480), (50, 30), "computer")])
    out = tmp_path / "out"
    result = qvl_process("eval", "--format", "screenspot", "--annotations", str(annotations),
                         "--model", f"scripted:{answers}", "--max-pixels", str(SMALL),
                         "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    metrics = metrics_of(out)
    assert metrics["n"] == 1 and metrics["accuracy"] == 1.0 and metrics["skipped"] == 2
    # The first by its header, before the model loads; the second once decoded.
    assert f"skipped {annotations} record 1: cannot read image" in result.stderr
    assert f"skipped {annotations} record 2: cannot read image" in result.stderr


def test_a_dataset_with_nothing_usable_fails_before_the_model_loads(grounding_json, tmp_path):
    annotations = grounding_json({"a.png": b"GIF89a broken", "b.png": b"plain text"})
    result = qvl_process("eval", "--format", "screenspot", "--annotations", str(annotations),
                         "--model", "scripted:/nonexistent/answers.jsonl",
                         "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nothing to score" in result.stderr and "all 2 records were skipped" in result.stderr
    assert "record 1: cannot read image" in result.stderr
    assert "loading model" not in result.stderr


def test_an_eval_whose_every_sample_was_skipped_fails(grounding_json, tmp_path):
    annotations = grounding_json({"a.png": truncated_png((640, 480)),
                                  "b.png": truncated_png((320, 200))})
    answers = write_script(tmp_path / "a.jsonl", [tool_call(action="left_click",
                                                            coordinate=[1, 1])])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot", "--annotations", str(annotations),
                 "--model", f"scripted:{answers}", "--out", str(out))
    assert result.returncode == 2
    assert "nothing was scored: all 2 samples were skipped" in result.stderr
    assert "accuracy" not in result.stdout
    assert metrics_of(out)["n"] == 0 and metrics_of(out)["skipped"] == 2


def test_a_corrupt_screenshot_in_an_episode_leaves_that_episode_out(tmp_path):
    """A step dataset (an AndroidControl JSON export, one screenshot inline as base64, its
    split file beside it) with a screenshot whose data is cut off: its step is skipped and its
    episode is not counted."""
    (tmp_path / "s0.png").write_bytes(png(PHONE))
    (tmp_path / "cut.png").write_bytes(truncated_png(PHONE))
    inline = base64.b64encode(png(PHONE, "lightgrey")).decode()
    episodes = [
        {"episode_id": 1, "goal": "go home", "screenshots": ["s0.png", inline],
         "actions": [{"action_type": "navigate_home"}, {"action_type": "wait"}]},
        {"episode_id": 2, "goal": "go back", "screenshots": ["cut.png", "s0.png"],
         "actions": [{"action_type": "navigate_back"}, {"action_type": "navigate_back"}]},
        {"episode_id": 3, "goal": "not in the test split", "screenshots": ["s0.png"],
         "actions": [{"action_type": "wait"}]},
    ]
    (tmp_path / "ac.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    (tmp_path / "splits.json").write_text(json.dumps({"train": [3], "test": [1, 2]}))
    answers = write_script(tmp_path / "a.jsonl", [
        mobile(action="system_button", button="Home"), mobile(action="wait", time=1),
        mobile(action="system_button", button="Back")])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "androidcontrol", "--annotations", str(tmp_path / "ac.jsonl"),
                 "--split", "test", "--model", f"scripted:{answers}", "--max-pixels", str(SMALL),
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(out)
    assert metrics["n"] == 3 and metrics["exact_match"] == 1.0 and metrics["skipped"] == 1
    assert "ac.jsonl:2 step 0" in metrics["skipped_samples"][0]
    assert metrics["episodes"] == {"n": 1, "success_rate": 1.0, "goal_progress": 1.0,
                                   "left_out_incomplete": 1}


def test_a_run_directory_with_a_lost_screenshot_skips_that_step(tmp_path):
    from qvl_agent.agent import Agent, AgentConfig
    from qvl_agent.devices.still import StillImageDevice
    from qvl_agent.models.scripted import ScriptedModel

    (tmp_path / "shot.png").write_bytes(png((1366, 768)))
    recorded = [tool_call(action="left_click", coordinate=[683, 384]),
                tool_call(action="type", text="hello"),
                tool_call(action="terminate", status="success")]
    device = StillImageDevice.from_file(tmp_path / "shot.png")
    run = tmp_path / "runs" / "r1"
    Agent(ScriptedModel(recorded), device, AgentConfig(settle_seconds=0)).run("say hello", record=run)
    lost = sorted((run / "screenshots").iterdir())[1]
    lost.write_bytes(b"")  # the disk filled up while the run was recorded
    answers = write_script(tmp_path / "a.jsonl", [recorded[0], recorded[2]])
    out = tmp_path / "out"
    result = qvl("eval", "--format", "run", "--annotations", str(tmp_path / "runs"),
                 "--model", f"scripted:{answers}", "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(out)
    assert metrics["n"] == 2 and metrics["exact_match"] == 1.0 and metrics["skipped"] == 1
    assert f"{run} step 2: cannot read image" in metrics["skipped_samples"][0]  # steps count from 1
    assert metrics["episodes"]["n"] == 0 and metrics["episodes"]["left_out_incomplete"] == 1
    # The lost step's action is still in the history the model is shown for the last step.
    from qvl_agent.evaluation.runner import EvalConfig, run_eval

    model = ScriptedModel([recorded[0], recorded[2]])
    run_eval(EvalConfig(format="run", annotations=str(tmp_path / "runs"), model="s"), model,
             tmp_path / "again")
    last = model.prompts[1].messages[-1].text
    assert '"action": "type"' in last.split("Step 2:")[1] and '"text": "hello"' in last


def test_an_annotation_file_that_is_not_utf8_is_skipped_with_its_name(tmp_path):
    good = tmp_path / "data"
    good.mkdir()
    (good / "broken.json").write_bytes(b'[{"img_filename": "a.png", "instruction": "caf\xe9"}]')
    answers = write_script(tmp_path / "a.jsonl", [tool_call(action="left_click",
                                                            coordinate=[1, 1])])
    result = qvl("eval", "--format", "screenspot", "--annotations", str(good),
                 "--model", f"scripted:{answers}", "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{good / 'broken.json'}: not UTF-8 text; file skipped" in result.stderr
