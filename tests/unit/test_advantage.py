"""GRPO's group statistics over per-step rows (``algo.group_stats``), against hand computation and plain
loops written after verl-agent's ``compute_grpo_outcome_advantage`` (and agent_rl's trajectory variant)."""

from __future__ import annotations

import math
import random
from collections import defaultdict

import pytest
import torch

from agent_rl.algos.grpo import GROUP_STATS, groups_without_signal, grpo_advantages
from agent_rl.rows.step_rows import StepRows


def verl_agent_loop(rows, cross_steps: bool, norm_by_std=True, eps=1e-6):
    """verl-agent's formula, one row at a time. ``rows``: dicts with outcome, penalty, traj, group, turn,
    in verl-agent's batch order (trajectory after trajectory, steps in order)."""
    scores = [r["outcome"] - r["penalty"] for r in rows]
    by_group, seen = defaultdict(list), set()
    for r, s in zip(rows, scores, strict=True):
        if (r["group"], r["traj"]) in seen:
            continue
        by_group[r["group"]].append(s)
        if not cross_steps:
            seen.add((r["group"], r["traj"]))
    stats = {}
    for g, values in by_group.items():
        if len(values) == 1:
            stats[g] = (0.0, 1.0)
        else:
            mean = sum(values) / len(values)
            stats[g] = (mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)))
    out = []
    for r, s in zip(rows, scores, strict=True):
        mean, std = stats[r["group"]]
        out.append((s - mean) / (std + eps) if norm_by_std else s - mean)
    return out


def trajectory_loop(rows, norm_by_std=True, eps=1e-6):
    """agent_rl's trajectory statistics: returns G = R - p * #invalid, each trajectory once."""
    returns, group_of = {}, {}
    for r in rows:
        returns[r["traj"]] = returns.get(r["traj"], r["outcome"]) - r["penalty"]
        group_of[r["traj"]] = r["group"]
    out = []
    for r in rows:
        members = [returns[u] for u in returns if group_of[u] == r["group"]]
        if len(members) < 2:
            out.append(0.0)
            continue
        mean = sum(members) / len(members)
        std = math.sqrt(sum((m - mean) ** 2 for m in members) / (len(members) - 1))
        centred = returns[r["traj"]] - mean
        out.append(centred / (std + eps) if norm_by_std else centred)
    return out


def reference(rows, group_stats, norm_by_std=True):
    if group_stats == "trajectory":
        return trajectory_loop(rows, norm_by_std)
    return verl_agent_loop(rows, cross_steps=group_stats == "step_rows", norm_by_std=norm_by_std)


def steps(outcome, penalty, traj, group, turn) -> StepRows:
    return StepRows(traj=traj, turn=turn, group=group, outcome=outcome, penalty=penalty)


def as_tensors(rows):
    keys = ("outcome", "penalty", "traj", "group", "turn")
    return [torch.tensor([r[k] for r in rows]) for k in keys]


def random_batch(seed):
    """Uneven episode lengths, invalid steps, singleton groups (one trajectory, sometimes of one step) and
    all-equal groups, with arbitrary integer ids."""
    rng = random.Random(seed)
    rows, traj = [], 0
    for g in range(rng.randint(2, 6)):
        kind = rng.choice(["mixed", "mixed", "singleton", "equal"])
        n_traj = 1 if kind == "singleton" else rng.randint(2, 5)
        for _ in range(n_traj):
            won = kind != "equal" and rng.random() < 0.4
            steps = 1 if kind == "singleton" and rng.random() < 0.5 else rng.randint(1, 6)
            for t in range(steps):
                invalid = kind != "equal" and rng.random() < 0.3
                rows.append(
                    {
                        "outcome": 10.0 * won,
                        "penalty": 0.1 * invalid,
                        "traj": traj * 7 + 3,
                        "group": g * 11,
                        "turn": t,
                    }
                )
            traj += 1
    return rows


@pytest.mark.parametrize("group_stats", GROUP_STATS)
@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_each_variant_matches_its_plain_loop(group_stats, norm, seed):
    rows = random_batch(seed)
    expected = reference(rows, group_stats, norm)
    order = list(range(len(rows)))
    random.Random(seed + 100).shuffle(order)  # our rows need not come in verl-agent's order
    shuffled = [rows[i] for i in order]
    outcome, penalty, traj, group, turn = as_tensors(shuffled)
    batch = steps(outcome, penalty, traj, group, turn)
    got = grpo_advantages(batch, group_stats=group_stats, norm_by_std=norm)
    assert got.tolist() == pytest.approx([expected[i] for i in order], abs=1e-4)


def test_step_rows_by_hand():
    # trajectory 0 won in 2 steps (first invalid), trajectory 1 lost in 1 step
    outcome, penalty = torch.tensor([10.0, 10.0, 0.0]), torch.tensor([0.1, 0.0, 0.0])
    traj, group, turn = torch.tensor([0, 0, 1]), torch.zeros(3, dtype=torch.long), torch.tensor([0, 1, 0])
    got = grpo_advantages(steps(outcome, penalty, traj, group, turn), group_stats="step_rows")
    scores = [9.9, 10.0, 0.0]
    mean = sum(scores) / 3
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / 2)
    assert got.tolist() == pytest.approx([(s - mean) / (std + 1e-6) for s in scores], rel=1e-6)
    # trajectory_rows: entries 9.9 (trajectory 0's first step) and 0.0; each row its own score
    got = grpo_advantages(steps(outcome, penalty, traj, group, turn), group_stats="trajectory_rows")
    mean, std = 4.95, math.sqrt(2 * 4.95**2)
    assert got.tolist() == pytest.approx([(s - mean) / (std + 1e-6) for s in scores], rel=1e-6)
    # trajectory: returns 9.9 and 0.0, every row of a trajectory alike
    got = grpo_advantages(steps(outcome, penalty, traj, group, turn), group_stats="trajectory")
    assert got.tolist() == pytest.approx([4.95 / (std + 1e-6)] * 2 + [-4.95 / (std + 1e-6)], rel=1e-6)


def test_singletons_follow_each_variants_rule():
    # one trajectory of one step that won: verl-agent keeps its score (mean 0, std 1); trajectory gives 0
    args = (
        torch.tensor([10.0]),
        torch.tensor([0.0]),
        torch.tensor([5]),
        torch.tensor([2]),
        torch.tensor([0]),
    )
    lone = steps(*args)
    assert grpo_advantages(lone, group_stats="step_rows").tolist() == pytest.approx([10.0 / (1 + 1e-6)])
    assert grpo_advantages(steps(*args), group_stats="trajectory_rows").tolist() == pytest.approx(
        [10.0 / (1 + 1e-6)]
    )
    assert grpo_advantages(steps(*args), group_stats="trajectory").tolist() == [0.0]


@pytest.mark.parametrize("group_stats", GROUP_STATS)
def test_all_equal_groups_give_zero_not_nan(group_stats):
    zeros = torch.zeros(4)
    traj, group = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 1])
    adv = grpo_advantages(steps(zeros, zeros, traj, group, traj * 0), group_stats=group_stats)
    assert adv.tolist() == [0.0] * 4
    empty = torch.zeros(0, dtype=torch.long)
    none = steps(empty.float(), empty.float(), empty, empty, empty)
    assert grpo_advantages(none, group_stats=group_stats).numel() == 0


def test_groups_without_signal_follow_the_chosen_statistics():
    # group 0: both lost, trajectory 0 has an invalid second step -> row scores differ (step_rows signal),
    # first-step scores equal but the invalid row's own score differs (trajectory_rows: signal, the
    # row gets -0.1 / eps), returns differ (trajectory: signal)
    # group 1: both won, all valid -> no signal anywhere; group 2: a singleton -> kept (verl: len > 1)
    outcome = torch.tensor([0.0, 0.0, 0.0, 10.0, 10.0, 10.0])
    penalty = torch.tensor([0.0, 0.1, 0.0, 0.0, 0.0, 0.0])
    traj, group = torch.tensor([0, 0, 1, 2, 3, 4]), torch.tensor([0, 0, 0, 1, 1, 2])
    turn = torch.tensor([0, 1, 0, 0, 0, 0])
    batch = steps(outcome, penalty, traj, group, turn)
    drop = {s: groups_without_signal(batch, s).tolist() for s in GROUP_STATS}
    assert drop == {"step_rows": [1], "trajectory_rows": [1], "trajectory": [1]}
    for s in GROUP_STATS:  # dropped exactly where every advantage of the group is 0
        adv = grpo_advantages(steps(outcome, penalty, traj, group, turn), group_stats=s)
        zero = {int(g) for g in group.unique() if bool((adv[group == g] == 0).all())}
        assert set(drop[s]) == zero - {2}


def test_bad_input_is_a_clear_error():
    z = torch.zeros(3)
    with pytest.raises(ValueError, match=r"must all have shape \(rows,\)"):
        steps(z, torch.zeros(2), z, z, z)
    with pytest.raises(ValueError, match="valid: step_rows, trajectory_rows, trajectory"):
        grpo_advantages(steps(z, z, z, z, z), group_stats="episode")
