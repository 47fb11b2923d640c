r"""EPO: Entropy-regularised Policy Optimisation for LLM agents (Xu et al.; arXiv 2509.22576).

EPO adds to the multi-turn PPO/GRPO loss :math:`L_{MT}` an entropy bonus averaged hierarchically over
trajectories, turns and tokens, minus a smoothing penalty that keeps token entropy inside a corridor
around the historical mean entropy, weighted by a phase schedule (paper §4, Eqs. 2-6):

.. math::

    L_H = \frac{1}{B}\sum_{j=1}^{B} \frac{1}{T_j}\sum_{t=1}^{T_j} \frac{1}{|\tau_{j,t}|}
          \sum_{i \in \tau_{j,t}} H_{j,t,i}                                                    \quad (2)

    \bar H_W^k = \frac{1}{k}\sum_{m<k} \bar H_m  \qquad (\bar H_m: \text{token-mean entropy of RL step } m)

    P_{j,t,i} = [\kappa_l \bar H_W^k - H_{j,t,i}]_+ + [H_{j,t,i} - \kappa_r \bar H_W^k]_+          \quad (3)

    L_{smooth} = \frac{1}{B}\sum_j \frac{1}{T_j}\sum_t \frac{1}{|\tau_{j,t}|}\sum_i \alpha P_{j,t,i} \; (4)

    \beta_k = 1 + \exp(-\gamma k / k_{mid}), \quad k_{mid} = \lfloor K/2 \rfloor               \quad (5)

    L_{EPO} = L_{MT} - \lambda \left[ L_H - \beta_k L_{smooth} \right]                        \quad (6)

with :math:`L_{smooth} = 0` at :math:`k = 0` (empty history).

Symbols to arguments: :math:`H` = ``token_entropy (rows, T)``, the *live, differentiable* entropy of the
actor forward pass; :math:`\tau_{j,t}` = the masked tokens of the row with trajectory ``traj_id`` = j and
turn t (one row per step); :math:`\bar H_W^k` = ``reference`` (from :class:`EntropyHistory`);
:math:`\lambda` = ``entropy_coeff`` (0.001); :math:`\kappa_l, \kappa_r` = ``kappa_l, kappa_r`` (0, 2);
:math:`\gamma` = ``gamma`` (3); :math:`\alpha` = ``alpha`` (0.05 ScienceWorld, 0.1 ALFWorld; the row the
paper's Tables 2-3 label "λk", which matches the code's ``entropy_smooth_out_range_penalty``);
:math:`k` = ``step`` (0-based RL step), :math:`K` = ``total_steps`` (125 ScienceWorld, 150 ALFWorld).

``epo_regularizer`` returns :math:`R = -\lambda [L_H - \beta_k L_{smooth}]`, so the actor loss is
``pg_loss + R`` (``epo_loss`` does that addition).

``variant="released"`` reproduces what the authors' code (github.com/WujiangXu/EPO @ 5b6fa98,
``verl/workers/actor/dp_actor.py``, ``ray_trainer.py``, ``rollout_loop.py``) does instead; see methods.md
§2.3:

    1. The smoothing term is a *constant*: ``generate_entropy_penalty`` returns ``α`` for tokens outside the
       open corridor ``κ_l H̄ < H < κ_r H̄`` and 0 inside, so it shifts the loss value but has no gradient.
    2. The reference is per turn index: the cumulative mean over RL steps of per-turn batch-mean entropies,
       each step's list left-padded with zeros to ``max_steps`` (misaligning turns when episodes end
       early), indexed by the row's turn. Use :meth:`EntropyHistory.reference_for_rows`. The released
       trainer appends the current step's entropies *before* the update, so its reference includes step k.
    3. Smoothing is gated: it applies to the whole micro-batch only if some row has turn >= 25
       (``config.get("max_step", 50) // 2``; the config key is really ``max_steps``, so it is always 25).
    4. The phase weight is :func:`released_phase_weight` with ``max_epochs`` hard-coded to 150 (1 → ~0.83
       over the first half, then ``0.8·exp(-3p)`` down to ~0.04); ``total_steps`` and ``gamma`` are ignored.
    5. (Not a tensor matter, not reproduced:) the PPO branch of ``general_running_server.sh`` never enables
       smoothing, so "PPO + EPO" there ran PPO + entropy bonus.
    6. Aggregation is verl's ``token-mean`` over the micro-batch for both terms, not the hierarchical mean.

    Also seen in that code, not reproduced: the per-turn means are taken over every environment of the
    batch, finished ones included; and with an empty history ``generate_entropy_penalty`` returns one
    tensor where its caller unpacks two (unreachable, since the trainer appends before updating).

References:
    - Xu et al., "EPO: Entropy-regularized Policy Optimization for LLM Agents Reinforcement Learning",
      arXiv 2509.22576 (v2, Feb 2026), §4, Alg. 1, App. B.1.4 Tables 2-3, App. C.

Deviations (choices the paper leaves open):
    1. The hierarchical means run over the rows passed in (one micro-batch in verl), not over whole
       trajectories of the RL batch; a trajectory's :math:`T_j` is its number of rows present. Rows with
       an empty mask do not count as turns; trajectories with no valid row do not count in :math:`B`.
    2. :math:`\bar H_m` is the token mean over all response tokens of step m's training batch, from the
       old-policy log-prob recomputation (:func:`agent_rl.rows.turns.batch_token_mean`).
    3. The reference is detached (a constant of the loss); the corridor is closed in the paper variant
       (the hinge is 0 exactly on the bounds).
    4. :math:`k_{mid} = \max(1, \lfloor K/2 \rfloor)` so that K = 1 does not divide by zero; :math:`k` is
       not clamped to K.
    5. ``epo/penalised_share`` counts masked tokens only (the released code's ratio counts padding too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from agent_rl.rows import turns

__all__ = [
    "EntropyHistory",
    "epo_loss",
    "epo_regularizer",
    "hierarchical_mean",
    "hierarchical_weights",
    "phase_weight",
    "released_phase_weight",
    "smoothing_penalty",
    "token_mean",
]

VARIANTS = ("paper", "released")


def hierarchical_weights(
    response_mask: torch.Tensor, traj_id: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    r"""Token weights :math:`w_{j,t,i} = 1 / (B\,T_j\,|\tau_{j,t}|)` on masked tokens, 0 elsewhere.

    ``(w * x).sum()`` is the hierarchical mean of Eqs. 2 and 4; the weights sum to 1 (0 if no token).

    Args:
        response_mask: ``(rows, T)``.
        traj_id: ``(rows,)`` integer trajectory ids; each row is one turn of its trajectory.
        dtype: floating dtype of the result.

    Returns:
        ``(rows, T)`` weights (no gradient).
    """
    turns.check_2d("response_mask", response_mask)
    turns.check_ids("traj_id", traj_id, response_mask.shape[0])
    return _weights_from_float_mask(turns.as_bool_mask(response_mask).to(dtype), traj_id)[0]


def _weights_from_float_mask(mf: torch.Tensor, traj_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hierarchical token weights from a 0/1 float mask, and the per-row token counts."""
    w_row, cnt = _row_weights(mf.sum(-1), traj_id)
    return mf * w_row[:, None], cnt


def _row_weights(cnt: torch.Tensor, traj_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-row factor :math:`1 / (B\,T_j\,|\tau_{j,t}|)` (0 for empty rows) from float token counts ``cnt``.

    The token weight of Eqs. 2 and 4 is this factor on every masked token of the row.
    """
    dtype = cnt.dtype
    v = (cnt > 0).to(dtype)
    inv, n = turns.compact_ids(traj_id)
    t_j = torch.zeros(n, dtype=dtype, device=cnt.device).index_add(0, inv, v)  # T_j
    b = (t_j > 0).sum().clamp_min(1).to(dtype)  # B
    return v / (t_j[inv].clamp_min(1) * cnt.clamp_min(1) * b), cnt


class _PaperRegularizer(torch.autograd.Function):
    r"""The paper variant's :math:`R = -\lambda [L_H - \beta L_{smooth}]` with a hand-written backward.

    Same value and gradient as building it from ``where``/``relu``/weight tensors with autograd, in far fewer
    passes over the ``(rows, T)`` entropy (the loss runs on every micro-batch):

    - forward: :math:`L_H = \sum_r w_r \sum_t m_{rt} H_{rt}`; with smoothing, :math:`d = H - \mathrm{clamp}
      (H, lo, hi)` gives :math:`P = |d|` and the hinge slope :math:`\mathrm{sign}(d)` (for lo <= hi; otherwise
      ``relu``/comparisons are used), :math:`L_{smooth} = \alpha \sum_r w_r \sum_t m_{rt} P_{rt}`;
    - backward: :math:`\partial R / \partial H_{rt} = -\lambda\, w_r\, m_{rt}\, (1 - \beta\alpha\,
      \mathrm{slope}_{rt})`.

    Outputs: ``reg``, ``L_H``, ``L_smooth`` (α included) and the number of masked tokens outside the corridor;
    only ``reg`` carries a gradient.
    """

    @staticmethod
    def forward(ctx, token_entropy, mask, w_row, lo, hi, entropy_coeff, beta, alpha):
        h = torch.where(mask, token_entropy, 0.0)  # padding may hold anything
        ent = (h.sum(-1) * w_row).sum()  # L_H, Eq. 2
        ctx.entropy_coeff, ctx.beta_alpha = entropy_coeff, beta * alpha
        ctx.smooth = lo is not None
        if lo is None:
            ctx.save_for_backward(mask, w_row)
            smooth, n_out = ent.new_zeros(()), ent.new_zeros(())
            ctx.mark_non_differentiable(ent, smooth, n_out)
            return -entropy_coeff * ent, ent, smooth, n_out
        if isinstance(lo, torch.Tensor):
            ordered, straddles_zero = bool((lo <= hi).all()), bool(((lo <= 0) & (hi >= 0)).all())
        else:
            ordered, straddles_zero = lo <= hi, lo <= 0 <= hi
        if ordered:  # in place where possible: two (rows, T) buffers in all, h and slope
            slope = h.clamp(lo, hi)
            d = torch.sub(h, slope, out=h)  # P = |d|, 0 inside the closed corridor
            if not straddles_zero:  # then a padding zero may lie outside the corridor
                d = torch.where(mask, d, d.new_zeros(()), out=d)
            slope = torch.sign(d, out=slope)
            pen_rows = d.abs_().sum(-1)
            flat = slope.reshape(-1)  # tokens with P > 0: sum of slope**2 (exact below 2**24 tokens)
            if flat.dtype in (torch.float32, torch.float64):
                n_out = torch.dot(flat, flat)
            else:
                n_out = flat.abs().sum(dtype=torch.float32)
        else:  # lo > hi somewhere (a negative reference): the two hinges overlap
            pen = torch.where(mask, torch.relu(lo - h) + torch.relu(h - hi), 0.0)
            slope = (h > hi).to(h.dtype) - (h < lo).to(h.dtype)
            slope = torch.where(mask, slope, 0.0)
            pen_rows = pen.sum(-1)
            n_out = torch.count_nonzero(pen)
        smooth = alpha * (pen_rows * w_row).sum()  # L_smooth, Eq. 4
        reg = -entropy_coeff * (ent - beta * smooth)  # Eq. 6 without L_MT
        n_out = n_out.to(h.dtype)
        ctx.save_for_backward(mask, w_row, slope)
        ctx.mark_non_differentiable(ent, smooth, n_out)
        return reg, ent, smooth, n_out

    @staticmethod
    def backward(ctx, grad_reg, *_):
        if ctx.smooth:
            mask, w_row, slope = ctx.saved_tensors
        else:
            mask, w_row = ctx.saved_tensors
        c = (grad_reg * -ctx.entropy_coeff) * w_row  # d reg / d H on an in-corridor masked token
        if ctx.smooth:
            grad = torch.addcmul(c[:, None], (-ctx.beta_alpha * c)[:, None], slope)
            grad = torch.where(mask, grad, grad.new_zeros(()), out=grad)
        else:
            grad = torch.where(mask, c[:, None], 0.0)
        return grad, None, None, None, None, None, None, None


def hierarchical_mean(x: torch.Tensor, response_mask: torch.Tensor, traj_id: torch.Tensor) -> torch.Tensor:
    r"""Mean over trajectories of the mean over their turns of the token mean (EPO Eqs. 2 and 4).

    Args:
        x: ``(rows, T)``; differentiable.
        response_mask: ``(rows, T)``.
        traj_id: ``(rows,)`` integer trajectory ids; each row is one turn of its trajectory.

    Returns:
        0-d tensor; 0 (still connected to ``x``'s graph) when no row has a token.
    """
    turns.check_2d("x", x)
    turns.check_same_shape("x", x, "response_mask", response_mask)
    w = hierarchical_weights(response_mask, traj_id, x.dtype)
    return (torch.where(w > 0, x, 0.0) * w).sum()


def token_mean(x: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """verl's ``token-mean`` aggregation: mean of ``x (rows, T)`` over all masked tokens (0 if none)."""
    turns.check_2d("x", x)
    turns.check_same_shape("x", x, "response_mask", response_mask)
    m = turns.as_bool_mask(response_mask)
    return torch.where(m, x, 0.0).sum() / m.to(x.dtype).sum().clamp_min(1)


def _reference_tensor(reference: Any, rows: int, like: torch.Tensor) -> torch.Tensor:
    """``reference`` as a ``(rows, 1)`` detached tensor (scalar, 0-d, or ``(rows,)`` accepted)."""
    ref = torch.as_tensor(reference, dtype=like.dtype, device=like.device).detach()
    if ref.dim() == 0:
        return ref.expand(rows)[:, None]
    if ref.dim() == 1 and ref.shape[0] == rows:
        return ref[:, None]
    raise ValueError(f"reference must be a scalar or have shape ({rows},), got {tuple(ref.shape)}")


def smoothing_penalty(
    token_entropy: torch.Tensor, reference: Any, *, kappa_l: float = 0.0, kappa_r: float = 2.0
) -> torch.Tensor:
    r"""EPO Eq. 3: :math:`P = [\kappa_l \bar H_W - H]_+ + [H - \kappa_r \bar H_W]_+`, differentiable in H.

    Args:
        token_entropy: ``(rows, T)`` live token entropy.
        reference: :math:`\bar H_W`, a scalar (float or 0-d tensor) or ``(rows,)``; detached.
        kappa_l, kappa_r: corridor bounds as multiples of the reference (0 and 2 in the paper's runs).

    Returns:
        ``(rows, T)`` non-negative penalty, 0 inside ``[κ_l H̄, κ_r H̄]`` (masking is left to the caller).
    """
    turns.check_2d("token_entropy", token_entropy)
    if kappa_l > kappa_r:
        raise ValueError(f"kappa_l ({kappa_l}) must be <= kappa_r ({kappa_r})")
    ref = _reference_tensor(reference, token_entropy.shape[0], token_entropy)
    return torch.relu(kappa_l * ref - token_entropy) + torch.relu(token_entropy - kappa_r * ref)


def phase_weight(step: int, total_steps: int, gamma: float = 3.0) -> float:
    r"""EPO Eq. 5: :math:`\beta_k = 1 + \exp(-\gamma k / \lfloor K/2 \rfloor)`, in (1, 2] for k >= 0."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    k_mid = max(1, total_steps // 2)
    return 1.0 + math.exp(-gamma * step / k_mid)


def released_phase_weight(step: int, max_epochs: int = 150) -> float:
    """The released code's ``_calculate_epoch_based_entropy_weight`` (``max_epochs`` hard-coded to 150).

    First half (``p = k / (K//2)``): ``1 - 0.2 (1 - exp(-2p))``, from 1 to ~0.827; second half
    (``p = (k - K//2) / (K - K//2)``): ``0.8 exp(-3p)``, from 0.8 to ~0.040. ``k`` is clamped to ``[0, K]``.
    """
    if max_epochs <= 0:
        return 1.0
    k = max(0, min(step, max_epochs))
    half = max_epochs // 2
    if k <= half:
        if half == 0:
            return 1.0
        return 1.0 - 0.2 * (1.0 - math.exp(-2.0 * k / half))
    rest = max_epochs - half
    return 0.8 * math.exp(-3.0 * (k - half) / rest)


def epo_regularizer(
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    traj_id: torch.Tensor,
    *,
    reference: Any,
    step: int,
    total_steps: int,
    turn: torch.Tensor | None = None,
    entropy_coeff: float = 1e-3,
    kappa_l: float = 0.0,
    kappa_r: float = 2.0,
    gamma: float = 3.0,
    alpha: float = 0.1,
    variant: str = "paper",
    gate_turn: int = 25,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""EPO's entropy terms :math:`R = -\lambda [L_H - \beta_k L_{smooth}]` on live entropy.

    Args:
        token_entropy: ``(rows, T)`` differentiable per-token entropy of the current forward pass.
        response_mask: ``(rows, T)``.
        traj_id: ``(rows,)`` integer trajectory ids (used by the paper's hierarchical mean).
        reference: :math:`\bar H_W^k`: a scalar or ``(rows,)`` tensor, or None when the history is empty
            (then no smoothing). Paper: ``EntropyHistory.reference()``; released:
            ``EntropyHistory.reference_for_rows(turn)``.
        step: RL step k (0-based).
        total_steps: K, the total number of RL steps (ignored by ``variant="released"``).
        turn: ``(rows,)`` turn indices; required by ``variant="released"`` (gate), unused otherwise.
        entropy_coeff: :math:`\lambda`.
        kappa_l, kappa_r: corridor bounds.
        gamma: :math:`\gamma` of the phase weight.
        alpha: :math:`\alpha`, penalty weight (0.05 ScienceWorld, 0.1 ALFWorld; the experiment files set it).
        variant: ``"paper"`` (default) or ``"released"``.
        gate_turn: released only: smoothing applies iff some row has ``turn >= gate_turn``.

    Returns:
        ``(R, metrics)``: R a 0-d tensor with gradient through ``token_entropy``; metrics detached 0-d
        tensors: ``epo/entropy`` (:math:`L_H`), ``epo/smooth_loss`` (:math:`L_{smooth}`, α included),
        ``epo/beta``, ``epo/penalised_share`` (share of masked tokens outside the corridor),
        ``epo/smoothing_active`` (0/1), ``epo/reference`` (mean reference, 0 if none), ``epo/regularizer``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    turns.check_2d("token_entropy", token_entropy)
    turns.check_same_shape("token_entropy", token_entropy, "response_mask", response_mask)
    rows = token_entropy.shape[0]
    turns.check_ids("traj_id", traj_id, rows)
    if turn is not None:
        turns.check_ids("turn", turn, rows)
    if kappa_l > kappa_r:
        raise ValueError(f"kappa_l ({kappa_l}) must be <= kappa_r ({kappa_r})")
    if variant == "released" and turn is None:
        raise ValueError("variant='released' needs turn (rows,) for its turn >= gate_turn gate")
    mask = turns.as_bool_mask(response_mask)
    dtype = token_entropy.dtype
    zero = token_entropy.new_zeros(())
    ref = None if reference is None else _reference_tensor(reference, rows, token_entropy)  # (rows, 1)
    if variant == "paper":
        w_row, cnt = _row_weights(mask.sum(-1, dtype=dtype), traj_id)
        n_tok = cnt.sum().clamp_min(1)
        beta = phase_weight(step, total_steps, gamma)
        active = ref is not None
        lo = hi = None
        if ref is not None:
            lo, hi = kappa_l * ref, kappa_r * ref
            if rows and ref.stride(0) == 0:  # one scalar reference: float bounds (the same values)
                lo, hi = float(lo[0, 0]), float(hi[0, 0])
        reg, ent, smooth, n_out = _PaperRegularizer.apply(
            token_entropy, mask, w_row, lo, hi, entropy_coeff, beta, alpha
        )
        share = n_out / n_tok if active else zero
    else:
        h = torch.where(mask, token_entropy, 0.0)  # padding may hold anything
        n_tok = mask.sum(dtype=dtype).clamp_min(1)
        ent = h.sum() / n_tok  # token-mean
        beta = released_phase_weight(step)
        active = ref is not None and rows > 0 and bool((turn >= gate_turn).any())
        if active:
            hd = h.detach()
            inside = (hd > kappa_l * ref) & (hd < kappa_r * ref)  # open corridor, as released
            n_out = (mask & ~inside).sum(dtype=dtype)
            smooth = alpha * n_out / n_tok  # constant: no gradient
            share = n_out / n_tok
        else:
            smooth, share = zero, zero
        reg = -entropy_coeff * (ent - beta * smooth)
    ref_mean = zero if ref is None or rows == 0 else ref.mean()
    metrics = {
        "epo/entropy": ent.detach(),
        "epo/smooth_loss": torch.as_tensor(smooth).detach(),
        "epo/beta": torch.tensor(beta, dtype=token_entropy.dtype, device=token_entropy.device),
        "epo/penalised_share": share.detach().to(token_entropy.dtype),
        "epo/smoothing_active": torch.tensor(float(active), device=token_entropy.device),
        "epo/reference": ref_mean.detach(),
        "epo/regularizer": reg.detach(),
    }
    return reg, metrics


def epo_loss(
    pg_loss: torch.Tensor,
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    traj_id: torch.Tensor,
    **kwargs: Any,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""EPO Eq. 6: :math:`L_{EPO} = L_{MT} - \lambda[L_H - \beta_k L_{smooth}]`.

    Args:
        pg_loss: 0-d policy-gradient loss :math:`L_{MT}` (e.g. verl's ``ppo_loss`` output).
        token_entropy, response_mask, traj_id, **kwargs: as :func:`epo_regularizer`.

    Returns:
        ``(loss, metrics)``.
    """
    if not isinstance(pg_loss, torch.Tensor) or pg_loss.dim() != 0:
        raise ValueError(f"pg_loss must be a 0-d tensor, got {getattr(pg_loss, 'shape', type(pg_loss))}")
    reg, metrics = epo_regularizer(token_entropy, response_mask, traj_id, **kwargs)
    return pg_loss + reg, metrics


class EntropyHistory:
    r"""Driver-side history of per-RL-step mean entropies: the window :math:`W_k` of EPO.

    Paper: ``append(step_mean)`` after step k's update, then at step k+1 ``reference()`` is
    :math:`\bar H_W^{k+1} = \frac{1}{k+1}\sum_{m \le k} \bar H_m` (None before the first append, so
    :math:`L_{smooth} = 0` at k = 0).

    Released: ``append(step_mean, per_turn=...)`` with ``per_turn`` the per-turn batch-mean entropies of the
    step (:func:`agent_rl.rows.turns.per_turn_token_mean`); each list is truncated to its last
    ``max_turns`` entries and left-padded with zeros to ``max_turns``, as ``ray_trainer.py`` does, and
    ``reference_for_rows(turn)`` indexes the element-wise mean of those lists by turn. To match the released
    trainer, append the current step *before* the actor update.

    The state is plain Python data; ``state_dict``/``load_state_dict`` round-trip it.
    """

    def __init__(self, max_turns: int | None = None) -> None:
        if max_turns is not None and max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        self.max_turns = max_turns
        self._step_means: list[float] = []
        self._per_turn: list[list[float]] = []

    def __len__(self) -> int:
        return len(self._step_means)

    @property
    def step_means(self) -> list[float]:
        """The appended :math:`\\bar H_m`, oldest first (a copy)."""
        return list(self._step_means)

    def append(
        self, step_mean: float | torch.Tensor, per_turn: Sequence[float] | torch.Tensor | None = None
    ) -> None:
        """Record step m's token-mean entropy and, for the released variant, its per-turn means."""
        value = float(step_mean)
        if not math.isfinite(value):
            raise ValueError(f"step_mean must be finite, got {value}")
        if per_turn is not None:
            if self.max_turns is None:
                raise ValueError("per_turn given but EntropyHistory was built without max_turns")
            vals = [float(v) for v in (per_turn.tolist() if isinstance(per_turn, torch.Tensor) else per_turn)]
            vals = vals[-self.max_turns :]
            vals = [0.0] * (self.max_turns - len(vals)) + vals  # left padding, as released
            self._per_turn.append(vals)
        self._step_means.append(value)

    def reference(self) -> float | None:
        r"""Paper reference :math:`\bar H_W`: mean of all appended step means (None if empty)."""
        if not self._step_means:
            return None
        return math.fsum(self._step_means) / len(self._step_means)

    def per_turn_reference(self) -> torch.Tensor | None:
        """Released reference: ``(max_turns,)`` mean of the padded per-turn lists (None if empty)."""
        if not self._per_turn:
            return None
        return torch.tensor(self._per_turn, dtype=torch.float64).mean(0).to(torch.float32)

    def reference_for_rows(self, turn: torch.Tensor) -> torch.Tensor | None:
        """Released reference for each row: ``per_turn_reference()[turn]``, ``(rows,)``; None if empty."""
        ref = self.per_turn_reference()
        if ref is None:
            return None
        if turn.dim() != 1:
            raise ValueError(f"turn must have shape (rows,), got {tuple(turn.shape)}")
        if turn.numel() and (int(turn.min()) < 0 or int(turn.max()) >= ref.numel()):
            lo, hi = int(turn.min()), int(turn.max())
            raise ValueError(f"turn must lie in [0, {ref.numel()}), got [{lo}, {hi}]")
        return ref.to(turn.device)[turn.long()]

    def state_dict(self) -> dict[str, Any]:
        return {
            "max_turns": self.max_turns,
            "step_means": list(self._step_means),
            "per_turn": [list(v) for v in self._per_turn],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"max_turns", "step_means", "per_turn"} - set(state)
        if missing:
            raise ValueError(f"EntropyHistory state is missing keys {sorted(missing)}")
        saved = state["max_turns"]
        if self.max_turns is not None and saved is not None and saved != self.max_turns:
            raise ValueError(f"state has max_turns={state['max_turns']}, this history has {self.max_turns}")
        per_turn = [[float(x) for x in v] for v in state["per_turn"]]
        mt = state["max_turns"] if state["max_turns"] is not None else self.max_turns
        if per_turn and (mt is None or any(len(v) != mt for v in per_turn)):
            raise ValueError("per_turn lists must all have length max_turns")
        self.max_turns = mt
        self._step_means = [float(x) for x in state["step_means"]]
        self._per_turn = per_turn
