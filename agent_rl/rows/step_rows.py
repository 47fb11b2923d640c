"""Step rows: the per-row ids and rewards of a batch in which every row is one environment step, and the
trajectory returns both the base algorithms (`agent_rl.algos`) and the methods (`agent_rl.methods`) read.

A row carries its trajectory, its step index inside it, its rollout group (verl's uid), the trajectory's
outcome reward :math:`R` and its own invalid-action penalty :math:`p`; the return of trajectory :math:`i` is
:math:`G_i = R_i - p \\cdot \\#\\{\text{invalid steps of } i\\}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from agent_rl.rows.turns import compact_ids


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


def first_step_rows(traj_id: torch.Tensor, turn: torch.Tensor) -> torch.Tensor:
    """Index of each trajectory's row with the smallest turn (ties: the earliest row), ``(num_traj,)``."""
    traj_index, num_traj = compact_ids(traj_id)
    # one sortable key per row: turn first, row index second
    key = turn.to(torch.long) * (len(turn) + 1) + torch.arange(len(turn))
    best = torch.full((num_traj,), torch.iinfo(torch.long).max, dtype=torch.long).scatter_reduce_(
        0, traj_index, key, reduce="amin"
    )
    return best % (len(turn) + 1)


@dataclass(frozen=True)
class StepRows:
    """Per-row ids and rewards of a batch of step rows, as tensors ``(rows,)``."""

    traj: torch.Tensor  # trajectory (any integers)
    turn: torch.Tensor  # step index inside the trajectory
    group: torch.Tensor  # rollout group (verl's uid)
    outcome: torch.Tensor  # the trajectory's outcome reward R
    penalty: torch.Tensor  # this step's invalid-action penalty

    def __post_init__(self):
        fields = (self.traj, self.turn, self.group, self.outcome, self.penalty)
        if not (all(t.shape == self.outcome.shape for t in fields) and self.outcome.dim() == 1):
            raise ValueError("traj, turn, group, outcome and penalty must all have shape (rows,)")

    @classmethod
    def from_fields(cls, extra: list[dict[str, Any]], uids: list[str], real: torch.Tensor) -> StepRows:
        """From the rows' ``extra_fields`` (our agent loop's), verl's uids and which rows are real steps."""
        # a padding row (verl copies row 0's fields into it) is a trajectory of its own
        traj_keys = [
            e.get("trajectory_id") if r else ("padding", i)
            for i, (e, r) in enumerate(zip(extra, real.tolist(), strict=True))
        ]
        trajs = {t: i for i, t in enumerate(dict.fromkeys(traj_keys))}
        groups = {u: i for i, u in enumerate(dict.fromkeys(uids))}
        keep = real.float()
        return cls(
            traj=torch.tensor([trajs[t] for t in traj_keys], dtype=torch.long),
            turn=torch.tensor([int(e.get("turn", 0)) for e in extra], dtype=torch.long),
            group=torch.tensor([groups[u] for u in uids], dtype=torch.long),
            outcome=torch.tensor([float(e.get("episode_return", 0.0)) for e in extra]) * keep,
            penalty=torch.tensor([float(e.get("step_penalty", 0.0)) for e in extra]) * keep,
        )
