"""`agent-rl-report RUN_DIR [RUN_DIR ...]`: plots of runs and a trajectory viewer, from their run folders.

    agent-rl-report outputs/alfworld-grpo-none-tiny-s0           # -> outputs/<run>/report/index.html
    agent-rl-report multirun/ -o sweep-report                    # a sweep's runs, overlaid
    agent-rl-report outputs/run-a outputs/run-b --max-steps 50

It reads each run's ``metrics.jsonl`` (with the earlier launches of a resumed run, ``metrics.N.jsonl``)
and its saved trajectories (``trajectories/step_N.json``, `agent_rl.training.trajectories`), and writes PNG
plots (`agent_rl.report.plots`), ``plots.json`` (the numbers each plot shows) and ``index.html``
(`agent_rl.report.page`). A folder that holds runs (a sweep's) stands for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent_rl.report.page import render
from agent_rl.report.plots import draw_all
from agent_rl.report.runs import NotARun, load_runs


def write_report(runs_given: list[str | Path], out: Path | None = None, max_steps: int = 20) -> Path:
    """Write the report of ``runs_given`` into ``out`` (default: ``<run>/report`` for one run, else
    ``./report``); returns the path of its index.html. Raises `NotARun`."""
    runs = load_runs(runs_given)
    out = Path(out) if out is not None else (runs[0].path / "report" if len(runs) == 1 else Path("report"))
    out.mkdir(parents=True, exist_ok=True)
    drawn = draw_all(runs, out)
    (out / "plots.json").write_text(json.dumps(drawn, indent=1))
    index = out / "index.html"
    index.write_text(render(runs, drawn, max_steps), encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="agent-rl-report", description="Plots and a trajectory viewer for agent-rl run folders."
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN_DIR", help="run folders (outputs/<run>) or a sweep folder"
    )
    parser.add_argument("-o", "--out", type=Path, help="report folder (default: RUN_DIR/report, or ./report)")
    parser.add_argument(
        "--max-steps", type=int, default=20, help="steps per run whose trajectories the viewer holds (20)"
    )
    args = parser.parse_args(argv)
    try:
        index = write_report(args.runs, args.out, args.max_steps)
    except NotARun as err:
        print(f"agent-rl-report: {err}", file=sys.stderr)
        sys.exit(2)
    plots = sorted(p.name for p in index.parent.glob("*.png"))
    print(f"agent-rl-report: {len(plots)} plots and the trajectory viewer in {index}")


if __name__ == "__main__":
    main()
