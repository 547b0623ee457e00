"""A non-editable install carries the prompt templates: the wheel works outside the checkout."""

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_templates_and_renders_a_prompt_from_a_fresh_venv(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("qvl_agent-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for template in ("computer_use.json", "mobile_use.json", "system.txt", "user.txt", "retry.txt"):
        assert f"qvl_agent/templates/{template}" in names
    assert "qvl_agent/py.typed" in names
    for asset in ("watch.html", "watch.js", "watch.css"):  # the --watch page, served offline
        assert f"qvl_agent/watch/static/{asset}" in names
    assert {"qvl_agent/static/report.css", "qvl_agent/static/report.js"} <= set(names)  # report

    # A fresh venv that sees this interpreter's dependencies but not the checkout. Not
    # system_site_packages: inside a venv that is the *base* interpreter's packages (none on a
    # newcomer's machine). A .pth line puts this interpreter's site-packages after the fresh
    # venv's own; a plain path line does not run the .pth files there, so an editable install
    # of the checkout stays invisible. Nothing is downloaded.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(site) / "outer_dependencies.pth").write_text("\n".join(ours) + "\n")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = (
        "import qvl_agent, qvl_agent.prompts as p; from qvl_agent.geometry import Frame, Monitor;"
        f"assert qvl_agent.__file__.startswith({site!r}), qvl_agent.__file__;"
        "t = p.build_prompt('x', 'mobile', Frame.fit(Monitor(width=1080, height=2400))).chat_text();"
        "assert '1092x2408' in t; print('ok')"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_the_light_core_runs_without_torch_or_transformers(tmp_path):
    """`pip install qvl-agent` without the local extra: the CLI, parser and loop still work."""
    probe = (
        "import sys\n"
        "for name in ('torch', 'transformers', 'accelerate'):\n"
        "    sys.modules[name] = None  # import raises ImportError, as when not installed\n"
        "from qvl_agent.cli import main\n"
        "from qvl_agent.imaging import resizer_name\n"
        "assert resizer_name() == 'pil-bicubic', resizer_name()\n"
        "sys.stdin = __import__('io').StringIO('<tool_call>{\"name\": \"computer_use\", \"arguments\": {\"action\": \"left_click\", \"coordinate\": [658, 364]}}</tool_call>')\n"
        "code = main(['parse', '--screen', '1920x1080', '--max-pixels', '1003520'])\n"
        "from qvl_agent.models import ModelError, load_model\n"
        "try:\n"
        "    load_model('Qwen/Qwen2.5-VL-3B-Instruct')\n"
        "except ModelError as error:\n"
        "    print('model error:', error)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert '"screen_coordinate": [960, 540]' in result.stdout
    assert "pip install 'qvl-agent[local]'" in result.stdout
