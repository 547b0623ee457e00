// The watch page: follows the server-sent events of one or more runs and sends the person's
// commands back. Model text is only ever set as textContent; the only markup taken from the
// server is the marks' SVG, which the server builds from numbers.
"use strict";

const token = document.querySelector('meta[name="watch-token"]').content;
const state = { runs: {}, order: [], control: {}, closed: false, clockSkew: 0 };
let shownRun = null;       // run id the person picked (null: follow the newest)
let reviewStep = null;     // step index the person picked (null: follow the live step)
let sending = false;
const $ = (id) => document.getElementById(id);

function setText(element, text, emptyText) {
  const empty = text === null || text === undefined || text === "";
  element.textContent = empty ? (emptyText || "–") : text;
  element.classList.toggle("empty", empty);
}

function currentRun() {
  if (shownRun !== null && state.runs[shownRun]) return state.runs[shownRun];
  const running = state.order.filter((id) => state.runs[id] && state.runs[id].status === "running");
  const id = running.length ? running[running.length - 1] : state.order[state.order.length - 1];
  return id !== undefined ? state.runs[id] : null;
}

async function command(name, body) {
  if (sending) return;
  sending = true;
  try {
    const answer = await fetch("/api/" + name, {
      method: "POST",
      headers: { "X-Watch-Token": token, "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    if (!answer.ok) $("footer").textContent = name + ": " + (await answer.text());
  } catch (error) {
    $("footer").textContent = name + ": the watch server did not answer (" + error + ")";
  } finally {
    sending = false;
  }
}

// -- what is shown -----------------------------------------------------------------------------

function view(run) {
  // The step under review, the live step, or (at the end) the final screenshot.
  if (reviewStep !== null) {
    const step = run.steps.find((s) => s.index === reviewStep);
    if (step) return { label: "Step " + step.index, description: step.description, outcome: step.outcome,
                       shot: step.shot, svg: step.svg, thought: step.thought, response: step.response, error: step.error };
  }
  if (run.current) {
    const c = run.current;
    const done = run.steps.find((s) => s.index === c.index);
    if (done) return { label: "Step " + done.index, description: done.description, outcome: done.outcome,
                       shot: c.shot, svg: done.svg, thought: done.thought, response: done.response,
                       error: done.error, live: true };
    const doing = !c.description ? run.phase + "…"
                : (run.phase === "acting" ? "doing: " : "about to: ") + c.description;
    return { label: "Step " + c.index, description: doing, shot: c.shot, svg: c.svg,
             thought: c.thought, response: c.response, live: true, pending: !c.description };
  }
  const last = run.steps[run.steps.length - 1];
  if (run.final) {
    return { label: "After the last action", description: "", shot: run.final.shot, svg: "",
             thought: last ? last.thought : null, response: last ? last.response : null };
  }
  if (last) return { label: "Step " + last.index, description: last.description, outcome: last.outcome,
                     shot: last.shot, svg: last.svg, thought: last.thought, response: last.response, error: last.error };
  return { label: "", description: run.phase ? run.phase + "…" : "", shot: null };
}

function render() {
  const run = currentRun();
  const control = state.control || {};
  renderRuns(run);
  if (!run) return;
  document.title = (run.status === "running" ? "▶ " : "") + run.goal + " · qvl-agent";
  $("kind").textContent = run.kind === "replay" ? "replay" : state.order.length > 1 ? "batch" : "run";
  setText($("goal"), run.goal);
  $("meta").textContent = [run.model, run.device, run.run_dir].filter(Boolean).join("  ·  ");

  const finished = run.status !== "running";
  const held = control.taken_over ? "taken over" : control.paused ? "paused" : null;
  const pill = finished ? run.status : control.stopping ? "stopping" : held || "running";
  const status = $("status");
  status.textContent = pill;
  status.className = "pill " + pill.replace(" ", "-");
  $("phase").textContent = finished ? "" : run.phase || "";

  const pause = $("pause"), takeover = $("takeover"), stop = $("stop");
  const live = !finished && !control.stopping && !state.closed;
  pause.textContent = control.paused ? "Resume" : "Pause";
  pause.classList.toggle("active", !!control.paused);
  pause.disabled = !live || !!control.taken_over;
  takeover.textContent = control.taken_over ? "Give back" : "Take over";
  takeover.classList.toggle("active", !!control.taken_over);
  takeover.disabled = !live;
  stop.disabled = !live;

  const questions = (control.questions || []);
  const question = questions.find((q) => q.run === run.id) || questions[0];
  $("question").hidden = !question;
  if (question) {
    $("question-text").textContent = question.description;
    $("approve").dataset.question = question.id;
    $("decline").dataset.question = question.id;
    $("question-hint").hidden = !question.terminal;
  }

  renderBanner(run, control, finished);
  renderView(run);
  renderSteps(run);
}

function renderRuns(shown) {
  const nav = $("runs");
  nav.hidden = state.order.length < 2;
  if (nav.hidden) return;
  nav.replaceChildren(...state.order.map((id) => {
    const run = state.runs[id];
    const tab = document.createElement("button");
    tab.type = "button";
    tab.textContent = run.goal.slice(0, 40) + (run.status === "running" ? " ▶" : " · " + run.status);
    tab.classList.toggle("shown", shown && shown.id === run.id);
    tab.addEventListener("click", () => { shownRun = run.id; reviewStep = null; render(); });
    return tab;
  }));
}

function renderBanner(run, control, finished) {
  const banner = $("banner");
  banner.className = "banner";
  banner.replaceChildren();
  if (finished) {
    const good = ["success", "answered", "matched"].includes(run.status);
    banner.classList.add("finished");
    banner.classList.toggle("bad", !good);
    const head = document.createElement("b");
    head.textContent = run.status + ": ";
    banner.append(head, (run.reason || "") + (run.answer ? " — answer: " + run.answer : "") + " (" +
                  run.steps.length + " steps).");
    if (run.kind !== "replay" && run.run_dir) {
      const code = document.createElement("code");
      code.textContent = "qvl-agent report " + run.run_dir;
      banner.append("  Review it: ", code);
    }
  } else if (control.taken_over) {
    banner.classList.add("taken-over");
    banner.textContent = "You have the screen: the agent waits. Press “Give back” when you are done; " +
                         "it continues from a fresh screenshot.";
  } else if (control.paused) {
    banner.textContent = "Paused: the agent holds before its next screenshot or action.";
  } else if (control.stopping) {
    banner.textContent = "Stopping: the run ends at its next step boundary (a model answer under way is awaited).";
  }
  banner.hidden = banner.childNodes.length === 0;
}

function renderView(run) {
  const shown = view(run);
  setText($("step-label"), shown.label, "");
  $("action").textContent = shown.description + (shown.outcome ? "  [" + shown.outcome + "]" : "") +
                            (shown.error ? "  " + shown.error : "");
  $("follow").hidden = reviewStep === null || run.status !== "running";
  const img = $("shot-img");
  $("shot").hidden = !shown.shot;
  $("no-shot").hidden = !!shown.shot;
  if (shown.shot) {
    const src = shown.shot + "?token=" + encodeURIComponent(token);
    wantedSvg = shown.svg || "";
    if (img.getAttribute("src") !== src) {
      $("marks").hidden = true;  // marks of the new screenshot wait for it to arrive
      img.setAttribute("src", src);
    } else if (img.complete) {
      showMarks();
    }
  }
  setText($("thought"), shown.thought, shown.pending ? "…" : "none in the answer");
  setText($("response"), shown.response, shown.pending ? "the model is answering…" : "–");
}

let wantedSvg = "";
function showMarks() {
  const overlay = $("marks");
  if (overlay.dataset.svg !== wantedSvg) {
    overlay.innerHTML = wantedSvg;  // built by the server from numbers only
    overlay.dataset.svg = wantedSvg;
  }
  overlay.hidden = false;
}

function renderSteps(run) {
  $("step-count").textContent = run.steps.length ? "(" + run.steps.length + ")" : "";
  const rows = run.steps.map((step) => {
    const row = document.createElement("tr");
    row.dataset.index = step.index;
    row.classList.toggle("shown", reviewStep === step.index);
    const cells = [step.index, step.description, step.outcome,
                   step.model_ms === null ? "" : step.model_ms + " ms",
                   step.total_ms === null ? "" : step.total_ms + " ms"];
    cells.forEach((value, column) => {
      const cell = document.createElement("td");
      cell.textContent = value;
      if (column === 1) cell.className = "what";
      if (column === 2) cell.className = "outcome " + step.outcome;
      if (column >= 3) cell.className = "num";
      if (column === 2 && step.error) cell.title = step.error;
      row.append(cell);
    });
    row.addEventListener("click", () => { reviewStep = reviewStep === step.index ? null : step.index; render(); });
    return row;
  });
  document.querySelector("#steps tbody").replaceChildren(...rows);
}

function tick() {
  const run = currentRun();
  if (!run || !run.started_at) return;
  const end = run.status === "running" && !state.closed ? Date.now() / 1000 - state.clockSkew : null;
  if (end === null) return;
  const seconds = Math.max(0, Math.round(end - run.started_at));
  $("elapsed").textContent = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
}

// -- events ----------------------------------------------------------------------------------------

const events = new EventSource("/events?token=" + encodeURIComponent(token));
events.onmessage = (event) => {
  const message = JSON.parse(event.data);
  for (const [id, run] of Object.entries(message.runs)) {
    // Only the steps added since the last message come; keep the others.
    const known = state.runs[id] ? state.runs[id].steps : [];
    const added = new Set(run.steps.map((s) => s.index));
    run.steps = known.filter((s) => !added.has(s.index)).concat(run.steps)
                     .sort((a, b) => a.index - b.index);
    state.runs[id] = run;
  }
  state.order = message.order.map(String);
  state.control = message.control;
  state.closed = message.closed;
  state.clockSkew = Date.now() / 1000 - message.time;
  if (state.closed) {
    events.close();
    $("footer").textContent = "The run has ended and the watch server has closed; this page keeps its last state.";
  }
  render();
};
events.onopen = () => { $("footer").textContent = ""; };
events.onerror = () => {
  if (state.closed) return;
  $("footer").textContent = "Lost the connection to the watch server (the run may have ended); retrying…";
};

$("shot-img").addEventListener("load", showMarks);
$("pause").addEventListener("click", () => command(state.control.paused ? "resume" : "pause"));
$("takeover").addEventListener("click", () => command(state.control.taken_over ? "giveback" : "takeover"));
$("stop").addEventListener("click", () => command("stop"));
$("approve").addEventListener("click", (e) => command("answer", { question: Number(e.target.dataset.question), approve: true }));
$("decline").addEventListener("click", (e) => command("answer", { question: Number(e.target.dataset.question), approve: false }));
$("follow").addEventListener("click", () => { reviewStep = null; render(); });
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" || e.metaKey || e.ctrlKey || e.altKey) return;
  if (e.key === "p") $("pause").click();
  if (e.key === "Escape") { reviewStep = null; render(); }
});
setInterval(tick, 1000);
