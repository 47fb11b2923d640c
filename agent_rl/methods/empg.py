r"""EMPG: Entropy-Modulated Policy Gradients (ByteDance Seed; arXiv 2509.09265).

An advantage post-processor applied after a trajectory-level estimator (GRPO/DAPO). Each environment step
:math:`(i, t)` (one row) gets its step entropy :math:`H_{i,t}` (mean token entropy over that step's
response), min-max normalised over the whole batch of steps:

.. math::

    \tilde H_{i,t} = \frac{H_{i,t} - \min_{batch} H}{\max_{batch} H - \min_{batch} H + \epsilon}

    g(H_{i,t}) = \frac{\exp(-k \tilde H_{i,t})}
                      {\frac{1}{\sum_j T_j} \sum_{j} \sum_{t'=1}^{T_j} \exp(-k \tilde H_{j,t'})}
    \qquad \text{(self-calibrating scale; its mean over the batch's steps is 1)}

    f(H_{i,t+1}) = \exp(-k' \tilde H_{i,t+1}) \qquad (0 \text{ for a trajectory's last step})

    A_{mod}(i,t) = g(H_{i,t}) \cdot A^{(i)} + \zeta \cdot f(H_{i,t+1})

    A_{final}(i,t) = A_{mod}(i,t) - \frac{1}{\sum_j T_j} \sum_{j,t'} A_{mod}(j,t')

Symbols to arguments: :math:`A^{(i)}` = ``advantages`` (the trajectory advantage broadcast to each of its
step rows, e.g. verl's GRPO output), :math:`H` from ``token_entropy`` and ``response_mask``, :math:`i` =
``traj_id``, :math:`t` = ``turn``, :math:`k` = ``k``, :math:`k'` = ``k_next``, :math:`\zeta` = ``zeta``.

Shapes: ``advantages (rows,)`` or ``(rows, T)``; ``token_entropy, response_mask (rows, T)``;
``traj_id, turn (rows,) long``. The output has the shape of ``advantages``.

Hyperparameters: :math:`k = k' = 1` (the EMPG OpenReview reviews: "temperature parameters k and k′, both
fixed to 1"; ARLArena Table S1 also uses 1.0). :math:`\zeta`: **the EMPG paper's value was not found**
(no primary text or official code was available); the default ``zeta = 0.05`` is the value ARLArena
(arXiv 2602.21534, Table S1, and its ``compute_EMPG_advantage(..., zeta=0.05)``) used when re-implementing
EMPG. Another third-party implementation defaults to 0.1.

References:
    - "Harnessing Uncertainty: Entropy-Modulated Policy Gradients for Long-Horizon LLM
      Agents", arXiv 2509.09265 (2025).
    - ARLArena, arXiv 2602.21534, App. A.3.2 (Eqs. S20-S23), code ``recipe/*/ppo/core_algos.py``.

Deviations (choices the paper leaves open):
    1. The "batch" is exactly the rows passed in: all valid step rows of the training batch. Rows with an
       empty response mask (padding) are left out of the min-max, of g's mean and of the final mean, and
       their output advantage is 0.
    2. :math:`\epsilon = 10^{-8}` in the min-max (ARLArena's value); equal entropies give
       :math:`\tilde H = 0`, hence g = 1 and f = 1, never NaN.
    3. :math:`f` uses the same batch normalisation as :math:`g`. The next step is the row with
       ``turn + 1`` of the same trajectory; if that row is missing from the batch (filtered out) or has an
       empty response mask, f = 0 as for a last step.
    4. The final normalisation is mean subtraction only (the paper: "e.g., zero-mean"; ARLArena subtracts
       the mean, no std). ``center=False`` skips it.
    5. The mean is over steps (each valid row counts once, the same weighting as g's denominator). For
       ``(rows, T)`` advantages each row's value is its masked token mean, so a constant-per-row advantage
       gives the same result as the ``(rows,)`` form; the ``(rows, T)`` output is multiplied by the mask.
    6. Step entropy comes from whatever ``token_entropy`` the caller passes; we intend the old-policy
       entropy of the log-prob recomputation (as ARLArena's ``old_entropy``), computed in at least float32.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from agent_rl.rows import turns

__all__ = ["EMPGTerms", "empg_advantages", "empg_terms"]


class EMPGTerms(NamedTuple):
    """Per-row intermediate quantities of EMPG, all ``(rows,)``."""

    h_norm: torch.Tensor  # batch min-max normalised step entropy (0 for invalid rows)
    g: torch.Tensor  # self-calibrating scale (1 for invalid rows)
    f: torch.Tensor  # future-clarity bonus exp(-k' h_norm[next]) (0 for last steps and invalid rows)
    valid: torch.Tensor  # bool, the row has at least one response token


def empg_terms(
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    traj_id: torch.Tensor,
    turn: torch.Tensor,
    *,
    k: float = 1.0,
    k_next: float = 1.0,
    eps: float = 1e-8,
) -> EMPGTerms:
    r"""Compute :math:`\tilde H`, :math:`g` and :math:`f` for every step row (no advantages involved).

    Args:
        token_entropy: ``(rows, T)`` per-token entropy.
        response_mask: ``(rows, T)``.
        traj_id: ``(rows,)`` integer trajectory ids.
        turn: ``(rows,)`` integer turn index within the trajectory; ``(traj_id, turn)`` unique.
        k: temperature of the scale g.
        k_next: temperature of the future bonus f.
        eps: min-max epsilon.

    Returns:
        :class:`EMPGTerms`.
    """
    turns.check_2d("token_entropy", token_entropy)
    turns.check_same_shape("token_entropy", token_entropy, "response_mask", response_mask)
    rows = token_entropy.shape[0]
    turns.check_ids("traj_id", traj_id, rows)
    turns.check_ids("turn", turn, rows)
    mask = turns.as_bool_mask(response_mask)
    return _terms(token_entropy, mask, traj_id, turn, k=k, k_next=k_next, eps=eps)[0]


def _terms(
    token_entropy: torch.Tensor,
    mask: torch.Tensor,
    traj_id: torch.Tensor,
    turn: torch.Tensor,
    *,
    k: float,
    k_next: float,
    eps: float,
) -> tuple[EMPGTerms, torch.Tensor]:
    """:func:`empg_terms` on checked inputs and a bool mask; also returns the per-row token counts."""
    dt = turns.float_dtype(token_entropy)
    sums, cnt = turns.masked_row_sum_count(token_entropy.detach().to(dt), mask)
    h, valid = sums / cnt.clamp_min(1), cnt > 0
    h_norm = turns.minmax_normalize(h, None, valid, eps=eps)  # Eq. 12 (ARLArena numbering)
    e = torch.exp(-k * h_norm)
    denom = turns.segment_mean(e, None, valid)  # (1 / sum_j T_j) sum_{j,t'} exp(-k H~)
    g = torch.where(valid, e / denom.clamp_min(torch.finfo(dt).tiny), torch.ones_like(e))
    nxt = turns.next_step_index(traj_id, turn)
    has_next = nxt >= 0
    nxt_c = nxt.clamp_min(0)
    has_next = has_next & valid[nxt_c] & valid
    f = torch.where(has_next, torch.exp(-k_next * h_norm[nxt_c]), torch.zeros_like(h_norm))
    return EMPGTerms(h_norm=h_norm, g=g, f=f, valid=valid), cnt


def empg_advantages(
    advantages: torch.Tensor,
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    traj_id: torch.Tensor,
    turn: torch.Tensor,
    *,
    k: float = 1.0,
    k_next: float = 1.0,
    zeta: float = 0.05,
    center: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    r"""EMPG modulated advantage :math:`A_{final} = g\cdot A + \zeta f - \text{mean}`.

    Args:
        advantages: ``(rows,)`` trajectory advantage per step row, or ``(rows, T)`` token advantages.
        token_entropy: ``(rows, T)`` per-token entropy (detached inside).
        response_mask: ``(rows, T)``.
        traj_id: ``(rows,)`` integer trajectory ids.
        turn: ``(rows,)`` integer turn indices.
        k: :math:`k`, temperature of g (default 1).
        k_next: :math:`k'`, temperature of f (default 1).
        zeta: :math:`\zeta`, weight of the future-clarity bonus (default 0.05, ARLArena's value).
        center: subtract the batch mean over valid steps (default True).
        eps: min-max epsilon.

    Returns:
        Tensor shaped like ``advantages``, in its dtype; 0 on invalid rows (and masked tokens for 2-D).
    """
    turns.check_2d("token_entropy", token_entropy)
    rows = token_entropy.shape[0]
    if advantages.dim() == 1:
        turns.check_rows("advantages", advantages, rows)
    else:
        turns.check_2d("advantages", advantages)
        turns.check_same_shape("advantages", advantages, "token_entropy", token_entropy)
    turns.check_same_shape("token_entropy", token_entropy, "response_mask", response_mask)
    turns.check_ids("traj_id", traj_id, rows)
    turns.check_ids("turn", turn, rows)
    mask = turns.as_bool_mask(response_mask)
    terms, cnt = _terms(token_entropy, mask, traj_id, turn, k=k, k_next=k_next, eps=eps)
    dt = turns.float_dtype(advantages, token_entropy)
    a = advantages.to(dt)
    g, f, valid = terms.g.to(dt), terms.f.to(dt), terms.valid
    if a.dim() == 1:
        a_mod = g * a + zeta * f  # A_mod(i,t) = g(H_t) A + zeta f(H_{t+1})
        if center:
            a_mod = a_mod - turns.segment_mean(a_mod, None, valid)
        out = torch.where(valid, a_mod, torch.zeros_like(a_mod))
    else:
        # A_final = g A + (zeta f - mean), the mean taken over valid steps of each row's masked token mean of
        # A_mod, which is g * (masked token mean of A) + zeta f: A_mod itself is never materialised
        shift = zeta * f
        if center:
            a_bar = torch.where(mask, a, 0.0).sum(-1) / cnt.to(dt).clamp_min(1)
            shift = shift - turns.segment_mean(g * a_bar + shift, None, valid)
        out = torch.addcmul(shift[:, None], g[:, None], a)
        out = torch.where(mask, out, out.new_zeros(()), out=out)
    return out.to(advantages.dtype) if advantages.is_floating_point() else out
