"""Numbers a user types, run directories that cannot be written, images that cannot be read:
each is one line that says what to do, before any model loads; nothing is lost."""

import contextlib
import errno
import io
import os
import struct
import subprocess
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from qvl_agent.cli import main
from qvl_agent.trajectory import read_run
from tests.agent_helpers import tool_call, write_script

NEVER_LOADED = "qvl-tests/never-loaded"  # a model id: loading it would print "loading model"


def qvl(*args: str) -> SimpleNamespace:
    """``qvl-agent ARGS`` in this process: returncode, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def one_line_error(result, *says: str) -> None:
    """Exit status 2 and, after any progress lines, one line of error saying ``says``."""
    assert result.returncode == 2, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for text in says:
        assert text in last, result.stderr


@pytest.fixture
def shot(tmp_path):
    path = tmp_path / "shot.png"
    Image.new("RGB", (800, 600), "white").save(path)
    return path


# -- pixel options and other numbers ------------------------------------------------------------

PIXEL_MISTAKES = [
    (["--max-pixels", "0"], "--max-pixels 0 is out of range: use 784 to 100000000"),
    (["--max-pixels", "-5"], "--max-pixels -5 is out of range: use 784 to 100000000"),
    (["--max-pixels", "10"], "--max-pixels 10 is out of range: use 784 to 100000000"),
    (["--min-pixels", "0"], "--min-pixels 0 is out of range: use 784 to 100000000"),
    (["--min-pixels", "5000", "--max-pixels", "4000"], "--min-pixels 5000 is more than --max-pixels 4000"),
]


@pytest.mark.parametrize("options, says", PIXEL_MISTAKES)
def test_pixel_options_out_of_range_are_one_line_before_anything_starts(options, says, shot, tmp_path):
    parsed = qvl("parse", "--screen", "1920x1080", *options)
    one_line_error(parsed, says)
    record = tmp_path / "run"
    run = qvl("run", "x", "--device", f"image:{shot}", "--model", NEVER_LOADED, *options, "--record", record)
    one_line_error(run, says)
    assert "loading model" not in run.stderr and not record.exists()
    for command in (["ground", shot, "the button"], ["eval", "--format", "screenspot", "--annotations",
                                                      tmp_path, "--out", tmp_path / "out"]):
        one_line_error(qvl(*command, "--model", NEVER_LOADED, *options), says)


def test_a_screen_past_200_to_1_is_refused_in_one_line(tmp_path):
    one_line_error(qvl("parse", "--screen", "10000x40"), "10000x40", "250:1", "200:1")
    wide = tmp_path / "wide.png"
    Image.new("RGB", (6000, 20), "white").save(wide)
    record = tmp_path / "run"
    run = qvl("run", "x", "--device", f"image:{wide}", "--model", NEVER_LOADED, "--record", record)
    one_line_error(run, "6000x20", "300:1", "200:1")
    assert "loading model" not in run.stderr and not record.exists()
    one_line_error(qvl("ground", wide, "the button", "--model", NEVER_LOADED), "300:1")


@pytest.mark.parametrize("options, says", [
    (["--max-seconds", "nan"], "--max-seconds nan is out of range: use 0.1 to 2592000"),
    (["--max-seconds", "-1"], "--max-seconds -1.0 is out of range"),
    (["--max-steps", "0"], "--max-steps 0 is out of range: use 1 to 100000"),
    (["--settle", "inf"], "--settle inf is out of range: use 0 to 60"),
    (["--max-new-tokens", "0"], "--max-new-tokens 0 is out of range"),
    (["--request-timeout", "0"], "--request-timeout 0.0 is out of range"),
])
def test_other_number_options_are_bounded(options, says, shot, tmp_path):
    run = qvl("run", "x", "--device", f"image:{shot}", "--model", NEVER_LOADED, *options, "--record", tmp_path / "run")
    one_line_error(run, says)


# -- run directories that cannot be written -------------------------------------------------


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory no run can be written in: a read-only tmpfs as root, else mode 0555."""
    path = tmp_path / "read-only"
    mounted = _mount_tmpfs(path, "ro,size=64k")
    if not mounted:
        path.chmod(0o555)
    yield path
    if mounted:
        subprocess.run(["umount", str(path)], check=True)
    else:
        path.chmod(0o755)


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A directory on a disk with room for a few steps only: a 48 KiB tmpfs as root, else
    writes that fail with ENOSPC once 48 KiB have been written there."""
    path = tmp_path / "full"
    mounted = _mount_tmpfs(path, "size=48k")
    if not mounted:
        import qvl_agent.trajectory as trajectory

        written = [0]
        real_write = os.write

        def filling(fd, data):
            written[0] += len(data)
            if written[0] > 48 * 1024:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        monkeypatch.setattr(trajectory.os, "write", filling)
    yield path
    if mounted:
        subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_place_is_one_line_that_says_to_use_record(read_only_dir, shot, tmp_path, monkeypatch):
    script = write_script(tmp_path / "s.jsonl", [tool_call(action="terminate", status="success")])
    run = qvl("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}",
              "--record", read_only_dir / "run")
    one_line_error(run, f"cannot write the run directory {read_only_dir / 'run'}", "--record DIR")
    assert "loading model" not in run.stderr  # known before a model spends minutes loading
    monkeypatch.chdir(read_only_dir)  # the default runs/<time>-<goal> lands here too
    one_line_error(qvl("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}"),
                   "cannot write the run directory runs/", "--record DIR")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "a", "goal": "x"}\n')
    batch = qvl("run-batch", tasks, "--device", f"image:{shot}", "--model", f"scripted:{script}",
                "--record", read_only_dir / "suite")
    one_line_error(batch, "cannot write the run directory", "--record DIR")


def test_a_model_that_fails_to_load_leaves_no_run_directory_behind(shot, tmp_path):
    record = tmp_path / "runs" / "one"
    run = qvl("run", "x", "--device", f"image:{shot}", "--model", NEVER_LOADED, "--record", record)
    one_line_error(run, NEVER_LOADED)
    assert not record.exists()


def test_a_full_disk_stops_the_run_in_one_line_keeping_the_steps_written(full_disk, shot, tmp_path):
    script = write_script(tmp_path / "s.jsonl", [tool_call(action="wait", time=0)] * 200)
    record = full_disk / "run"
    run = qvl("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}", "--settle", "0",
              "--max-steps", "200", "--record", record)
    one_line_error(run, "No space left on device", "free some space", "steps recorded so far are kept")
    kept = read_run(record)
    assert 1 <= len(kept.steps) < 200 and kept.skipped_lines <= 1
    assert [s.index for s in kept.steps] == list(range(1, len(kept.steps) + 1))


# -- images that cannot be read ----------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture
def bad_images(tmp_path):
    """A decompression bomb (a 12000x12000 PNG header: 144 megapixels, a few bytes on disk),
    a file that is no image, and a PNG cut in half."""
    bomb = tmp_path / "bomb.png"
    header = struct.pack(">IIBBBBB", 12000, 12000, 8, 2, 0, 0, 0)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
                     + _chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _chunk(b"IEND", b""))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    noise = tmp_path / "noise.png"
    Image.frombytes("RGB", (200, 150), os.urandom(200 * 150 * 3)).save(noise)
    cut = tmp_path / "cut.png"
    cut.write_bytes(noise.read_bytes()[: noise.stat().st_size // 2])
    return {"bomb": (bomb, "144,000,000 pixels"), "junk": (junk, "not an image"), "cut": (cut, "cut.png")}


@pytest.mark.parametrize("kind", ["bomb", "junk", "cut"])
def test_unreadable_images_are_one_line_in_run_and_ground(bad_images, kind, tmp_path):
    path, says = bad_images[kind]
    one_line_error(qvl("run", "x", "--device", f"image:{path}", "--model", NEVER_LOADED,
                       "--record", tmp_path / "run"), str(path), says)
    one_line_error(qvl("ground", path, "the button", "--model", NEVER_LOADED), str(path), says)


@pytest.mark.parametrize("kind", ["bomb", "junk", "cut"])
def test_replay_and_report_of_a_run_with_an_unreadable_screenshot(bad_images, kind, shot, tmp_path):
    script = write_script(tmp_path / "s.jsonl", [tool_call(action="left_click", coordinate=[10, 10]),
                                                 tool_call(action="terminate", status="success")])
    record = tmp_path / "run"
    assert qvl("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}", "--dry-run",
               "--settle", "0", "--record", record).returncode == 0
    path, says = bad_images[kind]
    (record / "screenshots" / "0001.png").write_bytes(path.read_bytes())
    replay = qvl("replay", record, "--device", f"image:{shot}", "--dry-run")
    assert replay.returncode == 1 and "Traceback" not in replay.stderr
    assert "record_error" in replay.stdout and "0001.png" in replay.stderr and "nothing was done" in replay.stderr
    report = qvl("report", record, "--out", tmp_path / "page.html")
    assert report.returncode == 0 and "Traceback" not in report.stderr
    assert "0001.png" in (tmp_path / "page.html").read_text(encoding="utf-8")
