"""Episode metrics and environment-wide validation metrics (pure parts of agent_rl.training.trainer)."""

from __future__ import annotations

import pytest

from agent_rl.training.trainer import episode_metrics, overall_validation_metrics


def row(traj, turn, won, length, task_type, valid_ratio=1.0):
    return {
        "trajectory_id": traj,
        "turn": turn,
        "won": won,
        "score": won,
        "episode_length": length,
        "valid_action_ratio": valid_ratio,
        "env_failed": 0.0,
        "task_type": task_type,
    }


def test_episode_metrics_count_each_trajectory_once():
    rows = [
        row("a", 0, 1.0, 3, "pick"),
        row("a", 1, 1.0, 3, "pick"),
        row("a", 2, 1.0, 3, "pick"),
        row("b", 0, 0.0, 1, "heat", 0.0),
    ]
    m = episode_metrics(rows)
    assert m["env/success_rate"] == 0.5  # not 3/4: trajectory a counts once
    assert m["env/episode_length/mean"] == 2.0 and m["env/episode_length/max"] == 3.0
    assert m["env/steps_per_trajectory"] == 2.0
    assert m["env/valid_action_ratio"] == 0.5
    assert m["env/success_rate/pick"] == 1.0 and m["env/success_rate/heat"] == 0.0
    assert episode_metrics([]) == {}


def test_overall_validation_is_weighted_by_tasks_per_type():
    metrics = {
        "val-core/alfworld/pick/won/mean@1": 1.0,
        "val-core/alfworld/heat/won/mean@1": 0.0,
        "val-aux/alfworld/pick/score/mean@1": 1.0,
        "val-aux/alfworld/heat/score/mean@1": 0.5,
        "val-core/other/x/won/mean@1": 1.0,  # not one of our sources
        "val-aux/num_turns/mean": 2.0,  # not per source
    }
    out = overall_validation_metrics(metrics, {"alfworld/pick": 1, "alfworld/heat": 3})
    assert out == {
        "val-core/alfworld/all/won/mean@1": pytest.approx(0.25),
        "val-aux/alfworld/all/score/mean@1": pytest.approx((1.0 + 3 * 0.5) / 4),
    }


def test_epo_validation_draws_fresh_tasks_per_evaluation_reproducibly():
    from agent_rl.training.trainer import validation_draw

    draws = {step: validation_draw(128, 16, seed=0, step=step) for step in (0, 5, 10)}
    assert all(len(d) == 16 == len(set(d)) and all(0 <= i < 128 for i in d) for d in draws.values())
    assert len({tuple(d) for d in draws.values()}) == 3  # fresh tasks at each evaluation
    assert validation_draw(128, 16, seed=0, step=5) == draws[5]  # a resumed run draws the same
    assert validation_draw(128, 16, seed=1, step=5) != draws[5]
    assert validation_draw(6, 16, seed=0, step=5) == list(range(6))  # a split smaller than the draw


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["env.val_protocol=fresh"], r"unknown env.val_protocol='fresh'; valid: fixed, epo\.$"),
        (["env.val_protocol=epo", "env.val_tasks_per_eval=0"], r"env.val_tasks_per_eval must be a positive"),
    ],
)
def test_bad_validation_protocol_is_refused_with_the_valid_values(hydra_ctx, overrides, message):
    from hydra import compose

    from agent_rl.cli import train

    with pytest.raises(train.ConfigError, match=message):
        train.check_validation(compose("config", overrides=overrides))
    train.check_validation(compose("config", overrides=["env.val_protocol=epo"]))


def test_start_up_is_counted_from_the_launch_to_the_first_generation_and_the_first_step_end(monkeypatch):
    from agent_rl.training.trainer import first_generation, startup_metrics

    rows = [{"generated_at": 1012.5}, {"generated_at": 1010.25}, {"trajectory_id": "a"}]  # one without
    assert first_generation(rows) == 1010.25
    assert first_generation([{}]) is None
    monkeypatch.setenv("AGENT_RL_LAUNCH_TIME", "1000.0")
    assert startup_metrics(1010.25, now=1042.0) == {
        "startup/first_step_end_s": 42.0,
        "startup/first_generation_s": 10.25,
    }
    assert startup_metrics(None, now=1042.0) == {"startup/first_step_end_s": 42.0}  # verl's own agent loops
    monkeypatch.delenv("AGENT_RL_LAUNCH_TIME")
    assert startup_metrics(1010.25, now=1042.0) == {}  # launched otherwise: nothing to count from
