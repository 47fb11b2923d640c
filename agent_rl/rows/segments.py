r"""Turn segments: the rows of a trajectory-layout batch (``agent.rows=trajectory``) cut into one segment per
environment turn, so that everything written for step rows (the base advantages, every method's hooks, the
per-turn entropies) runs on segments unchanged, and the results go back to the trajectory rows.

A trajectory row's response holds every turn's generated tokens (response mask 1) with the environment's
tokens between them (mask 0); ``token_turn (rows, T)`` gives each token's turn (-1 on padding). Segment
:math:`s` of row :math:`r` and turn :math:`k` is the mask :math:`m_s = m_r \cdot [\text{turn} = k]`. Masks
of the segments of one row are disjoint and add up to the row's mask, so a per-token quantity of the
segments collapses back to the row by addition (`collapse`), and a per-segment one to a per-row one by its
token-weighted mean (`collapse_rows`).

The per-turn fields the agent loop recorded as lists on the trajectory row (``turn_valid``,
``turn_penalty``, ``turn_anchor``, ``turn_action``, ``turn_calls``) become each segment's step fields
(`segment_extras`): a segment reads as the step row of the step layout would. The trajectory's outcome
stays on every segment (as on every step row); its invalid-action penalties are each segment's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# per-turn lists on a trajectory row -> the step row field each segment gets
TURN_FIELDS = {
    "turn_valid": "action_valid",
    "turn_reason": "invalid_reason",
    "turn_penalty": "step_penalty",
    "turn_anchor": "anchor_obs",
    "turn_action": "action",
    "turn_calls": "calls",
    "turn_tool_calls": "tool_calls",
    "turn_tool_results": "tool_results",
}


@dataclass(frozen=True)
class Segments:
    """``row (S,)``: each segment's trajectory row; ``turn (S,)``: its turn; ``mask (S, T)``: its tokens."""

    row: torch.Tensor
    turn: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.row)


def token_turns(extra: list[dict[str, Any]], width: int) -> torch.Tensor:
    """``(rows, width)`` long: each row's ``extra_fields["token_turn"]``, padded with -1."""
    out = torch.full((len(extra), width), -1, dtype=torch.long)
    for i, e in enumerate(extra):
        turns = list(e.get("token_turn") or [])[:width]
        if turns:
            out[i, : len(turns)] = torch.tensor(turns, dtype=torch.long)
    return out


def cut(token_turn: torch.Tensor, mask: torch.Tensor, num_turns: list[int]) -> Segments:
    """The segments of each row: one per turn ``0 .. num_turns[r] - 1`` (a turn whose tokens were cut off by
    the response budget keeps an empty segment, so that every recorded turn is a step row).

    Args: ``token_turn (rows, T)``, ``mask (rows, T)``, ``num_turns`` per row (0 for verl's padding rows,
    which then get one empty segment of turn 0, as a padding step row).
    """
    rows, turns = [], []
    for r, n in enumerate(num_turns):
        for k in range(max(int(n), 1)):
            rows.append(r)
            turns.append(k)
    row = torch.tensor(rows, dtype=torch.long)
    turn = torch.tensor(turns, dtype=torch.long)
    seg_mask = mask[row] * (token_turn[row] == turn.unsqueeze(1)).to(mask.dtype)
    return Segments(row=row, turn=turn, mask=seg_mask)


def expand(x: torch.Tensor, seg: Segments) -> torch.Tensor:
    """A per-row tensor ``(rows, ...)`` on the segments ``(S, ...)`` (each segment gets its row's)."""
    return x[seg.row]


def collapse(x: torch.Tensor, seg: Segments, rows: int) -> torch.Tensor:
    """Per-token values of the segments ``(S, T)`` back on the rows ``(rows, T)``: each token takes its own
    segment's value (masks are disjoint); tokens outside every segment get 0."""
    out = torch.zeros((rows, *x.shape[1:]), dtype=x.dtype)
    return out.index_add_(0, seg.row, x * seg.mask.to(x.dtype))


def collapse_rows(x: torch.Tensor, seg: Segments, rows: int) -> torch.Tensor:
    """A per-segment value ``(S,)`` as a per-row one ``(rows,)``: the mean over the row's segments weighted
    by their tokens (a row whose segments have no token: their plain mean)."""
    weight = seg.mask.sum(1).to(x.dtype)
    total = torch.zeros(rows, dtype=x.dtype).index_add_(0, seg.row, weight)
    plain = torch.zeros(rows, dtype=x.dtype).index_add_(0, seg.row, torch.ones_like(x))
    weighted = torch.zeros(rows, dtype=x.dtype).index_add_(0, seg.row, x * weight)
    mean = torch.zeros(rows, dtype=x.dtype).index_add_(0, seg.row, x) / plain.clamp(min=1)
    return torch.where(total > 0, weighted / total.clamp(min=1e-12), mean)


def last_tokens(mask: torch.Tensor) -> torch.Tensor:
    """``(n,)`` the index of each row's last token under ``mask (n, T)`` (0 for an empty row)."""
    positions = torch.arange(mask.shape[1]).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.zeros_like(positions)).amax(1)


def turn_fields(fields: dict[str, Any], k: int) -> dict[str, Any]:
    """A trajectory row's ``extra_fields`` as its turn ``k``'s step row: ``turn`` and `TURN_FIELDS`."""
    out = {**fields, "turn": k}
    for source, target in TURN_FIELDS.items():
        values = fields.get(source)
        if isinstance(values, list | tuple) and k < len(values):
            out[target] = values[k]
    return out


def segment_extras(extra: list[dict[str, Any]], seg: Segments) -> list[dict[str, Any]]:
    """Each segment's ``extra_fields``: its row's, as its turn's step row (`turn_fields`), with the
    outcome as the last step's environment reward."""
    out = []
    for r, k in zip(seg.row.tolist(), seg.turn.tolist(), strict=True):
        e = turn_fields(extra[r], k)
        last = k == int(e.get("num_steps", 1)) - 1
        e["env_reward"] = float(e.get("episode_return", 0.0)) if last else 0.0
        out.append(e)
    return out
