"""Method state across a relaunch, end to end on the CPU: SPEAR (GRPO) and EPO (DAPO), each trained one step,
then resumed for a second. The run table is in test_train_cpu.py's docstring."""

from __future__ import annotations

import math

import pytest

from tests.e2e.checks import (
    NO_VALIDATION,
    assert_dapo_sampling,
    assert_finite,
)
from tests.e2e.conftest import run_agent_rl

pytestmark = pytest.mark.e2e


def test_spear_replays_and_its_buffer_survives_a_resume(tmp_path, ray_address):
    """SPEAR (GRPO, ALFWorld): step 1 stores its positive-advantage rows; the buffer is saved with the
    step-1 checkpoint; the resumed run replays them at step 2 (only possible if the buffer came back).
    Clip-Cov zeroes tokens, with the replay pass's own bounds."""
    import torch

    checkpoints = tmp_path / "checkpoints"
    common = (
        "method=spear",
        "logger=console",
        NO_VALIDATION,
        # Full (> 1.5 x capacity rows) after one tiny step, whatever the rewards: with the released
        # weight_decay_trajectory_replay every stored row counts (with the P50 recalibration only rows above
        # the baseline count, and the tiny model's rewards often all sit on it), and sampling at temperature
        # 1.3 makes invalid actions, so that groups have signal and positive-advantage rows to store
        # (at temperature 1 the tiny model's actions are ~95% valid: often every group is uniform).
        "method.replay_capacity=4",  # 4 rows replayed
        "method.replay_weight_decay=1.0",
        "actor_rollout_ref.rollout.temperature=1.3",
        "method.replay_warmup_steps=1",  # replay weight gamma_t = coef from step 1
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        # Clip-Cov bounds wide open, so that the share of zeroed tokens is the ratio: 0.5 on-policy, 0.25 in
        # the replay pass (the paper's ratios zero one token in ~5,000, too few to see in a tiny batch)
        "actor_rollout_ref.actor.policy_loss.clip_cov_ratio=0.5",
        "actor_rollout_ref.actor.policy_loss.clip_cov_lb=-1e9",
        "actor_rollout_ref.actor.policy_loss.clip_cov_ub=1e9",
        "method.replay_clip_cov.ratio=0.25",
        "method.replay_clip_cov.lb=-1e9",
        "method.replay_clip_cov.ub=1e9",
        f"trainer.default_local_dir={checkpoints}",
        "trainer.save_freq=1",
    )
    first = run_agent_rl(
        tmp_path / "first", *common, "trainer.total_training_steps=1", ray_address=ray_address
    )
    step1 = first["steps"][0]["data"]
    assert_finite(
        first, required=("method/spear/bonus_mean", "method/spear/stored_rows", "actor/pg_clipfrac")
    )
    assert step1["method/spear/bonus_mean"] > 0  # mu_1 * min(1, 0.1 * episode length)
    assert step1["method/spear/replay_rows"] == 0.0 and step1["method/spear/stored_rows"] > 6
    assert step1["actor/pg_clipfrac"] == pytest.approx(0.5, abs=0.05)  # Clip-Cov's zeroed tokens
    saved = torch.load(checkpoints / "global_step_1" / "method_state.pt", weights_only=False)
    assert saved["buffer"]["chunks"][0]["step"] == 1
    assert sum(len(c["rewards"]) for c in saved["buffer"]["chunks"]) == step1["method/spear/stored_rows"]

    second = run_agent_rl(
        tmp_path / "second", *common, "trainer.total_training_steps=2", ray_address=ray_address
    )
    assert [s["step"] for s in second["steps"]] == [2]
    step2 = second["steps"][0]["data"]
    assert step2["method/spear/replay_rows"] == 4.0
    assert 0.0 < step2["method/spear/replay_share"] < 1.0
    assert_finite(
        second, required=("method/spear/replay/actor/pg_loss", "method/spear/replay/actor/spear_weight")
    )
    assert step2["method/spear/replay/actor/spear_weight"] == pytest.approx(1.0)
    assert step2["method/spear/replay/actor/pg_clipfrac"] == pytest.approx(0.25, abs=0.05)  # replay bounds
    assert step2["actor/pg_clipfrac"] == pytest.approx(0.5, abs=0.05)


def test_epo_trains_on_dapo_and_its_history_survives_a_resume(tmp_path, ray_address):
    """EPO on DAPO (ALFWorld): EPO's loss runs on the live entropy, DAPO samples by its rule; EPO's entropy
    history is saved with the step-1 checkpoint and restored when training resumes, which then continues
    at step 2 with that history as reference.

    The resume is a relaunch of the same command (only the length differs: 1 step, then 2), as after a
    SLURM requeue: the run folder is agent-rl's own, outputs/<run_name>, which holds the checkpoints, so
    verl's resume_mode=auto finds them."""
    import json

    run_folder = tmp_path / "outputs" / "alfworld-dapo-epo-tiny-s0"
    checkpoints = run_folder / "checkpoints"
    common = ("algo=dapo", "method=epo", "logger=console", NO_VALIDATION, "trainer.save_freq=1")
    first = run_agent_rl(
        run_folder, *common, "trainer.total_training_steps=1", ray_address=ray_address, cwd=tmp_path
    )
    assert [s["step"] for s in first["steps"]] == [1]
    step1 = first["steps"][0]["data"]
    assert step1["method/epo/history_steps"] == 0.0 and step1["actor/epo/smoothing_active"] == 0.0
    # no history yet: R = -lambda * L_H; L_H is the hierarchical (trajectory, turn, token) mean of each
    # micro-batch, close to but not exactly the token mean that actor/epo/entropy reports
    assert step1["actor/epo_regularizer"] == pytest.approx(-0.001 * step1["actor/epo/entropy"], rel=0.02)
    assert step1["actor/epo_regularizer"] < 0
    assert_dapo_sampling(first, every_group_evicted=False)
    saved = json.loads((checkpoints / "global_step_1" / "method_state.json").read_text())
    assert saved["method"] == "epo" and len(saved["epo_history"]["step_means"]) == 1

    second = run_agent_rl(
        run_folder, *common, "trainer.total_training_steps=2", ray_address=ray_address, cwd=tmp_path
    )
    assert "resuming from step 1" in second["stdout"]
    assert [s["step"] for s in second["steps"]] == [2]  # resumed, not restarted
    # the first launch's metrics are kept beside the second's
    assert [
        json.loads(line)["step"] for line in (run_folder / "metrics.1.jsonl").read_text().splitlines()
    ] == [1]
    step2 = second["steps"][0]["data"]
    assert step2["method/epo/history_steps"] == 1.0
    assert step2["method/epo/reference_mean"] == pytest.approx(
        saved["epo_history"]["step_means"][0], rel=1e-6
    )
    assert step2["actor/epo/smoothing_active"] == 1.0
    assert step2["actor/epo/beta"] == pytest.approx(1.0 + math.exp(-3.0), rel=1e-6)  # k=1, K=2
    assert_finite(second)
    assert_dapo_sampling(second, every_group_evicted=False)
