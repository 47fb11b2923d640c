r"""Per-step ("turn") row helpers shared by the entropy methods.

Layout. One training row per environment step, as in verl-agent and our per-step agent loop: the prompt
is that step's observation, the response is one "think + action" turn. Every row carries

- ``traj_id (rows,) long``: which trajectory (episode) the row belongs to,
- ``turn (rows,) long``: the step index inside that trajectory (0-based),
- ``group_id (rows,) long``: the rollout group (verl's ``uid``: all trajectories sampled from one prompt),
- ``token_entropy (rows, T) float``: per-token policy entropy of the response tokens,
- ``response_mask (rows, T)``: 1 for response tokens that count, 0 for padding (any dtype; non-zero = 1).

Ids may be any integers (not necessarily contiguous); they are compacted with ``torch.unique``.

Step entropy (EMPG's :math:`H_{i,t}`, AEM's response entropy :math:`\bar H_{i,t}`) is the mean token
entropy over that step's response tokens:

.. math::  H_{i,t} = \frac{1}{|y_{i,t}|} \sum_{j \in y_{i,t}} H_j

Min-max normalisation (EMPG over the batch, AEM within a group):

.. math::  \tilde H = \frac{H - \min H}{\max H - \min H + \epsilon}

Conventions, for every function here: a row whose response mask is empty is *invalid*: it gets step
entropy 0, is left out of every min, max and mean, and gets normalised value 0. Nothing here divides by a
count that can be zero, so no function returns NaN for finite inputs. Everything is vectorised over rows
(sorts, ``scatter_reduce`` and ``index_add``); there is no Python loop over rows.

Deviations (choices the papers leave open):

- ``eps = 1e-8`` in the min-max denominator, as in the ARLArena EMPG code (arXiv 2602.21534); a zero range
  gives 0, never NaN.
- ``next_step_index`` returns the row with turn ``t + 1`` of the same trajectory; if that row is absent
  (filtered out, or the trajectory ended) it returns -1. With ``require_consecutive=False`` it returns the
  next *present* turn instead.
"""

from __future__ import annotations

import torch

__all__ = [
    "batch_token_mean",
    "compact_ids",
    "masked_row_mean",
    "masked_row_sum_count",
    "minmax_normalize",
    "next_step_index",
    "per_turn_token_mean",
    "segment_mean",
    "segment_min_max",
    "step_entropy",
]


# ----------------------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------------------


def check_2d(name: str, x: torch.Tensor) -> None:
    """Raise ValueError unless ``x`` is a 2-D tensor ``(rows, T)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (rows, T), got {tuple(x.shape)}")


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Raise ValueError unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} must have the same shape")


def check_rows(name: str, x: torch.Tensor, rows: int) -> None:
    """Raise ValueError unless ``x`` is a 1-D tensor of length ``rows``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 1 or x.shape[0] != rows:
        raise ValueError(f"{name} must have shape ({rows},), got {tuple(x.shape)}")


def check_ids(name: str, x: torch.Tensor, rows: int) -> None:
    """Raise ValueError unless ``x`` is a 1-D integer tensor of length ``rows``."""
    check_rows(name, x, rows)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor, got dtype {x.dtype}")


def as_bool_mask(response_mask: torch.Tensor) -> torch.Tensor:
    """``response_mask`` of any dtype as a bool tensor (non-zero = True)."""
    return response_mask if response_mask.dtype == torch.bool else response_mask != 0


def float_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """At least float32: the dtype the advantage transforms compute in (bf16/fp16 inputs are upcast)."""
    dt = torch.float32
    for t in tensors:
        if t.is_floating_point():
            dt = torch.promote_types(dt, t.dtype)
    return dt


# ----------------------------------------------------------------------------------------------------------
# ids and segments
# ----------------------------------------------------------------------------------------------------------


def compact_ids(ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Map arbitrary integer ids to ``0..n-1``.

    Args:
        ids: ``(rows,)`` integer tensor.

    Returns:
        ``(inverse, n)``: ``inverse (rows,) long`` with ``inverse[r]`` the compact id of row ``r`` (ordered
        like the sorted unique ids), and ``n`` the number of distinct ids.
    """
    uniq, inverse = torch.unique(ids, sorted=True, return_inverse=True)
    return inverse, int(uniq.numel())


def _segments(
    x: torch.Tensor, group_id: torch.Tensor | None, valid: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Checked ``valid`` mask, compact group index per row and number of groups (one if no group ids)."""
    rows = x.shape[0]
    check_rows("x", x, rows)
    valid = torch.ones(rows, dtype=torch.bool, device=x.device) if valid is None else valid
    check_rows("valid", valid, rows)
    if group_id is None:
        return valid, torch.zeros(rows, dtype=torch.long, device=x.device), 1
    check_ids("group_id", group_id, rows)
    inv, n = compact_ids(group_id)
    return valid, inv, n


def segment_min_max(
    x: torch.Tensor, group_id: torch.Tensor | None = None, valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row min and max of ``x`` over the row's group (the whole batch when ``group_id`` is None).

    Args:
        x: ``(rows,)`` values.
        group_id: ``(rows,)`` integer group ids, or None for one batch-wide group.
        valid: ``(rows,)`` bool; invalid rows are ignored. Default: all valid.

    Returns:
        ``(lo, hi)``, each ``(rows,)``: the group's min and max broadcast back to its rows. A group with no
        valid row gets ``lo = hi = 0``.
    """
    valid, inv, n = _segments(x, group_id, valid)
    vi, vx = inv[valid], x[valid]
    lo = torch.zeros(n, dtype=x.dtype, device=x.device).scatter_reduce(0, vi, vx, "amin", include_self=False)
    hi = torch.zeros(n, dtype=x.dtype, device=x.device).scatter_reduce(0, vi, vx, "amax", include_self=False)
    return lo[inv], hi[inv]


def segment_mean(
    x: torch.Tensor, group_id: torch.Tensor | None = None, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-row mean of ``x`` over the valid rows of the row's group (batch when ``group_id`` is None).

    Args:
        x: ``(rows,)`` values.
        group_id: ``(rows,)`` integer group ids, or None for one batch-wide group.
        valid: ``(rows,)`` bool; invalid rows are ignored. Default: all valid.

    Returns:
        ``(rows,)``: the group mean broadcast back to its rows; 0 for a group with no valid row.
    """
    valid, inv, n = _segments(x, group_id, valid)
    w = valid.to(x.dtype)
    sums = torch.zeros(n, dtype=x.dtype, device=x.device).index_add(0, inv, torch.where(valid, x, 0.0))
    cnts = torch.zeros(n, dtype=x.dtype, device=x.device).index_add(0, inv, w)
    return (sums / cnts.clamp_min(1))[inv]


# ----------------------------------------------------------------------------------------------------------
# per-row reductions
# ----------------------------------------------------------------------------------------------------------


def masked_row_mean(x: torch.Tensor, response_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``x`` over each row's masked tokens.

    Args:
        x: ``(rows, T)`` values (may require grad; masked-out entries may hold anything, even NaN).
        response_mask: ``(rows, T)``, non-zero = token counts.

    Returns:
        ``(mean, valid)``: ``mean (rows,)`` (0 for an empty row) and ``valid (rows,) bool`` (row has at least
        one token).
    """
    check_2d("x", x)
    check_same_shape("x", x, "response_mask", response_mask)
    sums, cnt = masked_row_sum_count(x, as_bool_mask(response_mask))
    return sums / cnt.clamp_min(1), cnt > 0


def masked_row_sum_count(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row sum of ``x (rows, T)`` over the bool ``mask`` and the per-row token count (float, x's dtype).

    Masked-out entries of ``x`` may hold anything. The count is exact below 2**24 tokens per row.
    """
    sums = torch.where(mask, x, 0.0).sum(-1)
    return sums, mask.sum(-1, dtype=sums.dtype)  # a float count: much faster than a bool reduction


def step_entropy(token_entropy: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    r"""Step entropy :math:`H_{i,t}`: mean token entropy over the step's response tokens.

    Args:
        token_entropy: ``(rows, T)`` per-token entropy.
        response_mask: ``(rows, T)``.

    Returns:
        ``(rows,)`` step entropy, 0 for rows with an empty mask (use ``response_mask.sum(-1) > 0`` for
        validity).
    """
    return masked_row_mean(token_entropy, response_mask)[0]


def batch_token_mean(token_entropy: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    r"""Token-level mean over all masked tokens of the batch: EPO's per-step :math:`\bar H_k`.

    Returns a 0-d tensor; 0 when the mask is empty.
    """
    check_2d("token_entropy", token_entropy)
    check_same_shape("token_entropy", token_entropy, "response_mask", response_mask)
    m = as_bool_mask(response_mask)
    total = torch.where(m, token_entropy, 0.0).sum()
    return total / m.sum(dtype=total.dtype).clamp_min(1)


def per_turn_token_mean(
    token_entropy: torch.Tensor, response_mask: torch.Tensor, turn: torch.Tensor, num_turns: int | None = None
) -> torch.Tensor:
    """Token-level mean entropy of all rows with turn index ``t``, for each ``t``.

    This is what EPO's released code logs after every environment step (``step_entropy_list``): the
    batch-mean entropy of that turn's responses.

    Args:
        token_entropy: ``(rows, T)``.
        response_mask: ``(rows, T)``.
        turn: ``(rows,)`` non-negative integer turn indices.
        num_turns: length of the result; default ``max(turn) + 1`` (0 for an empty batch).

    Returns:
        ``(num_turns,)``: entry ``t`` is the token mean over rows with ``turn == t`` (0 if there is none).
        Rows with ``turn >= num_turns`` are ignored.
    """
    check_2d("token_entropy", token_entropy)
    check_same_shape("token_entropy", token_entropy, "response_mask", response_mask)
    rows = token_entropy.shape[0]
    check_ids("turn", turn, rows)
    if rows and int(turn.min()) < 0:
        raise ValueError("turn must be non-negative")
    if num_turns is None:
        num_turns = int(turn.max()) + 1 if rows else 0
    m = as_bool_mask(response_mask)
    keep = turn < num_turns
    sums = torch.where(m, token_entropy, 0.0).sum(-1)[keep]
    cnts = m.sum(-1, dtype=sums.dtype)[keep]
    t = turn[keep].long()
    s = torch.zeros(num_turns, dtype=sums.dtype, device=sums.device).index_add(0, t, sums)
    c = torch.zeros(num_turns, dtype=sums.dtype, device=sums.device).index_add(0, t, cnts)
    return s / c.clamp_min(1)


def minmax_normalize(
    x: torch.Tensor,
    group_id: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    r"""Min-max normalisation :math:`(x - \min)/(\max - \min + \epsilon)` over the batch or within groups.

    Args:
        x: ``(rows,)``.
        group_id: ``(rows,)`` integer group ids; None normalises over the whole batch.
        valid: ``(rows,)`` bool; invalid rows are excluded from min/max and get 0.
        eps: added to the range; a zero range gives 0 for every row.

    Returns:
        ``(rows,)`` in ``[0, 1)``.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    lo, hi = segment_min_max(x, group_id, valid)
    rng = hi - lo
    out = (x - lo) / (rng + eps)
    out = torch.where(rng > 0, out, torch.zeros_like(out))  # zero range -> 0 even when eps == 0
    if valid is not None:
        out = torch.where(valid, out, torch.zeros_like(out))
    return out


def next_step_index(
    traj_id: torch.Tensor, turn: torch.Tensor, require_consecutive: bool = True
) -> torch.Tensor:
    """Row index of the next step of the same trajectory.

    Args:
        traj_id: ``(rows,)`` integer trajectory ids.
        turn: ``(rows,)`` integer turn indices; ``(traj_id, turn)`` pairs must be unique.
        require_consecutive: if True the next step is the row with ``turn + 1``; otherwise the row with the
            smallest larger turn of the same trajectory.

    Returns:
        ``(rows,) long``: index of the next step's row, or -1 when there is none (a trajectory's last step).

    Raises:
        ValueError: on shape mismatch or duplicate ``(traj_id, turn)`` pairs.
    """
    rows = traj_id.shape[0] if isinstance(traj_id, torch.Tensor) and traj_id.dim() == 1 else -1
    if rows < 0:
        raise ValueError(f"traj_id must have shape (rows,), got {tuple(getattr(traj_id, 'shape', ()))}")
    check_ids("traj_id", traj_id, rows)
    check_ids("turn", turn, rows)
    out = torch.full((rows,), -1, dtype=torch.long, device=traj_id.device)
    if rows < 2:
        return out
    # lexicographic sort by (traj_id, turn): stable sort by turn, then stable sort by traj_id
    order = torch.argsort(turn, stable=True)
    order = order[torch.argsort(traj_id[order], stable=True)]
    st, tt = traj_id[order], turn[order]
    same = st[1:] == st[:-1]
    if bool((same & (tt[1:] == tt[:-1])).any()):
        raise ValueError("duplicate (traj_id, turn) pairs: each trajectory step must be one row")
    has_next = same & (tt[1:] == tt[:-1] + 1) if require_consecutive else same
    nxt_sorted = torch.full((rows,), -1, dtype=torch.long, device=traj_id.device)
    nxt_sorted[:-1] = torch.where(has_next, order[1:], torch.full_like(order[1:], -1))
    out[order] = nxt_sorted
    return out
