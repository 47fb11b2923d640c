#!/usr/bin/env python
"""Wall time to learn: training time until validation success first reaches a level, per method, against
``method=none``, end to end on the CPU with the laptop recipe (conf/experiment/laptop/).

Each method trains the tiny model (its FrozenLake lesson) with the same seed for ``--steps`` steps,
validating before training and every ``--test-freq`` steps (``agent-rl`` as a user runs it, W&B off). The
time to the level is the sum of ``timing_s/step`` of the steps up to the first validation at or above
``--level``, less the validations' own time (``timing_s/testing``): training time, not measurement time.
``none`` runs first and last, so that drift in the machine's load shows up as a difference between the
two baselines; the ratio uses their mean. A method that never reaches the level within the steps is
reported as such (its ratio is "> x", the steps it trained against the baseline's time).

    python bench/learning.py                                  # GRPO, every method, level 0.3
    python bench/learning.py --algo dapo --methods empg --level 0.4
    python bench/learning.py --algo dapo --keep outputs/bench-dapo   # keep the runs (for plots and tables)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VAL_KEY = "val-aux/frozenlake/all/won/mean@1"


def run(method: str, algo: str, steps: int, test_freq: int, out: Path, extra: list[str]) -> list[dict]:
    """Train with ``method``; return its metrics.jsonl rows."""
    cmd = [
        sys.executable,
        "-m",
        "agent_rl.cli.train",
        f"hydra.run.dir={out}",
        f"experiment=laptop/frozenlake-{algo}",
        f"method={method}",
        "logger=console",
        f"trainer.total_training_steps={steps}",
        f"trainer.test_freq={test_freq}",
        *extra,
    ]
    env_vars = {**os.environ, "RAY_AUTH_MODE": "disabled", "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, cwd=REPO, env=env_vars, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"method={method} failed:\n{proc.stderr[-4000:]}")
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def time_to_level(rows: list[dict], level: float) -> tuple[float | None, float, list[tuple[int, float]]]:
    """(training seconds until validation success >= level or None, seconds trained in all, the curve)."""
    elapsed, reached = 0.0, None
    curve = []
    for row in sorted(rows, key=lambda r: r["step"]):
        data = row["data"]
        elapsed += float(data.get("timing_s/step", 0.0)) - float(data.get("timing_s/testing", 0.0))
        if VAL_KEY in data:
            curve.append((int(row["step"]), float(data[VAL_KEY])))
            if reached is None and data[VAL_KEY] >= level:
                reached = elapsed
    return reached, elapsed, curve


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", nargs="+", default=["empg", "aem", "epo", "spear"])
    parser.add_argument("--algo", default="grpo", choices=["grpo", "dapo"])
    parser.add_argument("--level", type=float, default=0.3, help="validation success to reach")
    parser.add_argument("--steps", type=int, default=9)
    parser.add_argument("--test-freq", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*", help="extra agent-rl overrides for every run")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp:
        tmp = args.keep or tmp
        order = ["none", *args.methods, "none"]
        for i, method in enumerate(order):
            key = method if method != "none" else f"none#{1 if i == 0 else 2}"
            rows = run(
                method, args.algo, args.steps, args.test_freq, Path(tmp) / f"{i}-{method}", args.overrides
            )
            results[key] = time_to_level(rows, args.level)
            reached, total, curve = results[key]
            shown = "not reached" if reached is None else f"{reached:.0f} s"
            print(
                f"{key:8s} to {args.level:.0%}: {shown} (trained {total:.0f} s); validation {curve}",
                flush=True,
            )

    base_times = [results[k][0] for k in ("none#1", "none#2") if results[k][0] is not None]
    print(
        f"\nalgo={args.algo}, level {args.level:.0%}, {args.steps} steps, validation every {args.test_freq}"
    )
    if not base_times:
        print("method=none never reached the level: no baseline (lower --level or train more --steps)")
        return
    base = sum(base_times) / len(base_times)
    print(f"baseline (method=none, mean of {len(base_times)} runs): {base:.0f} s")
    for method in args.methods:
        reached, total, _ = results[method]
        ratio = f"{reached / base:.2f}" if reached is not None else f"> {total / base:.2f} (not reached)"
        print(f"{method:8s} time-to-{args.level:.0%} ratio vs none: {ratio}")


if __name__ == "__main__":
    main()
