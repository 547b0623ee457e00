"""README's main-job command works: the demo enables dark mode on a virtual desktop."""

import subprocess
import sys

from qvl_agent.trajectory import read_run


def test_demo_enables_dark_mode_and_records_the_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "environments.demo", "--screen", "1366x768", "--record", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "dark_mode=True" in result.stderr and "task DONE" in result.stderr
    # It ends by saying how to look at the run.
    run_dir = tmp_path / "run"
    assert result.stderr.rstrip().endswith(
        f"report: qvl-agent report {run_dir}  (writes {run_dir / 'report.html'})")
    run = read_run(tmp_path / "run")
    assert run.meta.outcome.status == "success"
    assert [s.action.action for s in run.steps] == ["left_click", "left_click", "terminate"]
