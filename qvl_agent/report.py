"""``qvl-agent report``: one self-contained HTML page for a run directory or an eval output.

A run page shows one step at a time: a strip of thumbnails to jump between steps (and to the
screen after the last action), the keys left/right or j/k (Home/End) to move, and per step the
screenshot with the action drawn where it landed, the model's thought, its raw answer(s),
notes, errors and timings. Without JavaScript every step is shown one under the other.

An eval page shows the figures as percentages, the per-split tables, then the failures
grouped by kind (unusable answer, wrong action type, point off target, ...), then the rest.

Everything is inside the file (screenshots as JPEG data URLs, style, script): it opens from
file:// and needs no network. Marks are SVG over each screenshot in its own pixel frame
(see :mod:`qvl_agent.marks`).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

from qvl_agent.actions import describe
from qvl_agent.imaging import ImageReadError, open_image, preview_jpeg
from qvl_agent.jsonl import read_lines
from qvl_agent.marks import PREDICTED, TARGET, Mark, action_marks, svg_marks
from qvl_agent.trajectory import META_FILE, RunReadError, Step, read_run

MAX_WIDTH = 1280
THUMB_WIDTH = 192
# Eval pages show at most this many samples (failures first) to stay a reasonable size.
MAX_EVAL_SAMPLES = 300
# Figures that are shares (0-1) and shown as percentages on eval pages.
SHARE_NAMES = re.compile(r"(accuracy|match|rate|progress|precision|recall)$")
# The page's style and script, shipped in the package and inlined into every page.
STYLE = resources.files("qvl_agent").joinpath("static", "report.css").read_text(encoding="utf-8")
SCRIPT = resources.files("qvl_agent").joinpath("static", "report.js").read_text(encoding="utf-8")
STAGE_COLOURS = {"capture": "#7c93e6", "resize": "#9db2f2", "prompt": "#c0cbf5", "model": "#3558d6",
                 "parse": "#f0b429", "execute": "#16a34a"}
GOOD_STATUSES = ("success", "answered")


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


class _Picture:
    """A screenshot read once: its size, and JPEG data URLs for the page and the strip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.image = open_image(path, what="screenshot")
        except ImageReadError:
            self.image = None

    def url(self, width: int = MAX_WIDTH, quality: int = 80) -> str:
        data = preview_jpeg(self.image, max_width=width, quality=quality)
        return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")

    def shot(self, marks: list[Mark]) -> str:
        if self.image is None:
            return f'<p class="error">screenshot missing or unreadable: {_e(self.path)}</p>'
        width, height = self.image.size
        return (f'<div class="shot"><img src="{self.url()}" alt="{_e(self.path.name)}" '
                f'width="{min(width, MAX_WIDTH)}">{svg_marks(marks, width, height)}</div>')

    def thumb(self) -> str:
        return self.url(THUMB_WIDTH, 60) if self.image is not None else ""


def _page(title: str, body: str, script: str = "") -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}'
            f'{f"<script>{script}</script>" if script else ""}</body></html>')


def _table(rows: list[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _outcome_class(outcome: str) -> str:
    if outcome in ("executed", "final", "dry_run"):
        return ""
    return "warn" if outcome in ("declined", "interrupted") else "bad"


# -- a run ---------------------------------------------------------------------------------------


def run_page(directory: Path) -> str:
    try:
        run = read_run(directory)
    except RunReadError as error:
        raise ReportError(str(error)) from None
    meta = run.meta
    outcome = meta.outcome
    if outcome is None:
        status = '<span class="pill bad">unfinished</span> no outcome recorded (the run was killed)'
    else:
        good = "good" if outcome.status in GOOD_STATUSES else "bad"
        status = f'<span class="pill {good}">{_e(outcome.status)}</span> {_e(outcome.reason)}'
    facts = [f"{len(run.steps)} steps"]
    if outcome is not None:
        facts.append(f"{outcome.finished_at - meta.started_at:.1f} s")
    facts += [f"model {meta.model}", f"device {meta.device}",
              f"max_pixels {meta.config.get('max_pixels', '?')}"]
    if run.skipped_lines:
        facts.append(f"{run.skipped_lines} unreadable step lines")
    answer = (f'<div class="answer">answer: <b>{_e(outcome.answer)}</b></div>'
              if outcome is not None and outcome.answer is not None else "")
    header = (f'<header><div class="kicker">qvl-agent run report</div><h1>{_e(meta.goal)}</h1>'
              f"<div>{status}</div>{_facts(facts)}{answer}</header>")

    thumbs, sections = [], []
    total = len(run.steps)
    for step in run.steps:
        picture = _Picture(directory / step.screenshot)
        what = describe(step.action) if step.action is not None else "(no action)"
        thumbs.append(_thumb(f"step-{step.index}", str(step.index), what, picture.thumb(),
                             _outcome_class(step.outcome)))
        sections.append(_step_section(step, total, picture, what))
    final = outcome.final_screenshot if outcome is not None else None
    if final:
        picture = _Picture(directory / final)
        thumbs.append(_thumb("step-end", "end", "after the last action", picture.thumb(), ""))
        sections.append(_final_section(picture, outcome))
    if not sections:
        sections.append('<p class="muted">No step was recorded.</p>')
    strip = f'<nav class="strip" aria-label="steps">{"".join(thumbs)}</nav>' if thumbs else ""
    return _page(f"qvl-agent run: {meta.goal}", f"{header}{strip}<main>{''.join(sections)}</main>",
                 SCRIPT)


def _facts(facts: list[str]) -> str:
    return '<div class="facts">' + "".join(f"<span>{_e(f)}</span>" for f in facts) + "</div>"


def _thumb(target: str, label: str, what: str, url: str, css: str) -> str:
    image = f'<img src="{url}" alt="">' if url else '<img alt="">'
    return (f'<a class="thumb {css}" href="#{target}" title="{_e(what)}">{image}'
            f'<div class="label"><b>{_e(label)}</b><span>{_e(what)}</span></div></a>')


def _keys() -> str:
    return ('<span class="keys"><kbd>left</kbd> <kbd>right</kbd> or <kbd>k</kbd> <kbd>j</kbd> '
            'move between steps</span>')


def _step_section(step: Step, total: int, picture: _Picture, what: str) -> str:
    marks = action_marks(step.action, step.frame.monitor)
    css = _outcome_class(step.outcome)
    caption = (f'<div class="caption"><h2>Step {step.index} of {total}</h2>'
               f'<span class="what">{_e(what)}</span>'
               f'<span class="outcome {css}">{_e(step.outcome)}</span>{_keys()}</div>')
    side = []
    thought = (f'<div class="thought">{_e(step.thought)}</div>' if step.thought
               else '<div class="muted">none in the answer</div>')
    side.append("<h3>Thought</h3>" + thought)
    if step.error and step.outcome != "executed":
        side.append(f'<h3>Error</h3><div class="error">{_e(step.error)}</div>')
    answers = []
    for number, attempt in enumerate(step.attempts, start=1):
        label = f"answer {number} of {len(step.attempts)}" if len(step.attempts) > 1 else ""
        problem = f'<div class="error">unusable: {_e(attempt.error)}</div>' if attempt.error else ""
        answers.append(f'{f"<div class=muted>{label}</div>" if label else ""}'
                       f"<pre>{_e(attempt.response)}</pre>{problem}")
    side.append("<h3>Model answer</h3>" + ("".join(answers) or '<div class="muted">none</div>'))
    if step.action is not None:
        side.append("<h3>Action</h3><pre>"
                    + _e(json.dumps(step.action.model_dump(), ensure_ascii=False)) + "</pre>")
    if step.notes:
        side.append("<h3>Parser notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in step.notes)
                    + "</ul>")
    side.append("<h3>Timings</h3>" + _timings(step.timings))
    return (f'<section class="step" id="step-{step.index}"><div>{caption}'
            f'{picture.shot(marks)}</div><div class="side">{"".join(side)}</div></section>')


def _timings(timings: dict[str, float]) -> str:
    total = timings.get("total") or sum(v for k, v in timings.items() if "." not in k) or 1.0
    # What the stages do not cover: the wait for the screen to settle, writing the record.
    stages = {stage: timings.get(stage, 0.0) for stage in STAGE_COLOURS}
    stages["other"] = max(0.0, total - sum(stages.values()))
    colours = {**STAGE_COLOURS, "other": "#d0d4dc"}
    bar = "".join(
        f'<span style="width:{100 * value / total:.2f}%;background:{colours[stage]}" '
        f'title="{stage} {value:.0f} ms"></span>' for stage, value in stages.items() if value)
    legend = "".join(f'<i style="background:{colours[stage]}"></i>{stage}'
                     for stage, value in stages.items() if value)
    rows = "".join(f'<tr><td>{_e(k)}</td><td class="num">{v:,.1f} ms</td></tr>'
                   for k, v in timings.items())
    return f'<div class="timing">{bar}</div><div class="legend">{legend}</div><table>{rows}</table>'


def _final_section(picture: _Picture, outcome) -> str:
    caption = ('<div class="caption"><h2>After the last action</h2>'
               f'<span class="muted">the screen when the run ended</span>{_keys()}</div>')
    side = (f'<h3>Outcome</h3><div><b>{_e(outcome.status)}</b>: {_e(outcome.reason)}</div>'
            + (f"<h3>Answer</h3><div>{_e(outcome.answer)}</div>" if outcome.answer else ""))
    return (f'<section class="step" id="step-end"><div>{caption}{picture.shot([])}</div>'
            f'<div class="side">{side}</div></section>')


# -- an eval -------------------------------------------------------------------------------------


def _read_predictions(path: Path) -> tuple[list[dict], int]:
    """The prediction records, and how many lines were not a JSON object (torn, not UTF-8)."""
    records, unreadable = [], 0
    for line in read_lines(path):
        try:
            record = json.loads(line.text) if line.text is not None else None
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            unreadable += 1
    return records, unreadable


def eval_page(directory: Path) -> str:
    metrics_path = directory / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    records, unreadable = _read_predictions(directory / "predictions.jsonl")
    scored = [r for r in records if "skipped" not in r]
    failed = [r for r in scored if not _correct(r)]
    passed = [r for r in scored if _correct(r)]
    config = metrics.get("config", {})
    facts = [f"{len(scored)} scored", f"{len(failed)} failed"]
    if unreadable:  # e.g. the last line of an eval that was killed mid-write
        facts.append(f"{unreadable} unreadable lines left out")
    for name in ("scorer", "max_pixels", "date"):
        value = metrics.get(name, config.get(name))
        if value is not None:
            facts.append(f"{name} {value}")
    header = (f'<header><div class="kicker">qvl-agent eval report</div>'
              f"<h1>{_e(config.get('format', '?'))} · {_e(config.get('model', '?'))}</h1>"
              f"{_facts(facts)}</header>")

    groups: dict[str, list[dict]] = defaultdict(list)
    for record in failed:
        groups[failure_kind(record)].append(record)
    kinds = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    budget = MAX_EVAL_SAMPLES
    sections = []
    for number, (kind, group) in enumerate(kinds, start=1):
        shown = group[:max(0, budget)]
        budget -= len(shown)
        more = (f'<p class="muted">{len(group) - len(shown)} more not shown (the page shows '
                f"{MAX_EVAL_SAMPLES} samples at most)</p>") if len(shown) < len(group) else ""
        sections.append(f'<section id="kind-{number}"><h2>{_e(kind)} ({len(group)})</h2>'
                        + "".join(_sample_card(r) for r in shown) + more + "</section>")
    shown_passed = passed[:max(0, budget)]
    key = (f'<p class="key"><span style="color:{PREDICTED}">magenta</span>: the prediction, '
           f'<span style="color:{TARGET}">green</span>: the target.</p>')
    kinds_list = "".join(f'<li><a href="#kind-{n}">{_e(kind)}</a>: {len(group)} '
                         f"({_percent(len(group) / len(scored))} of scored)</li>"
                         for n, (kind, group) in enumerate(kinds, start=1))
    correct = (f"<details><summary>Correct samples ({len(passed)}, {len(shown_passed)} shown)"
               f"</summary>{''.join(_sample_card(r) for r in shown_passed)}</details>"
               if passed else "")
    body = (header + "<main>" + _figures(metrics) + _split_tables(metrics)
            + f'<h2>Failures by kind</h2><ul class="kinds">{kinds_list or "<li>none</li>"}</ul>'
            + key + "".join(sections) + correct + "</main>")
    return _page("qvl-agent eval", body)


def _percent(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _is_share(name: str, value: Any) -> bool:
    return (isinstance(value, float | int) and not isinstance(value, bool)
            and SHARE_NAMES.search(name) is not None and 0 <= value <= 1)


def _figure_text(name: str, value: Any) -> str:
    return _percent(value) if _is_share(name, value) else str(value)


def _figures(metrics: dict[str, Any]) -> str:
    """The headline figures as tiles: every top-level number (shares as percentages) and
    the episode figures of step evals."""
    tiles = []
    flat = [(k, v) for k, v in metrics.items() if isinstance(v, int | float | str | type(None))
            and not k.endswith("_is") and k not in ("scorer", "date")]
    flat += [(f"episode {k}", v) for k, v in (metrics.get("episodes") or {}).items()
             if isinstance(v, int | float)]
    notes = {k[:-3]: v for k, v in metrics.items() if k.endswith("_is")}
    for name, value in flat:
        if value is None:
            continue
        title = f' title="{_e(notes[name])}"' if name in notes else ""
        tiles.append(f'<div class="tile"{title}><div class="value">{_e(_figure_text(name, value))}'
                     f'</div><div class="name">{_e(name.replace("_", " "))}</div></div>')
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _split_tables(metrics: dict[str, Any]) -> str:
    """One table per split (grounding: platform/type, ...; steps: per action type)."""
    tables = []
    named = dict((metrics.get("splits") or {}).items())
    if metrics.get("per_action"):
        named["action type"] = metrics["per_action"]
    for split, cells in named.items():
        if not isinstance(cells, dict) or not cells:
            continue
        columns = [c for c in next(iter(cells.values())) if c != "n"]
        shares = [c for c in columns if SHARE_NAMES.search(c)]
        head = "".join(f'<th class="num">{_e(c.replace("_", " "))}</th>' for c in columns)
        head += "<th></th>" if len(shares) == 1 else ""  # a bar for the one share
        rows = []
        for cell, figures in cells.items():
            tds = [f'<td class="num">{_e(_figure_text(c, figures.get(c)))}</td>' for c in columns]
            if len(shares) == 1:
                value = figures.get(shares[0])
                width = 60 * value if _is_share(shares[0], value) else 0
                tds.append(f'<td><span class="bar" style="width:{width:.0f}px"></span></td>')
            rows.append(f'<tr><td>{_e(cell)}</td><td class="num">{_e(figures.get("n", ""))}</td>'
                        f'{"".join(tds)}</tr>')
        tables.append(f'<div class="card"><h3>by {_e(split)}</h3><table><tr><th>{_e(split)}</th>'
                      f'<th class="num">n</th>{head}</tr>{"".join(rows)}</table></div>')
    return f'<div class="tables">{"".join(tables)}</div>' if tables else ""


def _correct(record: dict) -> bool:
    return bool(record["correct"] if "correct" in record else record.get("exact_match"))


def _error_shape(error: str) -> str:
    """An error message with its particulars (quoted values, numbers) blanked, so that
    answers that failed the same way fall into one group."""
    shape = re.split(r"[:(;]|, got", error, maxsplit=1)[0]
    shape = re.sub(r'"[^"]*"', '"…"', shape)
    shape = re.sub(r"-?\d+(\.\d+)?", "N", shape)
    return shape.strip()[:80] or "unusable"


def failure_kind(record: dict) -> str:
    """Why a scored sample failed, in a few words shared by samples that failed alike."""
    if record.get("error"):
        return f"unusable answer: {_error_shape(str(record['error']))}"
    if "box" in record:  # grounding
        if not record.get("point"):
            return "no point in the answer"
        return "point outside the target box"
    predicted, target = record.get("predicted"), record.get("target") or {}
    if not predicted:
        return "no action"
    if not record.get("type_match"):
        return (f"wrong action type: {target.get('action')} expected, "
                f"{predicted.get('action')} given")
    for field, kind in (("point", "point off the target"), ("direction", "wrong direction"),
                        ("text", "wrong text"), ("button", "wrong button")):
        if target.get(field) is not None:
            return f"right type ({target.get('action')}), {kind}"
    return f"right type ({target.get('action')}), other details differ"


def _sample_card(record: dict) -> str:
    marks: list[Mark] = []
    if "box" in record:  # grounding
        marks.append(Mark("box", tuple(record["box"]), TARGET, "target"))
        title = record.get("instruction", "")
    else:
        target = record.get("target") or {}
        marks += [Mark("box", tuple(box), TARGET, "target") for box in target.get("boxes") or []]
        if target.get("point"):
            marks.append(Mark("point", tuple(target["point"]), TARGET, "target"))
        title = (f'{record.get("goal", "")} (step {record.get("step")}): '
                 f"expected {_target_text(target)}")
    if record.get("point"):
        marks.append(Mark("point", tuple(record["point"]), PREDICTED, "prediction"))
    predicted = record.get("predicted")
    if predicted and predicted.get("point") and not record.get("point"):
        if predicted.get("point2"):
            marks.append(Mark("arrow", (*predicted["point"], *predicted["point2"]), PREDICTED,
                              "prediction"))
        marks.append(Mark("point", tuple(predicted["point"]), PREDICTED, "prediction"))
    verdict = ('<span class="good-text">correct</span>' if _correct(record)
               else '<span class="bad-text">wrong</span>')
    error = (f'<p class="error">unusable answer: {_e(record["error"])}</p>'
             if record.get("error") else "")
    got = f"<p>predicted: {_e(_target_text(predicted))}</p>" if predicted else ""
    return (f'<div class="card"><h3>{verdict} {_e(record.get("id", ""))}: {_e(title)}</h3>'
            f'{_Picture(Path(record["image"])).shot(marks)}{error}{got}'
            f'<pre>{_e(record.get("response", ""))}</pre></div>')


def _target_text(target: dict) -> str:
    parts = [str(target.get("action"))]
    for name in ("point", "direction", "text", "button"):
        if target.get(name) is not None:
            value = target[name]
            parts.append(f"({value[0]:.0f}, {value[1]:.0f})" if name == "point"
                         else json.dumps(value, ensure_ascii=False))
    return " ".join(parts)
