"""Trajectory-level GRPO over per-step rows, against hand computation and a plain loop."""

from __future__ import annotations

import math
import random

import pytest
import torch

from agent_rl.advantage import trajectory_grpo


def loop_reference(outcome, penalty, traj, group, norm_by_std=True, eps=1e-6):
    returns, group_of = {}, {}
    for r, p, t, g in zip(outcome, penalty, traj, group, strict=True):
        returns[t] = returns.get(t, r) - p
        group_of[t] = g
    out = []
    for t, g in zip(traj, group, strict=True):
        members = [returns[u] for u in returns if group_of[u] == g]
        if len(members) < 2:
            out.append(0.0)
            continue
        mean = sum(members) / len(members)
        std = math.sqrt(sum((m - mean) ** 2 for m in members) / (len(members) - 1))
        out.append((returns[t] - mean) / (std + eps) if norm_by_std else returns[t] - mean)
    return out


def test_hand_computed_group():
    # group 0: trajectory 0 won in 2 steps (one invalid), trajectory 1 lost in 1 step
    outcome = torch.tensor([10.0, 10.0, 0.0])
    penalty = torch.tensor([0.1, 0.0, 0.0])
    adv = trajectory_grpo(outcome, penalty, torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0]))
    # returns 9.9 and 0.0: mean 4.95, unbiased std 7.0004
    expected = 4.95 / (math.sqrt(2 * 4.95**2) + 1e-6)
    assert adv.tolist() == pytest.approx([expected, expected, -expected], rel=1e-6)


def test_every_row_of_a_trajectory_gets_its_trajectorys_advantage():
    adv = trajectory_grpo(
        torch.tensor([10.0] * 3 + [0.0] * 5),
        torch.zeros(8),
        torch.tensor([0, 0, 0, 1, 1, 1, 1, 1]),
        torch.zeros(8, dtype=torch.long),
    )
    assert len(set(adv[:3].tolist())) == 1 and len(set(adv[3:].tolist())) == 1
    assert adv[0] > 0 > adv[3]


def test_equal_returns_and_singletons_give_zero_not_nan():
    adv = trajectory_grpo(
        torch.zeros(4), torch.zeros(4), torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 2])
    )
    assert adv.tolist() == [0.0] * 4
    assert (
        trajectory_grpo(
            torch.zeros(0), torch.zeros(0), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        ).numel()
        == 0
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("norm", [True, False])
def test_matches_a_plain_loop(seed, norm):
    rng = random.Random(seed)
    outcome, penalty, traj, group = [], [], [], []
    for t in range(rng.randint(2, 30)):
        g, won, steps = rng.randint(0, 4), rng.random() < 0.4, rng.randint(1, 6)
        for _ in range(steps):
            outcome.append(10.0 * won)
            penalty.append(0.1 if rng.random() < 0.3 else 0.0)
            traj.append(t * 7 + 3)  # arbitrary integer ids
            group.append(g * 11)
    order = list(range(len(traj)))
    rng.shuffle(order)  # rows need not be sorted
    pick = lambda xs: [xs[i] for i in order]  # noqa: E731
    outcome, penalty, traj, group = map(pick, (outcome, penalty, traj, group))
    got = trajectory_grpo(
        torch.tensor(outcome),
        torch.tensor(penalty),
        torch.tensor(traj),
        torch.tensor(group),
        norm_by_std=norm,
    )
    assert got.tolist() == pytest.approx(loop_reference(outcome, penalty, traj, group, norm), abs=1e-5)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"shape \(rows,\)"):
        trajectory_grpo(torch.zeros(3), torch.zeros(2), torch.zeros(3), torch.zeros(3))
