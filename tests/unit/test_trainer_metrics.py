"""Episode metrics and environment-wide validation metrics (pure parts of agent_rl.trainer)."""

from __future__ import annotations

import pytest

from agent_rl.trainer import episode_metrics, overall_validation_metrics


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
