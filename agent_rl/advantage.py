r"""Base advantage for per-step rows: GRPO at trajectory level (pure tensor functions).

A trajectory :math:`i` of group :math:`g` (the ``rollout.n`` trajectories sampled for one task) has steps
:math:`t = 0..T_i-1` and per-step rewards

.. math::  r_{i,t} = R_i\,[t = T_i - 1] - p\,[\text{step } t \text{ invalid}], \qquad
           G_i = \sum_t r_{i,t} = R_i - p \cdot \#\{\text{invalid steps of } i\}

with :math:`R_i` the outcome reward (``success_reward`` for a win, else 0) and :math:`p` the invalid-action
penalty. GRPO's group-relative advantage is taken over trajectory returns and given to every step row:

.. math::  A_{i,t} = \frac{G_i - \operatorname{mean}_{j \in g} G_j}
                          {\operatorname{std}_{j \in g} G_j + \epsilon}
           \quad(\text{or without the division when } \texttt{norm\_by\_std} \text{ is off})

Relation to verl-agent (the code all four papers trained with): verl-agent scores each step *row* with
:math:`R_i - p\,[\text{invalid}]` and takes mean and std over all step rows of the group
(``compute_mean_std_cross_all_data``). Here every trajectory counts once, so long episodes do not weigh
more in the group statistics, and an invalid step lowers its trajectory's return rather than its own row
alone. With no invalid steps both give every row of trajectory :math:`i` the same sign; they differ in
scale when episode lengths differ. verl 0.9.1's own V1 GRPO for list outputs is the special case p = 0.

Deviations: std is the unbiased one (as verl's ``compute_grpo_outcome_advantage``, ``torch.std``); a group
of one trajectory gets advantage 0; :math:`\epsilon = 10^{-6}` as verl.
"""

from __future__ import annotations

import torch

from agent_rl.methods.turns import compact_ids


def trajectory_returns(
    outcome: torch.Tensor, step_penalty: torch.Tensor, traj_id: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-trajectory return G from per-row outcome R (same on every row of a trajectory) and penalties.

    Args: ``outcome (rows,)``, ``step_penalty (rows,)``, ``traj_id (rows,)`` any integers.
    Returns: ``G (num_traj,)``, ``traj_index (rows,)`` (row -> trajectory), ``first_row (num_traj,)``.
    """
    traj_index, num_traj = compact_ids(traj_id)
    penalty = torch.zeros(num_traj, dtype=outcome.dtype).index_add_(
        0, traj_index, step_penalty.to(outcome.dtype)
    )
    rows = torch.arange(len(traj_id))
    first_row = torch.full((num_traj,), len(traj_id), dtype=torch.long).scatter_reduce_(
        0, traj_index, rows, reduce="amin"
    )
    return outcome[first_row] - penalty, traj_index, first_row


def trajectory_grpo(
    outcome: torch.Tensor,
    step_penalty: torch.Tensor,
    traj_id: torch.Tensor,
    group_id: torch.Tensor,
    *,
    norm_by_std: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """GRPO advantage of each step row, computed over trajectory returns (see module docstring).

    Args:
        outcome: ``(rows,)`` outcome reward R of the row's trajectory.
        step_penalty: ``(rows,)`` penalty of this step (0 for a valid step).
        traj_id: ``(rows,)`` trajectory of each row.
        group_id: ``(rows,)`` rollout group of each row (equal within a trajectory).
    Returns:
        ``(rows,)`` advantage per row.
    """
    if not (outcome.shape == step_penalty.shape == traj_id.shape == group_id.shape and outcome.dim() == 1):
        raise ValueError("outcome, step_penalty, traj_id and group_id must all have shape (rows,)")
    if outcome.numel() == 0:
        return outcome.clone()
    outcome = outcome.to(torch.float64)
    returns, traj_index, first_row = trajectory_returns(outcome, step_penalty, traj_id)
    group, num_groups = compact_ids(group_id[first_row])
    count = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group, torch.ones_like(returns))
    mean = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group, returns) / count
    centred = returns - mean[group]
    sq = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group, centred**2)
    std = torch.sqrt(sq / (count - 1).clamp(min=1))
    singleton = count[group] < 2
    adv = torch.where(singleton, torch.zeros_like(centred), centred)
    if norm_by_std:
        adv = torch.where(singleton, adv, adv / (std[group] + eps))
    return adv[traj_index].to(torch.float32)
