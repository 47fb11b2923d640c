r"""Base advantage for per-step rows: GRPO's group statistics, three ways (pure tensor functions).

A trajectory :math:`i` of group :math:`g` (the ``rollout.n`` trajectories sampled for one task) has steps
:math:`t = 0..T_i-1`, an outcome reward :math:`R_i` (``success_reward`` for a win, else 0; SPEAR adds its
tool-call bonus) and an invalid-action penalty :math:`p` on each invalid step. Each step row is scored

.. math::  s_{i,t} = R_i - p\,[\text{step } t \text{ of } i \text{ invalid}]

(verl-agent's reward manager puts :math:`R_i` on every step row and ``apply_invalid_action_penalty``
subtracts :math:`p`). The group statistics (``algo.group_stats``) are taken over a set :math:`E_g` of
*entries* of the group, and every row gets

.. math::  A_{i,t} = \frac{s_{i,t} - \operatorname{mean}(E_g)}{\operatorname{std}(E_g) + \epsilon}
           \quad(s_{i,t} - \operatorname{mean}(E_g) \text{ without } \texttt{norm\_by\_std})

- ``step_rows`` (default; verl-agent's ``compute_grpo_outcome_advantage`` with
  ``compute_mean_std_cross_steps=True``, the code behind every paper number): :math:`E_g` = the scores of
  all step rows of the group, so long episodes weigh more in the statistics.
- ``trajectory_rows`` (verl-agent with ``compute_mean_std_cross_steps=False``): :math:`E_g` = one row per
  trajectory (its first step, :math:`s_{i,0}`); each row is still normalised with its own score.
- ``trajectory`` (agent_rl's earlier statistics, kept as a named option): over trajectory returns
  :math:`G_i = R_i - p\cdot\#\{\text{invalid steps of } i\}`, each trajectory once, and every row of
  :math:`i` gets :math:`(G_i - \operatorname{mean}_g G)/(\operatorname{std}_g G + \epsilon)`: an invalid step
  lowers its whole trajectory rather than its own row.

A quirk of ``trajectory_rows``, kept from verl-agent: when a group's entries are all equal (std 0) but a
later row's score differs (an invalid step), that row gets :math:`(s_{i,t} - \operatorname{mean})/\epsilon`,
i.e. about :math:`-10^5 p`.

Singletons: in ``step_rows`` and ``trajectory_rows`` a group with a single entry gets mean 0 and std 1
(verl-agent), so its rows keep their own score; in ``trajectory`` a group of one trajectory gets 0.

With no invalid steps the three give every row of a trajectory the same sign; they differ in scale when
episode lengths differ. verl 0.9.1's own V1 GRPO for list outputs is ``trajectory`` with p = 0.

Deviations: std is the unbiased one (``torch.std``, as verl and verl-agent); :math:`\epsilon = 10^{-6}`.
verl-agent's ``trajectory_rows`` takes the first row of each trajectory *in batch order*, which is step 0
as its rollout gathers rows (before verl's ``balance_batch`` may reorder them); here it is always step 0.
"""

from __future__ import annotations

import torch

from agent_rl.methods.turns import compact_ids

GROUP_STATS = ("step_rows", "trajectory_rows", "trajectory")


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


def _first_step_rows(traj_id: torch.Tensor, turn: torch.Tensor) -> torch.Tensor:
    """Index of each trajectory's row with the smallest turn (ties: the earliest row), ``(num_traj,)``."""
    traj_index, num_traj = compact_ids(traj_id)
    # one sortable key per row: turn first, row index second
    key = turn.to(torch.long) * (len(turn) + 1) + torch.arange(len(turn))
    best = torch.full((num_traj,), torch.iinfo(torch.long).max, dtype=torch.long).scatter_reduce_(
        0, traj_index, key, reduce="amin"
    )
    return best % (len(turn) + 1)


def group_entries(
    outcome: torch.Tensor,
    step_penalty: torch.Tensor,
    traj_id: torch.Tensor,
    group_id: torch.Tensor,
    turn: torch.Tensor,
    group_stats: str = "step_rows",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The entries :math:`E_g` the group statistics are taken over (module docstring).

    Returns ``values (E,)`` float64 and ``entry_group (E,)`` (the group of each entry, as in ``group_id``).
    """
    if group_stats not in GROUP_STATS:
        raise ValueError(f"unknown group_stats {group_stats!r}; valid: {', '.join(GROUP_STATS)}")
    outcome = outcome.to(torch.float64)
    if group_stats == "trajectory":
        returns, _, first_row = trajectory_returns(outcome, step_penalty, traj_id)
        return returns, group_id[first_row]
    scores = outcome - step_penalty.to(torch.float64)
    if group_stats == "step_rows":
        return scores, group_id
    first = _first_step_rows(traj_id, turn)
    return scores[first], group_id[first]


def group_mean_std(
    values: torch.Tensor, group: torch.Tensor, num_groups: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-group ``mean``, unbiased ``std`` and ``count`` of ``values (E,)`` with compact ``group (E,)``."""
    count = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group, torch.ones_like(values))
    mean = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group, values) / count.clamp(min=1)
    sq = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group, (values - mean[group]) ** 2)
    std = torch.sqrt(sq / (count - 1).clamp(min=1))
    return mean, std, count


def grpo_advantages(
    outcome: torch.Tensor,
    step_penalty: torch.Tensor,
    traj_id: torch.Tensor,
    group_id: torch.Tensor,
    turn: torch.Tensor,
    *,
    group_stats: str = "step_rows",
    norm_by_std: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """GRPO advantage of each step row under ``group_stats`` (see module docstring).

    Args:
        outcome: ``(rows,)`` outcome reward R of the row's trajectory.
        step_penalty: ``(rows,)`` penalty of this step (0 for a valid step).
        traj_id: ``(rows,)`` trajectory of each row.
        group_id: ``(rows,)`` rollout group of each row (equal within a trajectory).
        turn: ``(rows,)`` step index of each row inside its trajectory.
    Returns:
        ``(rows,)`` float32 advantage per row.
    """
    tensors = (outcome, step_penalty, traj_id, group_id, turn)
    if not (all(t.shape == outcome.shape for t in tensors) and outcome.dim() == 1):
        raise ValueError("outcome, step_penalty, traj_id, group_id and turn must all have shape (rows,)")
    if group_stats not in GROUP_STATS:
        raise ValueError(f"unknown group_stats {group_stats!r}; valid: {', '.join(GROUP_STATS)}")
    if outcome.numel() == 0:
        return outcome.clone().float()
    values, entry_group = group_entries(outcome, step_penalty, traj_id, group_id, turn, group_stats)
    groups, num_groups = compact_ids(torch.cat([group_id, entry_group]))
    row_group, entry_group = groups[: len(group_id)], groups[len(group_id) :]
    mean, std, count = group_mean_std(values, entry_group, num_groups)

    if group_stats == "trajectory":
        returns, traj_index, _ = trajectory_returns(outcome.to(torch.float64), step_penalty, traj_id)
        centred = returns[traj_index] - mean[row_group]
        singleton = count[row_group] < 2
        adv = torch.where(singleton, torch.zeros_like(centred), centred)
        if norm_by_std:
            adv = torch.where(singleton, adv, adv / (std[row_group] + eps))
        return adv.to(torch.float32)

    singleton = count < 2  # verl-agent: mean 0, std 1
    mean = torch.where(singleton, torch.zeros_like(mean), mean)
    std = torch.where(singleton, torch.ones_like(std), std)
    scores = outcome.to(torch.float64) - step_penalty.to(torch.float64)
    adv = scores - mean[row_group]
    if norm_by_std:
        adv = adv / (std[row_group] + eps)
    return adv.to(torch.float32)


def groups_without_signal(
    outcome: torch.Tensor,
    step_penalty: torch.Tensor,
    traj_id: torch.Tensor,
    group_id: torch.Tensor,
    turn: torch.Tensor,
    group_stats: str = "step_rows",
) -> torch.Tensor:
    r"""The ``group_id`` values that DAPO's dynamic sampling drops, on the chosen statistics: groups with
    more than one entry, all equal (verl's rule, ``len > 1 and std == 0``), so that every GRPO advantage of
    the group is 0. Returns a sorted 1-D tensor.

    Under ``trajectory_rows`` that means all *row* scores equal, as under ``step_rows``: equal first-step
    entries alone leave a later invalid row with :math:`(s - \text{mean}) / \epsilon`.
    """
    entries = "step_rows" if group_stats == "trajectory_rows" else group_stats
    values, entry_group = group_entries(outcome, step_penalty, traj_id, group_id, turn, entries)
    if values.numel() == 0:
        return group_id[:0]
    ids, num = compact_ids(entry_group)
    lo = torch.full((num,), float("inf"), dtype=torch.float64).scatter_reduce_(0, ids, values, reduce="amin")
    hi = torch.full((num,), -float("inf"), dtype=torch.float64).scatter_reduce_(0, ids, values, reduce="amax")
    count = torch.zeros(num, dtype=torch.long).index_add_(0, ids, torch.ones_like(ids))
    representative = torch.zeros(num, dtype=entry_group.dtype).scatter_(0, ids, entry_group)
    return representative[(lo == hi) & (count > 1)].sort().values
