"""End-to-end runs of `agent-rl` on the CPU share one Ray cluster per test module.

The cluster is started once (`ray start --head`, with the logical GPU the CPU platform schedules on) and
every run joins it with `++ray_kwargs.ray_init.address=...`, instead of each run starting its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def stop_cluster(temp_dir: Path) -> None:
    """Stop the processes of the cluster living in ``temp_dir`` only (`ray stop` would stop every Ray on
    the machine): each of them names its session folder, under ``temp_dir``, on its command line."""
    import psutil

    procs = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(temp_dir) in arg for arg in proc.info["cmdline"] or ()):
            procs.append(proc)
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=5)  # some never answer SIGTERM; don't wait long for them
    for proc in alive:
        proc.kill()


@pytest.fixture(scope="module")
def ray_address():
    # one cluster per module and test process: under pytest-xdist two modules' clusters run at once, and
    # stop_cluster finds a cluster's processes by this folder
    temp_dir = Path(os.environ["RAY_TMPDIR"]) / f"e2e-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    temp_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    start = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            "--num-cpus=16",
            "--num-gpus=1",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir}",
            "--port=0",
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert start.returncode == 0, start.stderr[-3000:]
    address = next(line.split("'")[1] for line in start.stdout.splitlines() if "ray start --address=" in line)
    try:
        yield address
    finally:
        stop_cluster(temp_dir)
        for marker in (temp_dir / "ray_current_cluster", temp_dir.parent / "ray_current_cluster"):
            marker.unlink(missing_ok=True)  # a later plain ray.init() would look for this cluster


def run_agent_rl(
    out: Path,
    *overrides: str,
    ray_address: str | None = None,
    timeout: int = 1200,
    module: str = "agent_rl.cli.train",
    cwd: Path | None = None,
) -> dict:
    """Run `agent-rl` (or another entry point of ours, e.g. ``agent_rl.cli.evaluate``) into ``out``; return
    its stdout, stderr and the per-step metrics it logged. With ``cwd``, the run folder is agent-rl's own
    (``outputs/<run_name>`` under ``cwd``), and ``out`` says where that is."""
    env = dict(os.environ)
    env.pop("WANDB_API_KEY", None)
    env.pop("WANDB_MODE", None)  # agent-rl itself must choose offline when there is no key
    flags = [o for o in overrides if o.startswith("--")]  # Hydra's options (--config-dir) precede overrides
    overrides = tuple(o for o in overrides if not o.startswith("--"))
    cmd = [sys.executable, "-m", module, *flags, *([] if cwd else [f"hydra.run.dir={out}"]), *overrides]
    if ray_address:
        cmd.append(f"++ray_kwargs.ray_init.address={ray_address}")
    proc = subprocess.run(cmd, cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"out": out, "stdout": proc.stdout, "stderr": proc.stderr, "steps": steps}


def run_agent_rl_multirun(
    sweep: Path, *overrides: str, ray_address: str | None = None, timeout: int = 2400
) -> list[dict]:
    """`agent-rl -m ...` into ``sweep``; one dict (out, steps) per job, in job order."""
    env = dict(os.environ)
    env.pop("WANDB_API_KEY", None)
    env.pop("WANDB_MODE", None)
    cmd = [sys.executable, "-m", "agent_rl.cli.train", "-m", f"hydra.sweep.dir={sweep}", *overrides]
    if ray_address:
        cmd.append(f"++ray_kwargs.ray_init.address={ray_address}")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    jobs = sorted((p for p in sweep.iterdir() if (p / "metrics.jsonl").exists()), key=lambda p: p.name)
    return [
        {"out": job, "steps": [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]}
        for job in jobs
    ]
