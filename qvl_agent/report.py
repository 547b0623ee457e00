"""``qvl-agent report``: one self-contained HTML page for a run directory or an eval output.

Screenshots are embedded (JPEG, at most ``MAX_WIDTH`` wide) with an SVG layer on top whose
``viewBox`` is the screenshot's own pixel size, so a mark drawn at a recorded pixel sits on
that pixel however the browser scales the page. Marks: magenta = what the model did,
green = the target (eval ground truth).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from PIL import Image

from qvl_agent.actions import describe
from qvl_agent.imaging import ImageReadError, open_image
from qvl_agent.trajectory import META_FILE, RunReadError, Step, read_run

MAX_WIDTH = 1280
# Eval pages show at most this many samples (failures first) to stay a reasonable size.
MAX_EVAL_SAMPLES = 300
PREDICTED, TARGET = "#ff00ff", "#00c800"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 0 0 8px; }
.card { background: white; border: 1px solid #ddd; border-radius: 6px; padding: 12px; margin: 16px 0; }
.shot { position: relative; display: inline-block; max-width: 100%; line-height: 0; }
.shot img { display: block; width: auto; height: auto; max-width: 100%; max-height: 80vh; }
.shot svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%; overflow: visible; }
pre { white-space: pre-wrap; word-break: break-word; background: #f3f3f3; padding: 8px; font-size: 12px; }
table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
.bad { color: #b00020; font-weight: bold; } .good { color: #007a1f; font-weight: bold; }
"""


class ReportError(ValueError):
    """A directory that is neither a run nor an eval output."""


def write_report(directory: Path, out: Path | None = None) -> Path:
    directory = Path(directory)
    if (directory / META_FILE).is_file():
        page = run_page(directory)
    elif (directory / "predictions.jsonl").is_file():
        page = eval_page(directory)
    else:
        raise ReportError(f"{directory} is neither a run directory ({META_FILE}) nor an eval "
                          "output (predictions.jsonl)")
    out = Path(out) if out is not None else directory / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


# -- pieces ------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _image_data(path: Path) -> tuple[str, tuple[int, int]] | None:
    """The image as a data URL (downscaled JPEG) and its original size; None if unreadable."""
    try:
        shown = open_image(path)
    except ImageReadError:
        return None
    size = shown.size
    if shown.width > MAX_WIDTH:
        shown = shown.resize((MAX_WIDTH, round(shown.height * MAX_WIDTH / shown.width)), Image.BILINEAR)
    buffer = io.BytesIO()
    shown.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), size


Mark = tuple  # ("point", (x, y), colour, css class) | ("arrow", start, end, colour) | ("box", box, colour)


def _shot(path: Path, marks: list[Mark]) -> str:
    loaded = _image_data(path)
    if loaded is None:
        return f'<p class="bad">screenshot missing: {_e(path)}</p>'
    url, (width, height) = loaded
    unit = max(width, height) / 200  # marks sized to the screenshot, not to the page
    svg = "".join(_svg(mark, unit) for mark in marks)
    return (f'<div class="shot"><img src="{url}" alt="{_e(path.name)}">'
            f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none">{svg}</svg></div>')


def _svg(mark: Mark, unit: float) -> str:
    kind = mark[0]
    if kind == "point":
        _, (x, y), colour, css = mark
        return (f'<g class="mark {css}" data-x="{x:.1f}" data-y="{y:.1f}">'
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{3 * unit:.1f}" fill="none" stroke="{colour}" '
                f'stroke-width="{unit:.1f}"/><circle cx="{x:.1f}" cy="{y:.1f}" r="{0.8 * unit:.1f}" '
                f'fill="{colour}"/></g>')
    if kind == "arrow":
        _, (x1, y1), (x2, y2), colour = mark
        return (f'<g class="mark swipe"><line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                f'stroke="{colour}" stroke-width="{unit:.1f}"/><circle cx="{x2:.1f}" cy="{y2:.1f}" '
                f'r="{2 * unit:.1f}" fill="{colour}"/></g>')
    _, (x1, y1, x2, y2), colour = mark
    return (f'<rect class="mark box" x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" '
            f'fill="none" stroke="{colour}" stroke-width="{0.7 * unit:.1f}"/>')


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<style>{STYLE}</style></head><body>{body}</body></html>')


def _table(rows: list[tuple[str, object]]) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


# -- a run ---------------------------------------------------------------------------------------


def run_page(directory: Path) -> str:
    try:
        run = read_run(directory)
    except RunReadError as error:
        raise ReportError(str(error)) from None
    meta = run.meta
    outcome = meta.outcome
    rows = [("goal", meta.goal), ("model", meta.model), ("device", meta.device),
            ("outcome", f"{outcome.status}: {outcome.reason}" if outcome else "unfinished (no outcome recorded)"),
            ("steps", len(run.steps)), ("max_pixels", meta.config.get("max_pixels", "?"))]
    if outcome and outcome.answer is not None:
        rows.append(("answer", outcome.answer))
    if run.skipped_lines:
        rows.append(("unreadable step lines", run.skipped_lines))
    cards = "".join(_step_card(directory, step) for step in run.steps)
    return _page(f"qvl-agent run: {meta.goal}", f"<h1>{_e(meta.goal)}</h1>{_table(rows)}{cards}")


def _step_card(directory: Path, step: Step) -> str:
    monitor = step.frame.monitor
    marks: list[Mark] = []
    if step.action is not None:
        points = {name: value for name, value in step.action if hasattr(value, "screen") and value.screen}
        local = {name: monitor.to_local(*p.screen) for name, p in points.items()}
        if "coordinate" in local and "coordinate2" in local:
            marks.append(("arrow", local["coordinate"], local["coordinate2"], PREDICTED))
        if "coordinate" in local:
            marks.append(("point", local["coordinate"], PREDICTED, f"action {step.action.action}"))
    what = describe(step.action) if step.action is not None else "(no action)"
    answers = "".join(
        f"<pre>{_e(attempt.response)}</pre>"
        + (f'<p class="bad">unusable: {_e(attempt.error)}</p>' if attempt.error else "")
        for attempt in step.attempts)
    timings = ", ".join(f"{k} {v:.0f} ms" for k, v in step.timings.items())
    notes = "".join(f"<li>{_e(n)}</li>" for n in step.notes)
    error = f'<p class="bad">{_e(step.error)}</p>' if step.error and step.outcome != "executed" else ""
    return (f'<div class="card" id="step-{step.index}"><h2>step {step.index}: {_e(what)} '
            f'[{_e(step.outcome)}]</h2>{_shot(directory / step.screenshot, marks)}{error}'
            f'<p>model answer(s):</p>{answers}{"<ul>" + notes + "</ul>" if notes else ""}'
            f'<p>{_e(timings)}</p></div>')


# -- an eval -------------------------------------------------------------------------------------


def eval_page(directory: Path) -> str:
    metrics_path = directory / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    records = [json.loads(line) for line in (directory / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    scored = [r for r in records if "skipped" not in r]
    failed = [r for r in scored if not _correct(r)]
    shown = (failed + [r for r in scored if _correct(r)])[:MAX_EVAL_SAMPLES]
    summary = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    config = metrics.get("config", {})
    head = (f"<h1>eval: {_e(config.get('format', '?'))} with {_e(config.get('model', '?'))}</h1>"
            f"{_table(list(summary.items()))}"
            f"<p>{len(failed)} failures of {len(scored)} scored; showing {len(shown)}, failures first. "
            f'<span style="color:{PREDICTED}">magenta</span>: prediction, '
            f'<span style="color:{TARGET}">green</span>: target.</p>')
    return _page("qvl-agent eval", head + "".join(_sample_card(r) for r in shown))


def _correct(record: dict) -> bool:
    return bool(record["correct"] if "correct" in record else record.get("exact_match"))


def _sample_card(record: dict) -> str:
    marks: list[Mark] = []
    if "box" in record:  # grounding
        marks.append(("box", record["box"], TARGET))
        title = record.get("instruction", "")
    else:
        target = record["target"]
        marks += [("box", box, TARGET) for box in target.get("boxes") or []]
        if target.get("point"):
            marks.append(("point", target["point"], TARGET, "target"))
        title = f'{record.get("goal", "")} (step {record.get("step")}): expected {_target_text(target)}'
    if record.get("point"):
        marks.append(("point", record["point"], PREDICTED, "prediction"))
    predicted = record.get("predicted")
    if predicted and predicted.get("point") and not record.get("point"):
        if predicted.get("point2"):
            marks.append(("arrow", predicted["point"], predicted["point2"], PREDICTED))
        marks.append(("point", predicted["point"], PREDICTED, "prediction"))
    verdict = ('<span class="good">correct</span>' if _correct(record) else '<span class="bad">wrong</span>')
    error = f'<p class="bad">unusable answer: {_e(record["error"])}</p>' if record.get("error") else ""
    got = f"<p>predicted: {_e(_target_text(predicted))}</p>" if predicted else ""
    return (f'<div class="card"><h2>{verdict} {_e(record["id"])}: {_e(title)}</h2>'
            f'{_shot(Path(record["image"]), marks)}{error}{got}<pre>{_e(record.get("response", ""))}</pre></div>')


def _target_text(target: dict) -> str:
    parts = [target["action"]]
    for name in ("point", "direction", "text", "button"):
        if target.get(name) is not None:
            value = target[name]
            parts.append(f"({value[0]:.0f}, {value[1]:.0f})" if name == "point" else json.dumps(value, ensure_ascii=False))
    return " ".join(parts)
