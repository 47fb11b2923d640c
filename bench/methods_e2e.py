#!/usr/bin/env python
"""Training-step time of each entropy method against ``method=none``, end to end on the CPU.

Each method trains the tiny model on the same environment with the same seed for ``--steps`` steps
(``agent-rl`` as a user runs it, W&B off). Step 1 carries vLLM's start-up and is dropped; the median of
the remaining ``timing_s/step`` is the method's step time. ``none`` runs first and last, so that drift in
the machine's load shows up as a difference between the two baselines; the ratio uses their mean.

The methods act in two phases, so those are reported too: ``adv`` (the advantage step, where EMPG and AEM
transform and SPEAR adds its bonus) and ``update_actor`` (where EPO's loss and SPEAR's replay pass run).
Generation dominates a step and its length varies with what the policy writes (after step 1 each method
has its own policy, so its own rollouts), so step ratios are noisy at this size; the update time per
1,000 tokens of the batch and the advantage time are the cleaner signals of a method's own cost.

A variant with ``=`` is a set of overrides in place of a method name (``algo=gigpo``: GiGPO against GRPO
with no method; ``"algo=gigpo method=empg"``), so a base algorithm is measured the same way.

Target (issue 6): at most 1.15x for EMPG, AEM and EPO.

    python bench/methods_e2e.py                      # alfworld, 4 steps, every method and GiGPO
    python bench/methods_e2e.py --methods empg --steps 6
    python bench/methods_e2e.py --methods algo=gigpo "algo=gigpo method=empg"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("timing_s/step", "timing_s/adv", "timing_s/update_actor", "timing_s/gen", "perf/total_num_tokens")


def run(method: str, env: str, steps: int, out: Path, extra: list[str]) -> dict[str, float]:
    """Train with ``method`` (a method name, or overrides such as ``algo=gigpo``); return the median of
    each phase over steps 2..N."""
    cmd = [
        sys.executable,
        "-m",
        "agent_rl.cli.train",
        f"hydra.run.dir={out}",
        *(method.split() if "=" in method else [f"method={method}"]),
        f"env={env}",
        "logger=console",
        f"trainer.total_training_steps={steps}",
        "trainer.test_freq=-1",
        "trainer.val_before_train=false",
        "trainer.save_freq=-1",
        *extra,
    ]
    env_vars = {**os.environ, "RAY_AUTH_MODE": "disabled", "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, cwd=REPO, env=env_vars, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"method={method} failed:\n{proc.stderr[-4000:]}")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    steps_data = [json.loads(line)["data"] for line in lines][1:]
    return {p: statistics.median(d[p] for d in steps_data) for p in PHASES if all(p in d for d in steps_data)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", nargs="+", default=["empg", "aem", "epo", "spear", "algo=gigpo"])
    parser.add_argument("--env", default="alfworld")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("overrides", nargs="*", help="extra agent-rl overrides for every run")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-methods-") as tmp:
        order = ["none", *args.methods, "none"]
        for i, method in enumerate(order):
            key = method if method != "none" else f"none#{1 if i == 0 else 2}"
            results[key] = run(method, args.env, args.steps, Path(tmp) / f"run{i}", args.overrides)
            print(f"{key:16s}", {k.split("/")[-1]: round(v, 2) for k, v in results[key].items()}, flush=True)

    base = {p: (results["none#1"][p] + results["none#2"][p]) / 2 for p in results["none#1"]}
    print(f"\nenv={args.env}, steps 2..{args.steps} (median), baseline = mean of the two none runs")
    drift = results["none#2"]["timing_s/step"] / results["none#1"]["timing_s/step"]
    print(f"baseline drift (none#2 / none#1 step time): {drift:.2f}")
    header = ("method", "step s", "ratio", "adv s", "update s", "update ms/ktok", "ratio", "gen s")
    print("{:16s} {:>7s} {:>6s} {:>7s} {:>9s} {:>14s} {:>6s} {:>7s}".format(*header))

    def per_ktok(r: dict[str, float]) -> float:
        return 1e6 * r["timing_s/update_actor"] / r["perf/total_num_tokens"]

    base_ktok = (per_ktok(results["none#1"]) + per_ktok(results["none#2"])) / 2
    for method in ["none#1", "none#2", *args.methods]:
        r = results[method]
        print(
            f"{method:16s} {r['timing_s/step']:7.2f} {r['timing_s/step'] / base['timing_s/step']:6.2f} "
            f"{r.get('timing_s/adv', float('nan')):7.3f} {r['timing_s/update_actor']:9.2f} "
            f"{per_ktok(r):14.1f} {per_ktok(r) / base_ktok:6.2f} {r['timing_s/gen']:7.2f}"
        )


if __name__ == "__main__":
    main()
