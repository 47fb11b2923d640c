#!/usr/bin/env python
"""Start-up of `agent-rl` on the CPU: seconds from launch to the first generation and to the end of step 1,
beside verl's own entry point started on the same tiny model, config and CPU platform.

Three one-step runs, one after the other, each a fresh process (and a fresh local Ray) as a user starts it:

1. ``agent-rl`` as `make demo` starts it (ALFWorld, GRPO, the tiny model, W&B offline), one step: the
   trainer logs ``startup/first_generation_s`` (the agent loop's earliest generation) and
   ``startup/first_step_end_s``, which the console's end summary prints.
2. ``agent-rl env=arith`` (verl's single-turn agent loop, our trainer), one step;
3. ``python -m verl.trainer.main_ppo`` on the config run 2 resolved (``dry_run=true`` writes it: the same
   tiny model, data, CPU platform and worker layout), verl's own TaskRunner and trainer.

For runs 2 and 3 the bench reads each the same way from outside: launch -> the step-1 line of
``metrics.jsonl`` (end of step 1), minus that step's ``timing_s/step`` (start of step 1). The ratio
``agent-rl / verl`` of those is the cost of agent_rl's own start-up (config checks, model and data
preparation, the environment check, its trainer and console) over verl's.

    python bench/startup.py                 # all three
    python bench/startup.py --skip-default  # only the agent-rl vs verl pair

Numbers depend on the machine and its load; compare runs made in one invocation only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from ray_timeline import drivers, timeline  # noqa: E402

ONE_STEP = ("trainer.total_training_steps=1", "trainer.test_freq=-1", "trainer.save_freq=-1")
# The start-up's phases, each by the Ray actor whose process starts it (scripts/ray_timeline.py).
PHASES = (
    ("TaskRunner", "TaskRunner"),
    ("TransferQueue", "TransferQueueController"),
    ("FSDP worker", "WorkerDict"),
    ("reward worker", "RewardLoopWorker"),
    ("vLLM server", "vLLMHttpServer"),
    ("load balancer (vLLM ready)", "GlobalRequestLoadBalancer"),
    ("agent-loop worker", "AgentLoopWorkerTQ"),
)


def phases(ray_tmp: Path, launched: float) -> dict[str, float]:
    """Seconds after launch at which the driver joined Ray and each phase's actor started (the
    environments': the first of their actors, which the trainer starts ahead of the first rollout)."""
    sessions = [*ray_tmp.glob("session_latest"), *ray_tmp.glob("*/session_latest")]  # verl's: <tmp>/ray/
    logs = sessions[0] / "logs" if sessions else ray_tmp
    joined = drivers(logs)
    if not joined:
        return {}
    (job, (connected, _)), *_ = joined.items()
    origin = connected.timestamp() - launched
    rows = timeline(logs)[job]
    out = {"Ray connected (config, checks, model, data, Ray start)": origin}
    for label, actor in PHASES:
        starts = [start for name, start, _ in rows if name == actor]
        if starts:
            out[label] = origin + min(starts)
    envs = [origin + start for name, start, _ in rows if name == "_EnvActor"]
    if envs:
        out["environments"] = min(envs)
    return out


def _env(metrics: Path, launched: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "WANDB_MODE")}
    env.update(
        RAY_AUTH_MODE="disabled",
        VERL_FILE_LOGGER_PATH=str(metrics),
        AGENT_RL_LAUNCH_TIME=f"{launched:.3f}",
    )
    return env


def timed(cmd: list[str], metrics: Path, log: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``cmd``; return the seconds from launch to the start and end of step 1 (from ``metrics``), the
    process's total, and the trainer's own startup/* metrics where it logged them."""
    launched = time.time()
    ray_tmp = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))  # short: Ray's socket paths are capped
    env = {**_env(metrics, launched), "RAY_TMPDIR": str(ray_tmp), **(env or {})}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        step1_seen = None
        while proc.poll() is None:
            if step1_seen is None and metrics.exists() and metrics.read_text().strip():
                step1_seen = time.time()
            time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed (rc {proc.returncode}); see {log}")
    total = time.time() - launched
    first = json.loads(metrics.read_text().splitlines()[0])
    data = first["data"]
    step1_end = (step1_seen or time.time()) - launched
    result = {
        "step1_start_s": step1_end - float(data["timing_s/step"]),
        "step1_end_s": step1_end,
        "total_s": total,
    }
    result.update({k.split("/", 1)[1]: float(v) for k, v in data.items() if k.startswith("startup/")})
    result["phases"] = phases(ray_tmp, launched)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    return result


def agent_rl(out: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "agent_rl.cli.train", f"hydra.run.dir={out}", *overrides]


def verl_config(out: Path, *overrides: str) -> Path:
    """The config `agent-rl <overrides>` would train with, resolved (a dry run), as a file verl's own
    entry point reads: everything of agent_rl's own nodes stays, verl ignores them."""
    subprocess.run(
        agent_rl(out, *overrides, "dry_run=true"),
        cwd=REPO,
        env=_env(out / "unused.jsonl", time.time()),
        check=True,
        capture_output=True,
    )
    cfg = yaml.safe_load((out / "resolved_config.yaml").read_text())
    cfg["trainer"]["default_local_dir"] = str(out / "checkpoints")
    path = out / "verl_main_ppo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-default", action="store_true", help="only agent-rl env=arith against verl")
    parser.add_argument("--keep", type=Path, help="keep the runs' folders here")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-startup-"))
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}

    if not args.skip_default:
        out = root / "default"
        results["agent-rl (default: ALFWorld)"] = timed(
            agent_rl(out, *ONE_STEP), out / "metrics.jsonl", root / "default.log"
        )
    arith = ("env=arith", "logger=console", *ONE_STEP)
    out = root / "arith"
    results["agent-rl env=arith"] = timed(agent_rl(out, *arith), out / "metrics.jsonl", root / "arith.log")
    cfg_dir = root / "verl"
    cfg_dir.mkdir(exist_ok=True)
    config = verl_config(cfg_dir, *arith)
    verl_cmd = [
        sys.executable,
        "-m",
        "verl.trainer.main_ppo",
        f"--config-path={config.parent}",
        f"--config-name={config.stem}",
        f"hydra.run.dir={cfg_dir}",
    ]
    # the CPU platform, as agent-rl sets it for cluster=cpu
    results["verl main_ppo (same config)"] = timed(
        verl_cmd, cfg_dir / "metrics.jsonl", root / "verl.log", env={"VERL_PLATFORM": "cpu"}
    )

    (root / "results.json").write_text(json.dumps(results, indent=1))
    print(f"runs in {root}")
    print("| run | first generation s | step 1 starts s | step 1 ends s | process s |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        first = f"{r['first_generation_s']:.1f}" if "first_generation_s" in r else "-"
        start, end, total = r["step1_start_s"], r["step1_end_s"], r["total_s"]
        print(f"| {name} | {first} | {start:.1f} | {end:.1f} | {total:.1f} |")
    print("\nphases: seconds after launch at which each starts")
    names = list(results)
    print("| phase | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    labels = list(dict.fromkeys(label for r in results.values() for label in r["phases"]))
    for label in labels:
        cells = [f"{r['phases'][label]:.1f}" if label in r["phases"] else "-" for r in results.values()]
        print(f"| {label} | " + " | ".join(cells) + " |")
    for key, label in (("first_generation_s", "first generation"), ("step1_start_s", "step 1 starts")):
        cells = [f"{r[key]:.1f}" if key in r else "-" for r in results.values()]
        print(f"| {label} | " + " | ".join(cells) + " |")
    ours, verl = results["agent-rl env=arith"], results["verl main_ppo (same config)"]
    starts = ours["step1_start_s"] / verl["step1_start_s"]
    ends = ours["step1_end_s"] / verl["step1_end_s"]
    print(f"ratio agent-rl / verl (env=arith, same config): step 1 starts {starts:.2f}, ends {ends:.2f}")


if __name__ == "__main__":
    main()
