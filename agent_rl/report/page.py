"""The report's ``index.html``: the runs' numbers, the plots, and the trajectory viewer.

One file, no network: the styles and the viewer's script are inline, the plots are the PNG files beside
it, and the viewer's data (the sampled trajectories of `agent_rl.training.trajectories`, at most ``max_steps``
steps per run, evenly spread, first and last included) is embedded as JSON. The viewer: pick a run, a
step and a trajectory; each turn shows the observation, the response with every token's background
coloured by its entropy (white: 0 nats, red: the page's 99th percentile and above; hover for the value),
the parsed action, whether it was valid, a tool environment's tool calls and tool results as blocks of their
own, and the trajectory's outcome.
"""

from __future__ import annotations

import html
import json
from typing import Any

from agent_rl.cli.console import train_success, validation_success
from agent_rl.report.plots import PLOTS
from agent_rl.report.runs import Run

# (column, metrics key or None for the validation success, format)
COLUMNS = (
    ("train success", "env/success_rate", ".3f"),
    ("validation success", None, ".3f"),
    ("return", "env/return/mean", ".3f"),
    ("entropy", "actor/entropy", ".3f"),
    ("episode length", "env/episode_length/mean", ".2f"),
    ("valid actions", "env/valid_action_ratio", ".3f"),
    ("step time (s)", "timing_s/step", ".1f"),
    ("generation (s)", "timing_s/gen", ".1f"),
    ("update (s)", "timing_s/update_actor", ".1f"),
)


def value(data: dict[str, Any], key: str | None) -> float | None:
    if key is None:
        return validation_success(data)
    if key == "env/success_rate":
        return train_success(data)
    found = data.get(key)
    return float(found) if isinstance(found, int | float) else None


def fmt(x: float | None, spec: str) -> str:
    return "" if x is None else format(x, spec)


def spread(items: list[Any], k: int) -> list[Any]:
    """At most ``k`` of ``items``, evenly spaced, the first and the last included."""
    if k <= 0 or len(items) <= k:
        return list(items)
    if k == 1:
        return [items[-1]]
    picks = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in picks]


def viewer_data(runs: list[Run], max_steps: int) -> dict[str, Any]:
    data = {"runs": [], "scale": 1.0}
    values: list[float] = []
    for run in runs:
        samples = spread(run.samples, max_steps)
        data["runs"].append({"label": run.label, "saved_steps": len(run.samples), "steps": samples})
        values += [
            h
            for s in samples
            for t in s["trajectories"]
            for turn in t["turns"]
            for h in turn.get("entropy", [])
        ]
    if values:
        values.sort()
        data["scale"] = max(values[min(len(values) - 1, int(0.99 * len(values)))], 1e-6)
    return data


def _summary_rows(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        steps = sorted(s for s, d in run.steps.items() if "timing_s/step" in d or "env/success_rate" in d)
        last = run.steps[steps[-1]] if steps else {}
        vals = [(validation_success(run.steps[s]), s) for s in sorted(run.steps)]
        vals = [(v, s) for v, s in vals if v is not None]
        best = max(vals, key=lambda vs: vs[0]) if vals else None
        times = [run.steps[s]["timing_s/step"] for s in steps if "timing_s/step" in run.steps[s]]
        cells = [
            html.escape(run.label),
            html.escape(str(run.path)),
            str(len(steps)),
            fmt(train_success(last), ".3f"),
            "" if best is None else f"{best[0]:.3f} (step {best[1]})",
            fmt(value(last, "env/return/mean"), ".3f"),
            fmt(value(last, "actor/entropy"), ".3f"),
            fmt(sum(times) / len(times) if times else None, ".1f"),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(rows)


def _step_table(run: Run) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c, _, _ in COLUMNS)
    body = []
    for step in sorted(run.steps):
        data = run.steps[step]
        cells = "".join(f"<td>{fmt(value(data, key), spec)}</td>" for _, key, spec in COLUMNS)
        body.append(f'<tr data-step="{step}"><td>{step}</td>{cells}</tr>')
    return (
        f'<details class="steps"><summary>{html.escape(run.label)}: every step</summary>'
        f'<table class="step-table" data-run="{html.escape(run.label)}"><tr><th>step</th>{head}</tr>'
        + "\n".join(body)
        + "</table></details>"
    )


def render(runs: list[Run], drawn: dict[str, Any], max_steps: int = 20) -> str:
    plots = "\n".join(
        f'<figure id="plot-{name}" class="{"wide" if name in WIDE else ""}">'
        f'<img src="{name}.png" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, (_, caption) in PLOTS.items()
        if name in drawn
    )
    data = json.dumps(viewer_data(runs, max_steps), ensure_ascii=False, separators=(",", ":"))
    data = data.replace("</", "<\\/")  # the JSON cannot close its <script> element
    return TEMPLATE.format(
        title=html.escape(", ".join(r.label for r in runs)),
        summary=_summary_rows(runs),
        steps="\n".join(_step_table(run) for run in runs),
        plots=plots or "<p>No metrics to plot.</p>",
        data=data,
        script=SCRIPT,
        style=STYLE,
    )


WIDE = ("success_by_task",)  # plots that take the page's width
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #eee;padding:6px;max-width:48%}figure img{max-width:100%}
figure.wide{max-width:100%}
figcaption{font-size:12px;color:#555}
#controls select{margin-right:1em;max-width:420px}.traj-head{margin:.8em 0;padding:6px;background:#f4f4f4}
.turn{border:1px solid #ddd;margin:.6em 0;padding:6px 8px}.turn-head{font-weight:600}
.label{font-size:12px;color:#666;margin-top:4px}
pre{white-space:pre-wrap;margin:2px 0;background:#fafafa;padding:4px}
pre.tool-call{background:#eef4ff;border-left:3px solid #4a7bd0}
pre.tool-result{background:#f1f8ee;border-left:3px solid #5a9a4a}
.tokens{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:13px;line-height:1.7}
.tok{border-radius:2px}.valid{color:#1a7f37}.invalid{color:#c62828}.won{color:#1a7f37}.lost{color:#c62828}
.legend{display:inline-block;width:160px;height:10px;background:linear-gradient(90deg,#fff,#d7301f);vertical-align:middle}
"""

SCRIPT = r"""
const DATA = JSON.parse(document.getElementById('viewer-data').textContent);
const $ = (id) => document.getElementById(id);
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function colour(h) {  // white (0 nats) to red (the page's scale and above)
  const x = Math.max(0, Math.min(1, h / DATA.scale));
  const mix = (a, b) => Math.round(a + (b - a) * x);
  return `rgb(${mix(255, 215)}, ${mix(255, 48)}, ${mix(255, 31)})`;
}
function fill(select, items, label) {
  select.innerHTML = '';
  items.forEach((item, i) => select.appendChild(el('option', {value: i}, label(item))));
}
function current() {
  const run = DATA.runs[+$('run').value];
  const step = run && run.steps[+$('step').value];
  return {run, step, traj: step && step.trajectories[+$('traj').value]};
}
function onRun() {
  const {run} = current();
  fill($('step'), run.steps, (s) => `step ${s.step}`);
  $('step').value = Math.max(run.steps.length - 1, 0);
  onStep();
}
function onStep() {
  const {step} = current();
  fill($('traj'), step ? step.trajectories : [], (t) =>
    `${t.task_type || t.id} · ${t.won ? 'won' : 'lost'} · return ${t.return.toFixed(2)} · ${t.length} steps`);
  show();
}
function show() {
  const {run, step, traj} = current();
  const view = $('trajectory');
  view.innerHTML = '';
  if (!traj) {
    const none = run && !run.steps.length ? 'This run saved no trajectories.' : 'No trajectory.';
    view.appendChild(el('p', {}, none));
    return;
  }
  const head = el('div', {class: 'traj-head', id: 'outcome'});
  head.appendChild(el('span', {class: traj.won ? 'won' : 'lost'}, traj.won ? 'won' : 'lost'));
  head.appendChild(document.createTextNode(
    ` · return ${traj.return.toFixed(3)} · score ${traj.score.toFixed(3)} · ${traj.length} steps · ` +
    `task ${traj.task_type || '-'} · trajectory ${traj.id} · step ${step.step}`));
  view.appendChild(head);
  for (const turn of traj.turns) {
    const box = el('div', {class: 'turn', 'data-turn': turn.turn});
    const th = el('div', {class: 'turn-head'}, `turn ${turn.turn} · action `);
    th.appendChild(el('code', {class: 'action'}, turn.action || '(none)'));
    th.appendChild(document.createTextNode(' · '));
    th.appendChild(el('span', {class: turn.valid ? 'valid' : 'invalid'},
      turn.valid ? 'valid' : `invalid${turn.reason ? ' (' + turn.reason + ')' : ''}`));
    box.appendChild(th);
    box.appendChild(el('div', {class: 'label'}, 'observation'));
    box.appendChild(el('pre', {class: 'observation'}, turn.observation));
    const hs = turn.entropy || [];
    const mean = hs.length ? hs.reduce((a, b) => a + b, 0) / hs.length : NaN;
    const about = hs.length ? `, mean entropy ${mean.toFixed(3)} nats` : ', no entropies saved';
    box.appendChild(el('div', {class: 'label'}, `response: ${turn.tokens.length} tokens${about}`));
    const tokens = el('div', {class: 'tokens'});
    turn.tokens.forEach((tok, i) => {
      const h = hs[i];
      const title = `${JSON.stringify(tok)} · id ${turn.token_ids[i]}` +
        (h === undefined ? '' : ` · entropy ${h.toFixed(3)}`);
      const span = el('span', {class: 'tok', 'data-entropy': h === undefined ? '' : h, title}, tok);
      if (h !== undefined) span.style.backgroundColor = colour(h);
      tokens.appendChild(span);
    });
    box.appendChild(tokens);
    for (const call of turn.tool_calls || []) {
      box.appendChild(el('div', {class: 'label'}, 'tool call'));
      box.appendChild(el('pre', {class: 'tool-call'}, call));
    }
    for (const result of turn.tool_results || []) {
      box.appendChild(el('div', {class: 'label'}, 'tool result'));
      box.appendChild(el('pre', {class: 'tool-result'}, result));
    }
    const prompt = el('details', {});
    prompt.appendChild(el('summary', {}, 'full prompt'));
    prompt.appendChild(el('pre', {}, turn.prompt));
    box.appendChild(prompt);
    view.appendChild(box);
  }
}
fill($('run'), DATA.runs, (r) => `${r.label} (${r.saved_steps} steps saved)`);
$('run').onchange = onRun; $('step').onchange = onStep; $('traj').onchange = show;
$('scale').textContent = DATA.scale.toFixed(2);
if (DATA.runs.length) onRun();
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>agent-rl report: {title}</title>
<style>{style}</style></head>
<body>
<h1>agent-rl report: {title}</h1>
<h2>Runs</h2>
<table id="summary"><tr><th>run</th><th>folder</th><th>steps</th><th>last train success</th>
<th>best validation success</th><th>last return</th><th>last entropy</th><th>mean step time (s)</th></tr>
{summary}
</table>
{steps}
<h2>Plots</h2>
<div class="plots">
{plots}
</div>
<h2>Trajectories</h2>
<div id="controls">run <select id="run"></select> step <select id="step"></select>
trajectory <select id="traj"></select>
<span>token entropy: 0 <span class="legend"></span> <span id="scale"></span> nats</span></div>
<div id="viewer"><div id="trajectory"></div></div>
<script type="application/json" id="viewer-data">{data}</script>
<script>{script}</script>
</body></html>
"""
