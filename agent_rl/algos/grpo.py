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

from agent_rl.rows.step_rows import StepRows, first_step_rows, trajectory_returns
from agent_rl.rows.turns import compact_ids

GROUP_STATS = ("step_rows", "trajectory_rows", "trajectory")
# Estimator names agent_rl registers for its methods (agent_rl.training.verl_plugin): each computes GRPO's
# advantage, which the trainer then replaces by GRPO over the step rows (it treats them as "grpo").
GRPO_BASED_ESTIMATORS = ("empg", "aem")


def _check(group_stats: str) -> None:
    if group_stats not in GROUP_STATS:
        raise ValueError(f"unknown group_stats {group_stats!r}; valid: {', '.join(GROUP_STATS)}")


def group_entries(
    rows: StepRows, group_stats: str = "step_rows"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The entries :math:`E_g` the group statistics are taken over (module docstring), and the value each
    row is normalised with.

    Returns ``values (E,)`` and ``entry_group (E,)`` (as in ``rows.group``), ``row_value (rows,)``; float64.
    """
    _check(group_stats)
    outcome = rows.outcome.to(torch.float64)
    if group_stats == "trajectory":
        returns, traj_index, first_row = trajectory_returns(outcome, rows.penalty, rows.traj)
        return returns, rows.group[first_row], returns[traj_index]
    scores = outcome - rows.penalty.to(torch.float64)
    if group_stats == "step_rows":
        return scores, rows.group, scores
    first = first_step_rows(rows.traj, rows.turn)
    return scores[first], rows.group[first], scores


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
    rows: StepRows, *, group_stats: str = "step_rows", norm_by_std: bool = True, eps: float = 1e-6
) -> torch.Tensor:
    """GRPO advantage of each step row under ``group_stats`` (see module docstring): ``(rows,)`` float32."""
    _check(group_stats)
    if rows.outcome.numel() == 0:
        return rows.outcome.clone().float()
    values, entry_group, row_value = group_entries(rows, group_stats)
    groups, num_groups = compact_ids(torch.cat([rows.group, entry_group]))
    row_group, entry_group = groups[: len(rows.group)], groups[len(rows.group) :]
    mean, std, count = group_mean_std(values, entry_group, num_groups)
    singleton = count < 2
    if group_stats == "trajectory":  # a lone trajectory gets 0
        adv = torch.where(singleton[row_group], 0.0, row_value - mean[row_group])
    else:  # verl-agent: a lone entry has mean 0 and std 1
        adv = row_value - torch.where(singleton, 0.0, mean)[row_group]
        std = torch.where(singleton, 1.0, std)
    if norm_by_std:
        adv = adv / (std[row_group] + eps)
    return adv.to(torch.float32)


def groups_without_signal(rows: StepRows, group_stats: str = "step_rows") -> torch.Tensor:
    r"""The ``rows.group`` values that DAPO's dynamic sampling drops, on the chosen statistics: groups with
    more than one entry, all equal (verl's rule, ``len > 1 and std == 0``), so that every GRPO advantage of
    the group is 0. Returns a sorted 1-D tensor.

    Under ``trajectory_rows`` that means all *row* scores equal, as under ``step_rows``: equal first-step
    entries alone leave a later invalid row with :math:`(s - \text{mean}) / \epsilon`.
    """
    _check(group_stats)
    values, entry_group, _ = group_entries(
        rows, "step_rows" if group_stats == "trajectory_rows" else group_stats
    )
    if values.numel() == 0:
        return entry_group
    ids, num = compact_ids(entry_group)
    lo = torch.full((num,), float("inf"), dtype=torch.float64).scatter_reduce_(0, ids, values, reduce="amin")
    hi = torch.full((num,), -float("inf"), dtype=torch.float64).scatter_reduce_(0, ids, values, reduce="amax")
    count = torch.zeros(num, dtype=torch.long).index_add_(0, ids, torch.ones_like(ids))
    representative = torch.zeros(num, dtype=entry_group.dtype).scatter_(0, ids, entry_group)
    return representative[(lo == hi) & (count > 1)].sort().values
