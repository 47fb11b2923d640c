#!/usr/bin/env python
"""Learning curves of one or more runs from their ``metrics.jsonl``: success, return and entropy per step.

One PNG with three panels; each run is one colour, validation (``val-aux/<env>/all/...``, solid, with
markers) beside training (``env/...``, dotted). Matplotlib, no display needed.

    python scripts/plot_learning.py RUN_DIR [RUN_DIR ...] --out curves.png [--title "method=none"]
    python scripts/plot_learning.py runs/grpo runs/dapo --label GRPO --label DAPO --out none.png
    python scripts/plot_learning.py runs/* --table          # validation success at start and end

A run folder is agent-rl's output folder (``outputs/<run_name>``), or the metrics file itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# (panel title, training key, validation key suffix after val-aux/<env>/all/)
PANELS = (
    ("success rate", "env/success_rate", "won/mean@1"),
    ("episode return", "env/return/mean", "episode_return/mean@1"),
    ("token entropy", "actor/entropy", None),
)


def read_metrics(path: str | Path) -> list[dict]:
    """The ``{"step": ..., "data": {...}}`` lines of a run's ``metrics.jsonl`` (earlier launches first)."""
    path = Path(path)
    files = [path] if path.is_file() else [*sorted(path.glob("metrics.*.jsonl")), path / "metrics.jsonl"]
    rows = []
    for file in files:
        if file.exists():
            rows += [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{path}: no metrics.jsonl with any step (is it an agent-rl run folder?)")
    return rows


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of ``key``; a key starting with ``val-aux/*/`` matches any environment."""
    steps, values = [], []
    for row in rows:
        data = row["data"]
        if key.startswith("val-aux/*/"):
            suffix = key.split("*/", 1)[1]
            found = [v for k, v in data.items() if k.startswith("val-aux/") and k.endswith(suffix)]
            value = found[0] if found else None
        else:
            value = data.get(key)
        if isinstance(value, int | float):
            steps.append(int(row["step"]))
            values.append(float(value))
    return steps, values


def plot(runs: list[Path], labels: list[str], out: Path, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4), constrained_layout=True)
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        rows = read_metrics(run)
        colour = f"C{i}"
        for ax, (name, train_key, val_suffix) in zip(axes, PANELS, strict=True):
            steps, values = series(rows, train_key)
            ax.plot(steps, values, ":", color=colour, label=f"{label} train" if val_suffix else label)
            if val_suffix:
                steps, values = series(rows, f"val-aux/*/all/{val_suffix}")
                ax.plot(steps, values, "-o", color=colour, markersize=4, label=f"{label} validation")
            ax.set_title(name)
            ax.set_xlabel("training step")
            ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.03, 1.03)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def start_end(rows: list[dict]) -> tuple[float, float, float]:
    """Validation success before training, after the last step, and its best."""
    _, values = series(rows, "val-aux/*/all/won/mean@1")
    if not values:
        raise SystemExit("no validation success in the run (trainer.test_freq, trainer.val_before_train)")
    return values[0], values[-1], max(values)


def table(runs: list[Path], labels: list[str]) -> str:
    """Markdown: per run, validation success at the start, the end and its best, and the steps trained."""
    lines = ["| run | steps | start | end | best |", "|---|---|---|---|---|"]
    for run, label in zip(runs, labels, strict=True):
        rows = read_metrics(run)
        start, end, best = start_end(rows)
        steps = max(int(r["step"]) for r in rows)
        lines.append(f"| {label} | {steps} | {start:.0%} | {end:.0%} | {best:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or metrics.jsonl files)")
    parser.add_argument("--out", type=Path, help="the PNG to write")
    parser.add_argument("--table", action="store_true", help="print start/end validation success (markdown)")
    parser.add_argument("--label", action="append", default=[], help="one per run (default: folder names)")
    parser.add_argument("--title")
    args = parser.parse_args(argv)
    labels = args.label or [run.name if run.is_dir() else run.parent.name for run in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"{len(args.runs)} runs but {len(labels)} --label values")
    if args.table:
        print(table(args.runs, labels))
    if args.out:
        print(plot(args.runs, labels, args.out, args.title))
    elif not args.table:
        parser.error("give --out PNG, --table, or both")


if __name__ == "__main__":
    main()
