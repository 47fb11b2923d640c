"""GiGPO's advantage (agent_rl/algos/gigpo.py) against a plain-loop reading of verl-agent's formula.

The reference below walks the rows one by one the way verl-agent's ``gigpo/core_gigpo.py`` does (dicts of
lists keyed by group, returns accumulated backwards over each trajectory's steps, the invalid-action
penalty subtracted from the step reward afterwards, ``torch.std`` for the spread), written here from the
paper's Eqs. 3-8 and that code's rules for groups of one.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
import torch

from agent_rl.algos.gigpo import anchor_groups, gigpo_advantages, step_advantages, step_returns
from agent_rl.rows.step_rows import StepRows


def plain_gigpo(steps, gamma, w, mode, eps=1e-6):
    """``steps``: list of dicts with group, traj, turn, outcome, penalty, env_reward, anchor (batch order).
    Returns the joint advantage per step."""
    std_norm = mode == "mean_std_norm"

    # Eq. 3, over every step row of the group (compute_mean_std_cross_steps=True)
    scores = [s["outcome"] - s["penalty"] for s in steps]
    by_group = defaultdict(list)
    for s, score in zip(steps, scores, strict=True):
        by_group[s["group"]].append(score)
    episode = []
    for s, score in zip(steps, scores, strict=True):
        vals = by_group[s["group"]]
        mean, std = (0.0, 1.0) if len(vals) == 1 else (sum(vals) / len(vals), torch.tensor(vals).std().item())
        episode.append((score - mean) / (std + eps) if std_norm else score - mean)

    # Eq. 5: discounted returns, then the penalty of the row itself
    returns = [0.0] * len(steps)
    for traj in {s["traj"] for s in steps}:
        rows = sorted((i for i, s in enumerate(steps) if s["traj"] == traj), key=lambda i: steps[i]["turn"])
        running = 0.0
        for i in reversed(rows):
            running = steps[i]["env_reward"] + gamma * running
            returns[i] = running
    returns = [r - s["penalty"] for r, s in zip(returns, steps, strict=True)]

    # Eq. 6-7: identical anchors within a rollout group; a group of one keeps mean = itself, std 1
    by_anchor = defaultdict(list)
    for s, r in zip(steps, returns, strict=True):
        by_anchor[(s["group"], s["anchor"])].append(r)
    step_adv = []
    for s, r in zip(steps, returns, strict=True):
        vals = by_anchor[(s["group"], s["anchor"])]
        mean = sum(vals) / len(vals)
        std = 1.0 if len(vals) == 1 else torch.tensor(vals).std().item()
        step_adv.append((r - mean) / (std + eps) if std_norm else r - mean)
    return [e + w * a for e, a in zip(episode, step_adv, strict=True)]


def as_inputs(steps):
    rows = StepRows(
        traj=torch.tensor([s["traj"] for s in steps]),
        turn=torch.tensor([s["turn"] for s in steps]),
        group=torch.tensor([s["group"] for s in steps]),
        outcome=torch.tensor([s["outcome"] for s in steps], dtype=torch.float32),
        penalty=torch.tensor([s["penalty"] for s in steps], dtype=torch.float32),
    )
    return rows, torch.tensor([s["env_reward"] for s in steps]), [s["anchor"] for s in steps]


def episode(group, traj, won, anchors, invalid=(), reward=10.0, penalty=0.1):
    n = len(anchors)
    return [
        {
            "group": group,
            "traj": traj,
            "turn": t,
            "outcome": reward * won,
            "penalty": penalty if t in invalid else 0.0,
            "env_reward": reward * won if t == n - 1 else 0.0,
            "anchor": a,
        }
        for t, a in enumerate(anchors)
    ]


def test_discounted_returns_follow_the_turns_not_the_batch_order():
    # one winning trajectory of 3 steps, rows shuffled; gamma^2 R, gamma R, R; the invalid row pays 0.1
    env_reward = torch.tensor([0.0, 10.0, 0.0])
    turn = torch.tensor([1, 2, 0])
    penalty = torch.tensor([0.1, 0.0, 0.0])
    got = step_returns(env_reward, penalty, torch.zeros(3, dtype=torch.long), turn, gamma=0.5)
    assert got.tolist() == pytest.approx([5.0 - 0.1, 10.0, 2.5])


def test_a_step_group_of_one_has_no_step_advantage():
    adv = step_advantages(torch.tensor([3.0, 1.0, 2.0]), torch.tensor([0, 1, 2]), norm_by_std=True)
    assert adv.tolist() == [0.0, 0.0, 0.0]


def test_identical_observations_across_trajectories_share_a_step_group():
    # two trajectories of one group pass through state "B"; the winner's B-step return is higher
    steps = episode(0, 0, True, ["A", "B", "C"]) + episode(0, 1, False, ["A", "B", "D"])
    rows, env_reward, anchors = as_inputs(steps)
    ids = anchor_groups(anchors, rows.group)
    assert ids[0] == ids[3] and ids[1] == ids[4] and ids[2] != ids[5]
    joint, epi, step = gigpo_advantages(rows, env_reward, anchors, gamma=0.95, mode="mean_norm")
    assert step[1] > 0 > step[4] and step[1] == pytest.approx(-step[4])
    assert step[2] == 0 and step[5] == 0  # C and D are groups of one
    assert torch.allclose(joint, epi + step)


def test_the_same_observation_in_another_rollout_group_is_another_anchor():
    steps = episode(0, 0, True, ["A", "B"]) + episode(1, 1, False, ["A", "B"])
    rows, _, anchors = as_inputs(steps)
    ids = anchor_groups(anchors, rows.group)
    assert len(set(ids.tolist())) == 4


def test_a_state_repeated_inside_one_trajectory_is_one_step_group():
    # "A" at turns 0 and 2 of the same trajectory: one group of two, with different discounted returns
    steps = episode(0, 0, True, ["A", "B", "A", "C"])
    rows, env_reward, anchors = as_inputs(steps)
    ids = anchor_groups(anchors, rows.group)
    assert ids[0] == ids[2] and len(set(ids.tolist())) == 3
    _, _, step = gigpo_advantages(rows, env_reward, anchors, gamma=0.9, mode="mean_norm")
    later = 10.0 * 0.9  # turn 2 is one step from the goal, turn 0 three steps
    assert step[2] == pytest.approx((later - 10.0 * 0.9**3) / 2)
    assert step[0] == pytest.approx(-step[2])


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
@pytest.mark.parametrize("seed", range(5))
def test_matches_the_plain_loop_on_random_batches(mode, seed):
    rng = random.Random(seed)
    steps, traj = [], 0
    for group in range(3):
        for _ in range(rng.randint(1, 4)):  # groups of one trajectory too
            length = rng.randint(1, 6)
            anchors = [rng.choice("ABCDE") for _ in range(length)]  # repeats within and across
            invalid = {t for t in range(length) if rng.random() < 0.3}
            steps += episode(group, traj, rng.random() < 0.5, anchors, invalid)
            traj += 1
    rng.shuffle(steps)  # balance_batch reorders rows
    rows, env_reward, anchors = as_inputs(steps)
    joint, _, _ = gigpo_advantages(rows, env_reward, anchors, gamma=0.95, step_advantage_w=0.7, mode=mode)
    expected = plain_gigpo(steps, gamma=0.95, w=0.7, mode=mode)
    assert joint.tolist() == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_similarity_grouping_joins_near_identical_text():
    anchors = ["You see a mug 1 and a cup 2.", "You see a mug 1 and a cup 3.", "Nothing happens."]
    group = torch.zeros(3, dtype=torch.long)
    assert anchor_groups(anchors, group).unique().numel() == 3
    ids = anchor_groups(anchors, group, similarity_thresh=0.9)
    assert ids[0] == ids[1] != ids[2]


def test_rows_without_an_anchor_stay_alone_and_bad_input_is_refused():
    ids = anchor_groups(["A", None, None, "A"], torch.zeros(4, dtype=torch.long))
    assert ids[0] == ids[3] and len(set(ids.tolist())) == 3
    rows, env_reward, anchors = as_inputs(episode(0, 0, True, ["A"]))
    with pytest.raises(ValueError, match="valid: mean_norm, mean_std_norm"):
        gigpo_advantages(rows, env_reward, anchors, mode="std")
    with pytest.raises(ValueError, match="similarity_thresh"):
        anchor_groups(["A"], torch.zeros(1, dtype=torch.long), similarity_thresh=1.0)
    with pytest.raises(ValueError, match="2 anchors for 1 rows"):
        anchor_groups(["A", "B"], torch.zeros(1, dtype=torch.long))
