r"""GiGPO (Feng et al., "Group-in-Group Policy Optimization for LLM Agent Training", arXiv 2505.10978):
a base algorithm, GRPO's episode advantage plus a step advantage over *anchor-state groups* (pure tensor
functions; the trainer wires them through the method API, `conf/algo/gigpo.yaml`).

A rollout group :math:`g` holds the ``rollout.n`` trajectories of one task; step :math:`t` of trajectory
:math:`i` was taken in the environment state whose observation is :math:`o_{i,t}` (the anchor, the raw
observation before the prompt is built), scored with the environment reward :math:`r_{i,t}` (sparse:
``success_reward`` on the winning step, else 0) and the invalid-action penalty :math:`p` on an invalid step.

Episode advantage (Eq. 3; in verl-agent's code it is the GRPO of ``agent_rl.algos.grpo`` over step rows):

.. math::  A^E_{i,t} = \frac{s_{i,t} - \operatorname{mean}(E_g)}{F_{\text{norm}}(E_g)}

Step returns (Eq. 5), discounted over the trajectory's later steps, the row's own penalty undiscounted:

.. math::  R^S_{i,t} = \sum_{k \ge t} \gamma^{k-t} r_{i,k} - p\,[\text{step } t \text{ invalid}]

Anchor-state groups (Eq. 6): the steps of group :math:`g` (any trajectory, any turn) whose anchors are
identical, :math:`G^S(o) = \{(i, t) : o_{i,t} = o\}`; with ``similarity_thresh`` set, a step joins the first
cluster whose representative it matches with difflib's ``SequenceMatcher.ratio() >= similarity_thresh``.

Step advantage (Eq. 7) and the joint advantage (Eq. 8):

.. math::  A^S_{i,t} = \frac{R^S_{i,t} - \operatorname{mean}(G^S)}{F_{\text{norm}}(G^S)}, \qquad
           A_{i,t} = A^E_{i,t} + \omega\, A^S_{i,t}

with :math:`F_{\text{norm}} = \operatorname{std} + \epsilon` under ``mean_std_norm`` and 1 under
``mean_norm``; :math:`\omega` = ``step_advantage_w`` (1.0), :math:`\gamma` = 0.95.

Deviations (from verl-agent's ``gigpo/core_gigpo.py``, the code behind the paper's numbers):

1. A step group of one step gets mean = its own return, std 1 (so :math:`A^S = 0`), as verl-agent; an episode
   group of one entry gets mean 0 and std 1 (``agent_rl.algos.grpo``), as verl-agent.
2. Discounting follows each row's ``turn``; verl-agent follows the rows' batch order inside a trajectory,
   which is the turn order as its rollout gathers them.
3. Step-group ids are compact integers, not uuid4 strings (the grouping is the same); the similarity
   clustering visits a group's steps in batch order, as verl-agent's.
4. std is the unbiased one (``torch.std``), :math:`\epsilon = 10^{-6}`, as verl-agent.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from difflib import SequenceMatcher

import torch

from agent_rl.algos.grpo import group_mean_std, grpo_advantages
from agent_rl.rows.step_rows import StepRows

GIGPO_MODES = ("mean_norm", "mean_std_norm")


def step_returns(
    env_reward: torch.Tensor,
    step_penalty: torch.Tensor,
    traj_id: torch.Tensor,
    turn: torch.Tensor,
    gamma: float = 0.95,
) -> torch.Tensor:
    r"""Discounted return of each step row, :math:`R^S_{i,t}` (module docstring, Eq. 5).

    Args:
        env_reward: ``(rows,)`` the environment's reward for this step (sparse: the outcome on the last step).
        step_penalty: ``(rows,)`` this step's invalid-action penalty (subtracted undiscounted).
        traj_id: ``(rows,)`` trajectory of each row (any integers).
        turn: ``(rows,)`` step index of each row inside its trajectory.
        gamma: discount factor.
    Returns:
        ``(rows,)`` float64.
    """
    if not (env_reward.shape == step_penalty.shape == traj_id.shape == turn.shape and env_reward.dim() == 1):
        raise ValueError("env_reward, step_penalty, traj_id and turn must all have shape (rows,)")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    reward = env_reward.to(torch.float64).tolist()
    traj, turns = traj_id.tolist(), turn.tolist()
    # rows in (trajectory, turn) order, walked backwards: G_t = r_t + gamma^(turn_next - turn_t) G_next
    order = sorted(range(len(reward)), key=lambda r: (traj[r], turns[r]))
    returns = [0.0] * len(reward)
    nxt = None
    for row in reversed(order):
        returns[row] = reward[row]
        if nxt is not None and traj[nxt] == traj[row]:
            returns[row] += gamma ** (turns[nxt] - turns[row]) * returns[nxt]
        nxt = row
    returns = torch.tensor(returns, dtype=torch.float64)
    return returns - step_penalty.to(torch.float64)


def anchor_groups(
    anchors: Sequence[Hashable | None],
    group_id: torch.Tensor,
    similarity_thresh: float | None = None,
) -> torch.Tensor:
    """Step-group id of each row (Eq. 6): rows of one rollout group with identical anchors share an id.

    Args:
        anchors: ``rows`` anchor observations (strings for similarity grouping); ``None`` puts the row in a
            group of its own (verl's padding rows, rows without an anchor).
        group_id: ``(rows,)`` rollout group of each row.
        similarity_thresh: None for exact matching; else a ratio in (0, 1): a row joins the first cluster of
            its rollout group whose first anchor it matches with ``SequenceMatcher.ratio() >= thresh``.
    Returns:
        ``(rows,)`` long, compact ids ``0..n-1``.
    """
    if len(anchors) != group_id.numel():
        raise ValueError(f"{len(anchors)} anchors for {group_id.numel()} rows")
    if similarity_thresh is not None and not 0.0 < similarity_thresh < 1.0:
        raise ValueError(f"similarity_thresh must be in (0, 1) or None, got {similarity_thresh}")
    ids: dict[Hashable, int] = {}
    clusters: dict[int, list[tuple[str, int]]] = {}  # rollout group -> [(representative, id)]
    out = []
    for row, (anchor, group) in enumerate(zip(anchors, group_id.tolist(), strict=True)):
        if anchor is None:
            key: Hashable = ("alone", row)
        elif similarity_thresh is None:
            key = (group, anchor)
        else:
            if not isinstance(anchor, str):
                raise ValueError("similarity grouping needs text anchors")
            found = next(
                (
                    cid
                    for rep, cid in clusters.setdefault(group, [])
                    if SequenceMatcher(None, anchor, rep).ratio() >= similarity_thresh
                ),
                None,
            )
            if found is None:
                found = len(ids)
                clusters[group].append((anchor, found))
            key = ("cluster", found)
        out.append(ids.setdefault(key, len(ids)))
    return torch.tensor(out, dtype=torch.long)


def step_advantages(
    returns: torch.Tensor, step_group: torch.Tensor, *, norm_by_std: bool, eps: float = 1e-6
) -> torch.Tensor:
    """Step advantage :math:`A^S` (Eq. 7) of ``returns (rows,)`` within ``step_group (rows,)`` compact ids;
    a step group of one row gets 0. Returns ``(rows,)`` float64."""
    if returns.shape != step_group.shape or returns.dim() != 1:
        raise ValueError("returns and step_group must both have shape (rows,)")
    if returns.numel() == 0:
        return returns.to(torch.float64)
    values = returns.to(torch.float64)
    mean, std, count = group_mean_std(values, step_group, int(step_group.max()) + 1)
    adv = values - mean[step_group]
    if norm_by_std:
        adv = adv / (torch.where(count < 2, 1.0, std)[step_group] + eps)
    return adv


def gigpo_advantages(
    rows: StepRows,
    env_reward: torch.Tensor,
    anchors: Sequence[Hashable | None],
    *,
    gamma: float = 0.95,
    step_advantage_w: float = 1.0,
    mode: str = "mean_std_norm",
    group_stats: str = "step_rows",
    similarity_thresh: float | None = None,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GiGPO's joint advantage :math:`A = A^E + \\omega A^S` of each step row (Eq. 8).

    Args:
        rows: the batch's step rows (outcome, penalty, trajectory, turn, rollout group).
        env_reward: ``(rows,)`` each step's environment reward.
        anchors: ``rows`` anchor observations (``None``: a step group of its own).
        mode: ``mean_std_norm`` (verl-agent's ALFWorld/WebShop scripts) or ``mean_norm`` (no std).
        group_stats: the episode advantage's GRPO statistics (``agent_rl.algos.grpo.GROUP_STATS``).
    Returns:
        ``(joint, episode, step)`` advantages, each ``(rows,)`` float32.
    """
    if mode not in GIGPO_MODES:
        raise ValueError(f"unknown GiGPO mode {mode!r}; valid: {', '.join(GIGPO_MODES)}")
    norm = mode == "mean_std_norm"
    episode = grpo_advantages(rows, group_stats=group_stats, norm_by_std=norm, eps=eps)
    returns = step_returns(env_reward, rows.penalty, rows.traj, rows.turn, gamma)
    step_group = anchor_groups(anchors, rows.group, similarity_thresh)
    step = step_advantages(returns, step_group, norm_by_std=norm, eps=eps).to(torch.float32)
    return episode + step_advantage_w * step, episode, step
