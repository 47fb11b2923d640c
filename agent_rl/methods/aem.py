r"""AEM: Adaptive Entropy Modulation (Zhao et al., Baidu/Tsinghua/Fudan; arXiv 2605.00425).

The action unit is a whole environment-reactive response, i.e. one step row. AEM rescales each step's
advantage by a response-level uncertainty proxy normalised within its rollout group:

.. math::

    \bar H_{i,t} = \frac{1}{|y_{i,t}|} \sum_{j \in y_{i,t}} H_j
    \qquad \text{(length-normalised token entropy of the response)}

    \tilde H_{i,t} = \frac{\bar H_{i,t} - \min_{G} \bar H}{\max_{G} \bar H - \min_{G} \bar H + \epsilon}

    \alpha_{i,t} = \frac{\exp(-\lambda \tilde H_{i,t})}{\operatorname{mean}_{G} \exp(-\lambda \tilde H)},
    \qquad \alpha_{i,t} = 1 \text{ if } \max_G \bar H - \min_G \bar H < \delta

    A^{AEM}_{i,t} = \alpha_{i,t} \, A^{base}_{i,t}

:math:`\alpha > 0`, so every advantage keeps its sign. The motivating theorem (natural-gradient view) says
the entropy drift induced by a sampled response :math:`a` is :math:`A(a,s)\,(S(a|s) - H_{resp}(s))`,
with :math:`S = -\log\pi(a|s)` the response surprisal; :func:`relative_surprisal` computes that
diagnostic.

Symbols to arguments: :math:`A^{base}` = ``advantages``; :math:`\bar H` from ``token_entropy`` and
``response_mask``; :math:`G` = the rows sharing ``group_id`` (verl's ``uid``); :math:`\lambda` = ``lam``
(1 in the paper's experiments); :math:`\delta` = ``min_range`` (0.1).

Shapes: ``advantages (rows,)`` or ``(rows, T)``; ``token_entropy, response_mask, log_prob (rows, T)``;
``group_id (rows,) long``.

References:
    - Zhao et al., "AEM: Adaptive Entropy Modulation for Multi-Turn Agentic Reinforcement Learning",
      arXiv 2605.00425 (v3, May 2026). No official code was found; the equations above come from the
      abstract and two consistent secondary summaries of v3 (see ``methods.md`` §4).

Deviations (choices the paper leaves open, or that we could not check against the paper text):
    1. A group is all step rows sharing ``group_id`` (every step of every trajectory sampled from one
       prompt), as verl-agent's GRPO with ``compute_mean_std_cross_all_data=True``; not grouped by turn.
    2. The dead-zone test uses the raw (un-normalised) range of :math:`\bar H` in nats: ``max - min <
       min_range`` gives :math:`\alpha = 1` for the whole group. Groups with one valid row fall in it.
    3. :math:`\epsilon = 10^{-8}` in the min-max (irrelevant outside the dead zone, since the range is then
       at least ``min_range``).
    4. Rows with an empty response mask are excluded from the group statistics and get :math:`\alpha = 1`
       (their advantage is returned unchanged).
    5. ``(rows, T)`` advantages are multiplied by the row's :math:`\alpha` token-wise; no mask is applied
       (zeros stay zeros).
    6. :func:`relative_surprisal` defaults to length-normalised quantities (mean token surprisal minus mean
       token entropy, matching the proxy :math:`\bar H`); ``reduction="sum"`` gives the response-level
       :math:`S(a|s) - \sum_j H_j`, whose expectation over :math:`a` is 0 by the chain rule.
"""

from __future__ import annotations

import torch

from agent_rl.rows import turns

__all__ = ["aem_advantages", "aem_weights", "relative_surprisal"]


def aem_weights(
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    group_id: torch.Tensor,
    *,
    lam: float = 1.0,
    min_range: float = 0.1,
    eps: float = 1e-8,
) -> torch.Tensor:
    r"""AEM coefficient :math:`\alpha_{i,t}` per step row.

    Args:
        token_entropy: ``(rows, T)`` per-token entropy (detached inside).
        response_mask: ``(rows, T)``.
        group_id: ``(rows,)`` integer rollout-group ids.
        lam: :math:`\lambda` (default 1).
        min_range: :math:`\delta`; groups whose entropy range is below it get :math:`\alpha = 1` (0.1).
        eps: min-max epsilon.

    Returns:
        ``(rows,)`` strictly positive weights, float32 or wider; the mean over each group's valid rows is 1.
    """
    turns.check_2d("token_entropy", token_entropy)
    turns.check_same_shape("token_entropy", token_entropy, "response_mask", response_mask)
    rows = token_entropy.shape[0]
    turns.check_ids("group_id", group_id, rows)
    if min_range < 0:
        raise ValueError(f"min_range must be >= 0, got {min_range}")
    dt = turns.float_dtype(token_entropy)
    h, valid = turns.masked_row_mean(token_entropy.detach().to(dt), response_mask)  # \bar H_{i,t}
    lo, hi = turns.segment_min_max(h, group_id, valid)
    h_norm = turns.minmax_normalize(h, group_id, valid, eps=eps)  # \tilde H within the group
    e = torch.exp(-lam * h_norm)
    denom = turns.segment_mean(e, group_id, valid)
    alpha = e / denom.clamp_min(torch.finfo(dt).tiny)
    live = valid & ((hi - lo) >= min_range)  # dead zone: range < min_range -> alpha = 1
    return torch.where(live, alpha, torch.ones_like(alpha))


def aem_advantages(
    advantages: torch.Tensor,
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    group_id: torch.Tensor,
    *,
    lam: float = 1.0,
    min_range: float = 0.1,
    eps: float = 1e-8,
) -> torch.Tensor:
    r"""AEM advantage :math:`A^{AEM} = \alpha \cdot A^{base}` (sign kept).

    Args:
        advantages: ``(rows,)`` or ``(rows, T)`` base advantages (GRPO/DAPO/GSPO output).
        token_entropy: ``(rows, T)``.
        response_mask: ``(rows, T)``.
        group_id: ``(rows,)`` integer rollout-group ids.
        lam, min_range, eps: see :func:`aem_weights`.

    Returns:
        Tensor shaped like ``advantages``, in its dtype.
    """
    turns.check_2d("token_entropy", token_entropy)
    rows = token_entropy.shape[0]
    if advantages.dim() == 1:
        turns.check_rows("advantages", advantages, rows)
    else:
        turns.check_2d("advantages", advantages)
        turns.check_same_shape("advantages", advantages, "token_entropy", token_entropy)
    alpha = aem_weights(token_entropy, response_mask, group_id, lam=lam, min_range=min_range, eps=eps)
    dt = turns.float_dtype(advantages, alpha)
    out = advantages.to(dt) * (alpha.to(dt) if advantages.dim() == 1 else alpha.to(dt)[:, None])
    return out.to(advantages.dtype) if advantages.is_floating_point() else out


def relative_surprisal(
    log_prob: torch.Tensor,
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Relative surprisal :math:`S(a|s) - H_{resp}(s)` of each sampled response (AEM's diagnostic).

    Args:
        log_prob: ``(rows, T)`` log-probability of each sampled token.
        token_entropy: ``(rows, T)`` entropy of the token distribution at each position.
        response_mask: ``(rows, T)``.
        reduction: ``"mean"`` (length-normalised, default) or ``"sum"`` (response level).

    Returns:
        ``(rows,)``; 0 for rows with an empty mask.
    """
    turns.check_2d("log_prob", log_prob)
    turns.check_same_shape("log_prob", log_prob, "token_entropy", token_entropy)
    turns.check_same_shape("log_prob", log_prob, "response_mask", response_mask)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    dt = turns.float_dtype(log_prob, token_entropy)
    diff = -log_prob.detach().to(dt) - token_entropy.detach().to(dt)  # token surprisal minus entropy
    if reduction == "mean":
        return turns.masked_row_mean(diff, response_mask)[0]
    return torch.where(turns.as_bool_mask(response_mask), diff, 0.0).sum(-1)
