"""What the end-to-end runs check, shared by the e2e modules: finite metrics, parameters that moved, one
training row per environment step, DAPO's sampling rule, GiGPO's anchors; and the overrides they share."""

from __future__ import annotations

import math

import pytest

CHECKPOINT_HF = "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]"
# Runs that check neither validation nor checkpoints skip them (verl validates and saves after the last
# step by default); CI time is the budget here.
NO_VALIDATION = "trainer.test_freq=-1"
NO_EXTRAS = (NO_VALIDATION, "trainer.save_freq=-1")
# Without the invalid-action penalty every step row of the tiny model scores 0 (it never wins), so every
# group is without signal and DAPO must evict it.
NO_PENALTY = "env.invalid_action_penalty=0"


def assert_finite(run, required=()):
    assert run["steps"]
    for step in run["steps"]:
        numbers = {k: v for k, v in step["data"].items() if isinstance(v, int | float)}
        bad = {k: v for k, v in numbers.items() if not math.isfinite(v)}
        assert not bad, bad
        missing = [k for k in required if k not in numbers]
        assert not missing, missing


def assert_parameters_changed(run, step=2):
    from safetensors.torch import load_file

    from agent_rl.models.tiny_model import build_tiny_model

    before = load_file(build_tiny_model() / "model.safetensors")
    after = load_file(
        run["out"] / "checkpoints" / f"global_step_{step}" / "actor" / "huggingface" / "model.safetensors"
    )
    assert before.keys() == after.keys()
    changed = [name for name in before if not (before[name] == after[name]).all()]
    assert len(changed) >= 0.9 * len(before), f"only {len(changed)}/{len(before)} tensors changed"
    assert all(after[name].isfinite().all() for name in after)


def assert_per_step_samples(run, max_steps=4, trajectories=16, rows="step"):
    for step in run["steps"]:
        data = step["data"]
        assert data["env/trajectories"] == trajectories  # 4 tasks x rollout.n 4
        assert 1 <= data["env/episode_length/mean"] <= max_steps
        # one training row per environment step (agent.rows=step), or per episode (trajectory)
        per_trajectory = data["env/episode_length/mean"] if rows == "step" else 1.0
        assert data["env/steps_per_trajectory"] == pytest.approx(per_trajectory)
        assert 0.0 <= data["env/success_rate"] <= 1.0 and 0.0 <= data["env/valid_action_ratio"] <= 1.0


def assert_dapo_sampling(run, every_group_evicted: bool):
    """Dynamic sampling refills 2 prompts per evicted group (verl's sync rule) and stops filtering for the
    step once one batch (4 prompts) has been refilled (model=tiny sets max_num_gen_batches=1).

    ``every_group_evicted``: the run has no invalid-action penalty, so every group is evicted and the bound
    is always reached. With the penalty, a group keeps its signal when its rows' scores differ (step_rows
    statistics), and the rule is checked as it falls out."""
    for step in run["steps"]:
        data = step["data"]
        refilled = data["training/filter_groups/refill_prompts"]
        evicted = data.get("training/filter_groups/evicted_samples", 0)
        assert refilled <= 2 * evicted
        assert data["training/filter_groups/bound_reached"] == float(refilled >= 4)
        if every_group_evicted:
            assert refilled >= 4 and data["training/filter_groups/bound_reached"] == 1.0


def assert_gigpo(data):
    """GiGPO's advantages were computed on the anchors the agent loop recorded: the steps of a group's
    trajectories share at least their first observation, so there are fewer anchor groups than rows."""
    for key in ("gigpo/episode_advantage/mean", "gigpo/step_advantage/mean", "gigpo/step_advantage/max"):
        assert math.isfinite(data[key]), key
    assert 0.0 < data["gigpo/anchor_groups_per_row"] < 1.0
