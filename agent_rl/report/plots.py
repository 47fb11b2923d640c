"""The report's PNG plots (matplotlib), one figure per question, every run overlaid in its own colour.

Each function draws one figure into ``out`` and returns what it drew, ``{run label: {series: [[x, y],
...]}}`` (the page writes it to ``plots.json`` beside the images), or None when no run has the data.
matplotlib's object API (`Figure`) is used without pyplot: no global state, no display needed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from agent_rl.cli.console import validation_success
from agent_rl.report.runs import Run

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
Drawn = dict[str, dict[str, list[list[float]]]]


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def _points(xs: list[int], ys: list[float]) -> list[list[float]]:
    return [[x, y] for x, y in zip(xs, ys, strict=True)]


def _save(fig: Figure, out: Path, name: str) -> Path:
    for ax in fig.axes:
        if ax.get_label() != "<colorbar>":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _axes(title: str, ylabel: str, size=(7.0, 4.0)):
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    ax.set_title(title)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def validation(run: Run, task_type: str | None = None) -> tuple[list[int], list[float]]:
    """Validation success per validated step: the whole environment, or one task type's."""
    xs, ys = [], []
    for step in sorted(run.steps):
        data = run.steps[step]
        if task_type is None:
            value = validation_success(data)
        else:
            pattern = re.compile(rf"^val-aux/[^/]+/{re.escape(task_type)}/won/mean@\d+$")
            value = next((float(v) for k, v in data.items() if pattern.match(k)), None)
        if value is not None:
            xs.append(step)
            ys.append(value)
    return xs, ys


def success(runs: list[Run], out: Path) -> Drawn | None:
    fig, ax = _axes("Success rate", "success")
    drawn: Drawn = {}
    for i, run in enumerate(runs):
        xs, ys = run.series("env/success_rate")
        vx, vy = validation(run)
        if xs:
            ax.plot(xs, ys, color=color(i), marker=".", label=f"{run.label} (train)")
        if vx:
            ax.plot(vx, vy, color=color(i), ls="--", marker="o", label=f"{run.label} (validation)")
        if xs or vx:
            drawn[run.label] = {"train": _points(xs, ys), "validation": _points(vx, vy)}
    if not drawn:
        return None
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8)
    _save(fig, out, "success")
    return drawn


def task_types(run: Run) -> list[str]:
    train = {k.split("/", 2)[2] for k in run.keys("env/success_rate/")}
    val = {k.split("/")[2] for k in run.keys("val-aux/") if re.match(r"^val-aux/[^/]+/[^/]+/won/mean@", k)}
    return sorted((train | val) - {"all"})


def success_by_task(runs: list[Run], out: Path) -> Drawn | None:
    types = sorted({t for run in runs for t in task_types(run)})
    if not types:
        return None
    cols = min(3, len(types))
    rows = math.ceil(len(types) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True).ravel()
    drawn: Drawn = {}
    for ax, task_type in zip(axes, types, strict=False):
        ax.set_title(task_type, fontsize=9)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        for i, run in enumerate(runs):
            xs, ys = run.series(f"env/success_rate/{task_type}")
            vx, vy = validation(run, task_type)
            ax.plot(xs, ys, color=color(i), marker=".", label=f"{run.label} (train)")
            ax.plot(vx, vy, color=color(i), ls="--", marker="o", label=f"{run.label} (validation)")
            series = drawn.setdefault(run.label, {})
            series[f"{task_type}/train"], series[f"{task_type}/validation"] = _points(xs, ys), _points(vx, vy)
    for ax in axes[len(types) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle("Success rate per task type (solid: train, dashed: validation)")
    fig.supxlabel("training step")
    _save(fig, out, "success_by_task")
    return drawn


def _lines(
    runs: list[Run], out: Path, name: str, title: str, ylabel: str, keys: tuple[str, ...]
) -> Drawn | None:
    """One line per run: the first of ``keys`` that the run logged."""
    fig, ax = _axes(title, ylabel)
    drawn: Drawn = {}
    for i, run in enumerate(runs):
        for key in keys:
            xs, ys = run.series(key)
            if xs:
                ax.plot(xs, ys, color=color(i), marker=".", label=f"{run.label} ({key})")
                drawn[run.label] = {key: _points(xs, ys)}
                break
    if not drawn:
        return None
    ax.legend(fontsize=8)
    _save(fig, out, name)
    return drawn


def returns(runs: list[Run], out: Path) -> Drawn | None:
    return _lines(
        runs, out, "return", "Mean trajectory return", "return", ("env/return/mean", "critic/score/mean")
    )


def episode_length(runs: list[Run], out: Path) -> Drawn | None:
    drawn = _lines(runs, out, "episode_length", "Episode length", "steps", ("env/episode_length/mean",))
    return drawn


def entropy(runs: list[Run], out: Path) -> Drawn | None:
    return _lines(runs, out, "entropy", "Mean token entropy (old policy)", "nats", ("actor/entropy",))


def entropy_by_turn(run: Run) -> tuple[list[int], list[int], list[list[float]]]:
    """steps, turns and the turn x step matrix of ``entropy_by_turn/<t>`` (NaN where not logged)."""
    turns = sorted({int(k.split("/")[1]) for k in run.keys("entropy_by_turn/")})
    steps = [s for s in sorted(run.steps) if any(k.startswith("entropy_by_turn/") for k in run.steps[s])]
    matrix = [[float(run.steps[s].get(f"entropy_by_turn/{t}", math.nan)) for s in steps] for t in turns]
    return steps, turns, matrix


def entropy_heatmap(runs: list[Run], out: Path) -> Drawn | None:
    with_data = [(run, *entropy_by_turn(run)) for run in runs]
    with_data = [d for d in with_data if d[1]]
    if not with_data:
        return None
    fig = Figure(figsize=(7.0, 2.2 + 2.4 * len(with_data)), layout="constrained")
    axes = fig.subplots(len(with_data), 1, squeeze=False).ravel()
    values = [v for _, _, _, m in with_data for row in m for v in row if not math.isnan(v)]
    vmin, vmax = min(values), max(values)
    drawn: Drawn = {}
    for ax, (run, steps, turns, matrix) in zip(axes, with_data, strict=True):
        image = ax.imshow(
            matrix,
            aspect="auto",
            origin="lower",
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
            extent=(steps[0] - 0.5, steps[-1] + 0.5, turns[0] - 0.5, turns[-1] + 0.5),
        )
        ax.set_title(run.label, fontsize=9)
        ax.set_ylabel("turn")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.colorbar(image, ax=ax, label="nats")
        drawn[run.label] = {f"turn {t}": _points(steps, row) for t, row in zip(turns, matrix, strict=True)}
    axes[-1].set_xlabel("training step")
    fig.suptitle("Mean token entropy by turn and step")
    _save(fig, out, "entropy_heatmap")
    return drawn


# timing_s/<phase> inside verl's step timer, in the order a step runs them; testing comes after the step
PHASES = ("gen", "old_log_prob", "ref", "values", "adv", "update_critic", "update_actor", "update_weights")


def timing(runs: list[Run], out: Path) -> Drawn | None:
    with_data = [run for run in runs if run.series("timing_s/step")[0]]
    if not with_data:
        return None
    fig = Figure(figsize=(7.0, 1.6 + 2.8 * len(with_data)), layout="constrained")
    axes = fig.subplots(len(with_data), 1, squeeze=False).ravel()
    drawn: Drawn = {}
    for ax, run in zip(axes, with_data, strict=True):
        steps, totals = run.series("timing_s/step")
        known = [p for p in PHASES if f"timing_s/{p}" in run.keys("timing_s/")]
        extra = [k.split("/", 1)[1] for k in run.keys("timing_s/")]
        extra = [p for p in extra if p not in PHASES and p not in ("step", "testing")]
        bottom = [0.0] * len(steps)
        series: dict[str, list[list[float]]] = {}
        for j, phase in enumerate([*known, *extra]):
            ys = [float(run.steps[s].get(f"timing_s/{phase}", 0.0)) for s in steps]
            ax.bar(steps, ys, bottom=bottom, color=color(j), label=phase)
            bottom = [b + y for b, y in zip(bottom, ys, strict=True)]
            series[phase] = _points(steps, ys)
        other = [max(t - b, 0.0) for t, b in zip(totals, bottom, strict=True)]
        ax.bar(steps, other, bottom=bottom, color="#cccccc", label="other")
        bottom = [b + y for b, y in zip(bottom, other, strict=True)]
        testing = [float(run.steps[s].get("timing_s/testing", 0.0)) for s in steps]
        if any(testing):
            ax.bar(steps, testing, bottom=bottom, color="#444444", label="validation")
            series["testing"] = _points(steps, testing)
        series["other"], series["step"] = _points(steps, other), _points(steps, totals)
        drawn[run.label] = series
        ax.set_title(run.label, fontsize=9)
        ax.set_ylabel("seconds")
        ax.legend(fontsize=7, ncol=3)
    axes[-1].set_xlabel("training step")
    fig.suptitle("Time per step by phase")
    _save(fig, out, "timing")
    return drawn


# name -> (function, caption), in the page's order
PLOTS: dict[str, tuple[Any, str]] = {
    "success": (success, "Success rate: training episodes (solid) and validation (dashed)"),
    "success_by_task": (success_by_task, "Success rate per task type"),
    "return": (returns, "Mean trajectory return (episode return minus invalid-action penalties)"),
    "episode_length": (episode_length, "Mean episode length (environment steps)"),
    "entropy": (entropy, "Mean token entropy of the responses (old policy)"),
    "entropy_heatmap": (entropy_heatmap, "Mean token entropy by turn (rows) and training step (columns)"),
    "timing": (timing, "Time per step by phase"),
}


def draw_all(runs: list[Run], out: Path) -> dict[str, Drawn]:
    """Every plot that has data; ``{plot name: what it drew}``."""
    drawn = {}
    for name, (draw, _) in PLOTS.items():
        result = draw(runs, out)
        if result is not None:
            drawn[name] = result
    return drawn
