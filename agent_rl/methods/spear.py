r"""SPEAR: self-imitation with progressive exploration for agentic LLMs (Tencent Youtu; arXiv 2509.22601).

SPEAR (ICLR 2026) adds to GRPO/GiGPO (usually in the Dr.BoT configuration):

1. **Intrinsic tool-call reward**, decayed over training steps t (``episode.py``):

   .. math::  R_i = R_{outcome} + \mu_t \min(1, 0.1 \cdot n^{calls}_i), \qquad
              \mu_t = \tfrac12(\cos(\pi t / T_{tool}) + 1) \text{ for } t \le T_{tool}, \text{ else } 0

   (modes ``cosine`` / ``constant`` (μ = 1) / ``none`` (μ = 0); ``T_tool = 200``). In ALFWorld/WebShop every
   environment action is a tool call, so :math:`n^{calls}` is the episode length.

2. **Self-imitation replay** (:class:`SpearReplayBuffer`, ``TrajectoryBufferBatch``): rows with positive
   advantage are stored with their RL step; entries more than ``tolerate_steps`` older than the newest are
   evicted; a FIFO history of per-group reward means and stds feeds a P50 baseline; when full, advantages
   are recalibrated as

   .. math::  \tilde A_j = R_j - P_{50}(\mathcal D_R) \quad (\text{Dr.GRPO style, no std}),

   rows with :math:`\tilde A_j \ge 0` are kept, and a random power-of-two subset (capped at the buffer
   size) is replayed once with weight :math:`\gamma_t` (:func:`replay_loss_weight`):

   .. math::  J = J_{GRPO} + \gamma_t \tilde J^{SIL}_{GRPO}, \quad
              \gamma_t = \tfrac{c}{2}(1 - \cos(\pi t / T_w)) \text{ if } t \le T_w, \text{ else } c.

3. **Clip-Cov** (arXiv 2505.22617): among tokens not already clipped by PPO, those whose centred covariance
   :math:`(A - \bar A)(\log\pi - \overline{\log\pi})` lies in ``(lb, ub)`` are candidates; a random
   ``max(int(ratio · n_tokens), 1)`` of them get zero loss. Separate bounds for the replay pass.

4. **Dr.BoT filters**: responses that are overlong, incomplete (no ``<action>``), or contain a 20-gram
   repeated at least 10 times are removed from the loss (mask zeroed); the group filter keeps the 75% of
   rollout groups with the highest std of trajectory rewards.

Shapes: per-step rows as in :mod:`agent_rl.rows.turns`: ``rewards, advantages (rows,)``, ``group_id,
traj_id (rows,) long``, ``log_prob, old_log_prob, response_mask, response_ids (rows, T)``.

References:
    - Qin et al. (Tencent Youtu), "Learn the Ropes, Then Trust the Wins: Self-imitation with Progressive
      Exploration for Agentic Reinforcement Learning" (SPEAR), arXiv 2509.22601, ICLR 2026.
    - Code: github.com/TencentYoutuResearch/SPEAR @ 7e84315: ``verl-agent/verl/trainer/ppo/
      ray_trainer_hybrid.py`` (``TrajectoryBufferBatch``), ``.../core_algos.py``
      (``compute_policy_loss_clip_cov``), ``.../workers/actor/dp_actor.py`` (replay weight),
      ``agent_system/reward_manager/episode.py`` (tool-call reward, response filters),
      ``.../ray_trainer.py::_filter_rollout`` (group filter).
    - "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models"
      (Clip-Cov), arXiv 2505.22617.

Deviations (choices the paper leaves open; we follow the released code unless listed):
    1. Per-trajectory reward = mean of its rows' rewards; a group's statistics are the mean and population
       std (ddof = 0, as ``np.std``) of its trajectories' rewards, computed over *all* rows of the batch
       passed to ``add`` (not only the positive ones). P50 is linear-interpolated (``np.percentile``).
    2. The baseline history is trimmed before appending, as released: while it holds more than
       ``baseline_capacity`` group entries, the oldest step is dropped; so it may exceed the capacity by one
       step's groups.
    3. ``tolerate_steps`` is used as given (the released class silently clamps it to ``min(cfg, 10)``; the
       scripts use 5). Eviction keeps entries with ``|step - newest_step| <= tolerate_steps``.
    4. "Full" means: more than ``1.5 · capacity`` buffered rows whose reward exceeds the P50 of the group-mean
       history (released ``get_buffer_size`` with ``weight_decay_trajectory_replay = -1``).
    5. ``nearest_lower_power_of_two(n)`` is 0 for ``n <= 1`` (both released call sites give 0 rows for
       n = 1).
    6. The group filter keeps ``max(1, int(keep_ratio · G))`` groups (the released code asserts > 0); ties
       in std keep first-appearance order (Python's stable ``sorted``). The released code additionally
       subsamples the kept rows to a power of two: :func:`subsample_power_of_two`.
    7. Clip-Cov has no dual clip (as released); its random choice takes a ``torch.Generator`` so tests and
       replays are reproducible.
    8. Repeated n-grams are found by hashing windows with two independent polynomial hashes modulo primes
       near 2**31 (collision probability ~1e-18 per pair); token ids must be in ``[0, 2**31)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from agent_rl.rows import turns

__all__ = [
    "CLIP_COV_ON_POLICY",
    "CLIP_COV_REPLAY",
    "CLIP_COV_REPLAY_MATH",
    "ClipCovBounds",
    "SpearReplayBuffer",
    "apply_response_filters",
    "clip_cov_policy_loss",
    "clip_cov_select",
    "group_reward_stats",
    "group_std_filter",
    "nearest_lower_power_of_two",
    "overlong_mask",
    "recalibrate_advantages",
    "repeated_ngram_mask",
    "replay_loss_weight",
    "subsample_power_of_two",
    "toolcall_bonus",
    "toolcall_schedule",
]

TOOLCALL_MODES = ("cosine", "constant", "none")


# ----------------------------------------------------------------------------------------------------------
# schedules
# ----------------------------------------------------------------------------------------------------------


def toolcall_schedule(step: int, *, max_steps: int = 200, mode: str = "cosine") -> float:
    r"""Decay :math:`\mu_t` of the tool-call bonus: cosine from 1 to 0 over ``max_steps``, then 0."""
    if mode not in TOOLCALL_MODES:
        raise ValueError(f"mode must be one of {TOOLCALL_MODES}, got {mode!r}")
    if mode == "none":
        return 0.0
    if mode == "constant":
        return 1.0
    if max_steps <= 0:
        raise ValueError(f"max_steps must be > 0 for mode='cosine', got {max_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step > max_steps:
        return 0.0
    return max(0.0, (math.cos(math.pi * step / max_steps) + 1.0) / 2.0)


def toolcall_bonus(
    num_calls: torch.Tensor,
    step: int,
    *,
    max_steps: int = 200,
    mode: str = "cosine",
    per_call: float = 0.1,
    cap: float = 1.0,
) -> torch.Tensor:
    r"""Intrinsic reward :math:`\mu_t \min(\text{cap}, \text{per\_call} \cdot n^{calls})`.

    Args:
        num_calls: ``(rows,)`` tool calls of each row's trajectory (episode length in ALFWorld/WebShop).
        step: RL step t.
        max_steps: :math:`T_{tool}` (200 in the scripts).
        mode: ``"cosine"``, ``"constant"`` or ``"none"``.
        per_call, cap: 0.1 per call, capped at 1.0.

    Returns:
        ``(rows,)`` float bonus, to be added to the episode reward.
    """
    if not isinstance(num_calls, torch.Tensor) or num_calls.dim() != 1:
        raise ValueError(f"num_calls must have shape (rows,), got {tuple(getattr(num_calls, 'shape', ()))}")
    mu = toolcall_schedule(step, max_steps=max_steps, mode=mode)
    dt = turns.float_dtype(num_calls)
    return torch.clamp(per_call * num_calls.to(dt), max=cap) * mu


def replay_loss_weight(step: int, *, coef: float = 1.0, warmup_steps: int = 200) -> float:
    r"""Self-imitation weight :math:`\gamma_t = c\,(1 - \cos(\pi t / T_{warm}))/2` for t <= T, then c.

    ``coef`` = ``replay_loss_coef`` (1 in the verl-agent scripts; the yaml default is 0.001);
    ``warmup_steps`` = ``max_replay_loss_steps`` (200: the scripts define an ascending-steps variable but
    never pass it).
    """
    if warmup_steps <= 0:
        return float(coef)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step <= warmup_steps:
        return coef * (1.0 - math.cos(math.pi * step / warmup_steps)) / 2.0
    return float(coef)


def nearest_lower_power_of_two(n: int) -> int:
    """Largest power of two <= n, and 0 for n <= 1 (as the released code)."""
    n = int(n)
    return 0 if n <= 1 else 1 << (n.bit_length() - 1)


# ----------------------------------------------------------------------------------------------------------
# group statistics, recalibration, filters
# ----------------------------------------------------------------------------------------------------------


def group_reward_stats(
    rewards: torch.Tensor, group_id: torch.Tensor, traj_id: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-group mean and population std of per-trajectory mean rewards.

    Args:
        rewards: ``(rows,)`` reward of each step row (the episode reward, repeated on its rows).
        group_id: ``(rows,)`` integer rollout-group ids.
        traj_id: ``(rows,)`` integer trajectory ids; a trajectory lies in one group.

    Returns:
        ``(mean (G,), std (G,), group_inverse (rows,))``, groups ordered by sorted id.
    """
    rows = rewards.shape[0] if isinstance(rewards, torch.Tensor) and rewards.dim() == 1 else -1
    if rows < 0:
        raise ValueError(f"rewards must have shape (rows,), got {tuple(getattr(rewards, 'shape', ()))}")
    turns.check_ids("group_id", group_id, rows)
    turns.check_ids("traj_id", traj_id, rows)
    dt = turns.float_dtype(rewards)
    r = rewards.to(dt)
    inv_g, n_g = turns.compact_ids(group_id)
    inv_t, n_t = turns.compact_ids(traj_id)
    t_sum = torch.zeros(n_t, dtype=dt, device=r.device).index_add(0, inv_t, r)
    t_cnt = torch.zeros(n_t, dtype=dt, device=r.device).index_add(0, inv_t, torch.ones_like(r))
    t_mean = t_sum / t_cnt.clamp_min(1)
    g_of_t_lo = torch.full((n_t,), n_g, dtype=torch.long, device=r.device).scatter_reduce(
        0, inv_t, inv_g, "amin", include_self=False
    )
    g_of_t_hi = torch.full((n_t,), -1, dtype=torch.long, device=r.device).scatter_reduce(
        0, inv_t, inv_g, "amax", include_self=False
    )
    if bool((g_of_t_lo != g_of_t_hi).any()):
        raise ValueError("a trajectory's rows carry different group ids")
    g_of_t = g_of_t_lo
    g_cnt = torch.zeros(n_g, dtype=dt, device=r.device).index_add(0, g_of_t, torch.ones_like(t_mean))
    g_mean = torch.zeros(n_g, dtype=dt, device=r.device).index_add(0, g_of_t, t_mean) / g_cnt.clamp_min(1)
    dev2 = (t_mean - g_mean[g_of_t]) ** 2
    g_var = torch.zeros(n_g, dtype=dt, device=r.device).index_add(0, g_of_t, dev2) / g_cnt.clamp_min(1)
    return g_mean, g_var.sqrt(), inv_g


def recalibrate_advantages(
    rewards: torch.Tensor,
    baseline_mean: float | torch.Tensor,
    baseline_std: float | torch.Tensor | None = None,
    *,
    norm_by_std: bool = False,
    eps: float = 1e-6,
) -> torch.Tensor:
    r""":math:`\tilde A = R - P_{50}` (divided by ``P50_std + eps`` when ``norm_by_std``, off in Dr.BoT)."""
    dt = turns.float_dtype(rewards)
    adv = rewards.to(dt) - torch.as_tensor(baseline_mean, dtype=dt, device=rewards.device)
    if norm_by_std:
        if baseline_std is None:
            raise ValueError("norm_by_std=True needs baseline_std")
        adv = adv / (torch.as_tensor(baseline_std, dtype=dt, device=rewards.device) + eps)
    return adv


def group_std_filter(
    rewards: torch.Tensor,
    group_id: torch.Tensor,
    traj_id: torch.Tensor,
    *,
    keep_ratio: float = 0.75,
    descending: bool = True,
) -> torch.Tensor:
    """Dr.BoT group filter: keep the ``keep_ratio`` share of groups with the highest reward std.

    Args:
        rewards, group_id, traj_id: ``(rows,)``, see :func:`group_reward_stats`.
        keep_ratio: share of groups kept (0.75); 1 keeps everything.
        descending: True keeps the highest stds (``"std"``); False the lowest (``"std_rev"``).

    Returns:
        ``(rows,)`` bool: the row's group is kept.
    """
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    _, std, inv_g = group_reward_stats(rewards, group_id, traj_id)
    n_g = std.shape[0]
    rows = rewards.shape[0]
    if keep_ratio == 1.0 or n_g == 0:
        return torch.ones(rows, dtype=torch.bool, device=rewards.device)
    n_keep = max(1, int(float(keep_ratio) * float(n_g)))
    pos = torch.arange(rows, device=rewards.device)
    first = torch.full((n_g,), rows, dtype=torch.long, device=rewards.device).scatter_reduce(
        0, inv_g, pos, "amin", include_self=True
    )
    by_appearance = torch.argsort(first)
    key = -std[by_appearance] if descending else std[by_appearance]
    chosen = by_appearance[torch.argsort(key, stable=True)[:n_keep]]
    keep_group = torch.zeros(n_g, dtype=torch.bool, device=rewards.device)
    keep_group[chosen] = True
    return keep_group[inv_g]


def subsample_power_of_two(keep: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly reduce the True entries of ``keep (rows,) bool`` to ``nearest_lower_power_of_two(count)``."""
    if keep.dim() != 1 or keep.dtype != torch.bool:
        raise ValueError(f"keep must be a (rows,) bool tensor, got {keep.dtype} {tuple(keep.shape)}")
    idx = torch.nonzero(keep).squeeze(-1)
    m = nearest_lower_power_of_two(idx.numel())
    perm = _randperm(idx.numel(), generator, keep.device)[:m]
    out = torch.zeros_like(keep)
    out[idx[perm]] = True
    return out


def overlong_mask(response_mask: torch.Tensor, max_response_length: int) -> torch.Tensor:
    """``(rows,)`` bool: the response reached ``max_response_length`` tokens (was cut, no EOS)."""
    turns.check_2d("response_mask", response_mask)
    return turns.as_bool_mask(response_mask).sum(-1) >= max_response_length


_P1, _P2 = 2147483647, 2147483629  # primes near 2**31


def repeated_ngram_mask(
    response_ids: torch.Tensor, response_mask: torch.Tensor, *, n: int = 20, threshold: int = 10
) -> torch.Tensor:
    """``(rows,)`` bool: some n-gram of the row's response tokens occurs at least ``threshold`` times.

    Overlapping occurrences count (as ``has_repeated_ngrams``); only masked tokens, in order, form the
    response.

    Args:
        response_ids: ``(rows, T)`` integer token ids in ``[0, 2**31)``.
        response_mask: ``(rows, T)``.
        n: n-gram length (20).
        threshold: minimal count (10).
    """
    turns.check_2d("response_ids", response_ids)
    turns.check_same_shape("response_ids", response_ids, "response_mask", response_mask)
    if n < 1 or threshold < 1:
        raise ValueError(f"n and threshold must be >= 1, got n={n}, threshold={threshold}")
    rows, t = response_ids.shape
    w = t - n + 1
    if w < threshold or rows == 0:
        return torch.zeros(rows, dtype=torch.bool, device=response_ids.device)
    m = turns.as_bool_mask(response_mask)
    lengths = m.sum(-1)
    order = torch.argsort((~m).to(torch.int8), dim=-1, stable=True)  # valid tokens first, in order
    ids = torch.gather(response_ids.long(), 1, order)
    ids = torch.where(torch.arange(t, device=ids.device)[None, :] < lengths[:, None], ids, 0)
    if bool((ids < 0).any()) or bool((ids >= _P2).any()):
        raise ValueError("response_ids must lie in [0, 2**31)")
    gen = torch.Generator().manual_seed(20250922)
    c1 = torch.randint(1, _P1, (n,), generator=gen).to(ids.device)
    c2 = torch.randint(1, _P2, (n,), generator=gen).to(ids.device)
    h1 = torch.zeros(rows, w, dtype=torch.long, device=ids.device)
    h2 = torch.zeros_like(h1)
    for i in range(n):  # loop over n-gram positions, not rows
        win = ids[:, i : i + w]
        h1 = (h1 + win * c1[i]) % _P1
        h2 = (h2 + win * c2[i]) % _P2
    key = h1 * _P2 + h2  # < 2**62
    pos = torch.arange(w, device=ids.device)
    win_ok = pos[None, :] < (lengths[:, None] - n + 1)
    key = torch.where(win_ok, key, -1 - pos[None, :])  # distinct negative sentinels never match
    s, _ = torch.sort(key, dim=-1)
    k = threshold
    return (s[:, k - 1 :] == s[:, : w - k + 1]).any(-1)


def apply_response_filters(response_mask: torch.Tensor, *flags: torch.Tensor | None) -> torch.Tensor:
    """Zero the mask of every row flagged by any of ``flags`` (each ``(rows,)`` bool/int, or None)."""
    turns.check_2d("response_mask", response_mask)
    rows = response_mask.shape[0]
    drop = torch.zeros(rows, dtype=torch.bool, device=response_mask.device)
    for i, f in enumerate(flags):
        if f is None:
            continue
        turns.check_rows(f"flags[{i}]", f, rows)
        drop = drop | (f != 0)
    return torch.where(drop[:, None], torch.zeros_like(response_mask), response_mask)


# ----------------------------------------------------------------------------------------------------------
# Clip-Cov
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipCovBounds:
    """Clip-Cov parameters: sample ``max(int(ratio · n_tokens), 1)`` tokens with ``lb < cov < ub``."""

    ratio: float
    lb: float
    ub: float


#: On-policy defaults (verl / SPEAR yaml).
CLIP_COV_ON_POLICY = ClipCovBounds(ratio=2e-4, lb=1.0, ub=5.0)
#: Replay pass, verl-agent ALFWorld/WebShop scripts.
CLIP_COV_REPLAY = ClipCovBounds(ratio=0.02, lb=2.0, ub=60.0)
#: Replay pass, math (ReTool) scripts.
CLIP_COV_REPLAY_MATH = ClipCovBounds(ratio=0.02, lb=1.0, ub=40.0)


def _randperm(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gdev = generator.device if generator is not None else device
    return torch.randperm(n, generator=generator, device=gdev).to(device)


def _token_advantages(advantages: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if advantages.dim() == 1:
        turns.check_rows("advantages", advantages, like.shape[0])
        return advantages[:, None].expand_as(like)
    turns.check_same_shape("advantages", advantages, "log_prob", like)
    return advantages


def clip_cov_select(
    advantages: torch.Tensor,
    log_prob: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    bounds: ClipCovBounds = CLIP_COV_ON_POLICY,
    exclude: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Clip-Cov token choice: ``(rows, T)`` bool of tokens whose policy-gradient loss is zeroed.

    :math:`\mathrm{cov} = (A - \bar A)(\log\pi - \overline{\log\pi})`, means over masked tokens; candidates
    are masked, not ``exclude``-d (PPO-clipped) tokens with ``lb < cov < ub``; ``max(int(ratio · n), 1)``
    of them (n = masked tokens) are drawn uniformly without replacement.

    Args:
        advantages: ``(rows,)`` or ``(rows, T)``.
        log_prob: ``(rows, T)`` current log-probs (detached inside).
        response_mask: ``(rows, T)``.
        bounds: :class:`ClipCovBounds` (``CLIP_COV_ON_POLICY`` or ``CLIP_COV_REPLAY``).
        exclude: ``(rows, T)`` bool, tokens never selected (the PPO-clipped ones).
        generator: random source.
    """
    turns.check_2d("log_prob", log_prob)
    turns.check_same_shape("log_prob", log_prob, "response_mask", response_mask)
    if not bounds.ratio > 0:
        raise ValueError(f"bounds.ratio must be > 0, got {bounds.ratio}")
    m = turns.as_bool_mask(response_mask)
    dt = turns.float_dtype(log_prob, advantages)
    a = _token_advantages(advantages, log_prob).detach().to(dt)
    lp = log_prob.detach().to(dt)
    n_tok = int(m.sum())
    denom = max(n_tok, 1)
    a_bar = torch.where(m, a, 0.0).sum() / denom
    lp_bar = torch.where(m, lp, 0.0).sum() / denom
    cov = (a - a_bar) * (lp - lp_bar)
    cand = m & (cov > bounds.lb) & (cov < bounds.ub)
    if exclude is not None:
        turns.check_same_shape("exclude", exclude, "log_prob", log_prob)
        cand = cand & ~exclude.bool()
    idx = torch.nonzero(cand)
    k = min(max(int(bounds.ratio * n_tok), 1), idx.shape[0])
    chosen = idx[_randperm(idx.shape[0], generator, log_prob.device)[:k]]
    out = torch.zeros_like(m)
    out[chosen[:, 0], chosen[:, 1]] = True
    return out


def clip_cov_policy_loss(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    clip_ratio_low: float = 0.2,
    clip_ratio_high: float = 0.28,
    bounds: ClipCovBounds = CLIP_COV_ON_POLICY,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""Per-token Clip-Cov PPO loss :math:`\max(-A r, -A\,\mathrm{clip}(r, 1-\epsilon_l, 1+\epsilon_h))`.

    Tokens chosen by :func:`clip_cov_select` (excluding those PPO already clipped) get loss 0. Aggregate
    the returned matrix with verl's ``agg_loss`` (Dr.BoT: ``seq-mean-token-sum-norm``).

    Args:
        old_log_prob, log_prob: ``(rows, T)``; ``log_prob`` carries the gradient.
        advantages: ``(rows,)`` or ``(rows, T)``.
        response_mask: ``(rows, T)``.
        clip_ratio_low, clip_ratio_high: 0.2 / 0.28 (Dr.BoT clip-higher).
        bounds: ``CLIP_COV_ON_POLICY`` for the on-policy pass, ``CLIP_COV_REPLAY`` for the replay pass.
        generator: random source.

    Returns:
        ``(pg_losses (rows, T), metrics)`` with ``pg_clipfrac`` (share of masked tokens zeroed) and
        ``ppo_kl``; masked-out positions of ``pg_losses`` are 0.
    """
    turns.check_2d("log_prob", log_prob)
    turns.check_same_shape("log_prob", log_prob, "old_log_prob", old_log_prob)
    turns.check_same_shape("log_prob", log_prob, "response_mask", response_mask)
    m = turns.as_bool_mask(response_mask)
    a = _token_advantages(advantages, log_prob)
    neg_kl = log_prob - old_log_prob
    ratio = torch.exp(neg_kl)
    l1 = -a * ratio
    l2 = -a * torch.clamp(ratio, 1 - clip_ratio_low, 1 + clip_ratio_high)
    clipped = (l2 > l1) & m
    sel = clip_cov_select(a, log_prob, m, bounds=bounds, exclude=clipped, generator=generator)
    losses = torch.where(sel | ~m, 0.0, torch.maximum(l1, l2))
    n = m.sum().clamp_min(1)
    metrics = {
        "pg_clipfrac": (sel.sum() / n).detach().float(),
        "ppo_kl": (torch.where(m, -neg_kl, 0.0).sum() / n).detach().float(),
    }
    return losses, metrics


# ----------------------------------------------------------------------------------------------------------
# replay buffer
# ----------------------------------------------------------------------------------------------------------

_RESERVED = ("rewards", "advantages", "step")
_CONFIG_KEYS = ("capacity", "baseline_capacity", "tolerate_steps", "norm_adv_by_std", "weight_decay", "eps")


class SpearReplayBuffer:
    """SPEAR's self-imitation replay buffer (driver-side state; ``TrajectoryBufferBatch`` semantics).

    Per RL step, in the trainer (released ``RayPPOSFTTrainer.fit`` order)::

        replay = buf.sample(generator) if buf.is_full() else None   # recalibrated, then buffer reset
        update_actor(batch, replay)                                 # replay weighted by replay_loss_weight
        buf.remove_old()
        buf.add(step, rewards, advantages, group_id, traj_id, payload={"input_ids": ..., ...})

    Args:
        capacity: ``trajectory_buffer_size`` (2048): replay size cap; "full" means > 1.5 × capacity.
        baseline_capacity: ``baseline_buffer_size`` (10240) group entries in the P50 history.
        tolerate_steps: eviction age (5 in the scripts).
        norm_adv_by_std: divide recalibrated advantages by ``P50(std) + eps`` (False in Dr.BoT/SPEAR).
        weight_decay: None (default, released ``-1``): recalibrate. A value in (0, 1]: instead replay the
            stored advantages times it, and count all rows for fullness.
        eps: std epsilon (1e-6).
    """

    def __init__(
        self,
        capacity: int = 2048,
        baseline_capacity: int = 10240,
        tolerate_steps: int = 5,
        *,
        norm_adv_by_std: bool = False,
        weight_decay: float | None = None,
        eps: float = 1e-6,
    ) -> None:
        if capacity < 1 or baseline_capacity < 1 or tolerate_steps < 0:
            raise ValueError("capacity and baseline_capacity must be >= 1, tolerate_steps >= 0")
        if weight_decay is not None and not 0.0 < weight_decay <= 1.0:
            raise ValueError(f"weight_decay must be None or in (0, 1], got {weight_decay}")
        self.capacity = capacity
        self.baseline_capacity = baseline_capacity
        self.tolerate_steps = tolerate_steps
        self.norm_adv_by_std = norm_adv_by_std
        self.weight_decay = weight_decay
        self.eps = eps
        self._chunks: list[dict[str, Any]] = []  # {"step": int, "rewards", "advantages", "payload": {...}}
        self._mean_hist: list[tuple[int, torch.Tensor]] = []
        self._std_hist: list[tuple[int, torch.Tensor]] = []

    # -- bookkeeping -------------------------------------------------------------------------------------

    def num_rows(self) -> int:
        """Rows currently stored."""
        return sum(int(c["rewards"].shape[0]) for c in self._chunks)

    def steps(self) -> list[int]:
        """RL step of each stored chunk, oldest first."""
        return [int(c["step"]) for c in self._chunks]

    def baseline(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(P50 of group means, P50 of group stds)`` over the history, or None if it is empty."""
        if not self._mean_hist:
            return None
        means = torch.cat([v for _, v in self._mean_hist])
        stds = torch.cat([v for _, v in self._std_hist])
        return torch.quantile(means, 0.5), torch.quantile(stds, 0.5)

    def size(self) -> int:
        """Rows that count towards fullness: reward above the P50 baseline (all rows with weight_decay)."""
        if self.weight_decay is not None:
            return self.num_rows()
        base = self.baseline()
        total = 0
        for c in self._chunks:
            r = c["rewards"]
            thr = base[0].to(r.device, r.dtype) if base is not None else r.mean()
            total += int((r > thr).sum())
        return total

    def is_full(self) -> bool:
        return self.size() > 1.5 * self.capacity

    def remove_old(self) -> int:
        """Evict chunks more than ``tolerate_steps`` older than the newest one; returns rows evicted."""
        if not self._chunks:
            return 0
        latest = int(self._chunks[-1]["step"])
        before = self.num_rows()
        self._chunks = [c for c in self._chunks if abs(int(c["step"]) - latest) <= self.tolerate_steps]
        return before - self.num_rows()

    def reset(self) -> None:
        """Drop all stored rows (the baseline history is kept)."""
        self._chunks = []

    # -- writing -----------------------------------------------------------------------------------------

    def add(
        self,
        step: int,
        rewards: torch.Tensor,
        advantages: torch.Tensor,
        group_id: torch.Tensor,
        traj_id: torch.Tensor,
        payload: dict[str, torch.Tensor] | None = None,
    ) -> int:
        """Record the batch's group statistics and store its positive-advantage rows.

        Args:
            step: RL step of this batch.
            rewards: ``(rows,)`` row reward (episode reward incl. tool-call bonus, as in the released code).
            advantages: ``(rows,)`` or ``(rows, T)``; a row is stored iff its advantage (``mean(-1)`` for
                2-D, as released) is > 0.
            group_id, traj_id: ``(rows,)`` integer ids (all rows are used for the group statistics).
            payload: extra per-row tensors to replay (``input_ids``, ``old_log_probs``, masks, ...), each
                with ``rows`` as first dimension; names ``rewards``, ``advantages``, ``step`` are reserved.

        Returns:
            Number of rows stored.
        """
        if not isinstance(rewards, torch.Tensor) or rewards.dim() != 1:
            raise ValueError(f"rewards must have shape (rows,), got {tuple(getattr(rewards, 'shape', ()))}")
        rows = rewards.shape[0]
        if advantages.dim() not in (1, 2) or advantages.shape[0] != rows:
            shape = tuple(advantages.shape)
            raise ValueError(f"advantages must have shape ({rows},) or ({rows}, T), got {shape}")
        payload = dict(payload or {})
        for key, val in payload.items():
            if key in _RESERVED:
                raise ValueError(f"payload key {key!r} is reserved")
            if not isinstance(val, torch.Tensor) or val.dim() == 0 or val.shape[0] != rows:
                raise ValueError(f"payload[{key!r}] must be a tensor with first dimension {rows}")
        if self._chunks:
            ref = self._chunks[-1]
            if set(ref["payload"]) != set(payload):
                stored = sorted(ref["payload"])
                raise ValueError(f"payload keys {sorted(payload)} differ from stored {stored}")
            for key, val in payload.items():
                if val.shape[1:] != ref["payload"][key].shape[1:]:
                    shape = tuple(val.shape[1:])
                    raise ValueError(f"payload[{key!r}] trailing shape {shape} differs from stored")
            if advantages.shape[1:] != ref["advantages"].shape[1:]:
                raise ValueError("advantages trailing shape differs from stored rows")
        g_mean, g_std, _ = group_reward_stats(rewards, group_id, traj_id)
        # FIFO baseline history, trimmed before appending (released order)
        while self._mean_hist and sum(int(v.numel()) for _, v in self._mean_hist) > self.baseline_capacity:
            self._mean_hist.pop(0)
            self._std_hist.pop(0)
        self._mean_hist.append((int(step), g_mean.detach().cpu()))
        self._std_hist.append((int(step), g_std.detach().cpu()))
        pos = (advantages.mean(-1) if advantages.dim() == 2 else advantages) > 0
        n = int(pos.sum())
        if n == 0:
            return 0
        self._chunks.append(
            {
                "step": int(step),
                "rewards": rewards.detach()[pos].clone(),
                "advantages": advantages.detach()[pos].clone(),
                "payload": {k: v.detach()[pos].clone() for k, v in payload.items()},
            }
        )
        return n

    # -- reading -----------------------------------------------------------------------------------------

    def sample(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor] | None:
        """Recalibrate, keep ``Ã >= 0``, draw a power-of-two subset (<= capacity), then reset the buffer.

        Returns:
            None if nothing survives, else a dict of row tensors in buffer order: ``advantages`` (the
            recalibrated ``(rows,)`` :math:`R - P_{50}`, or stored advantages × ``weight_decay``),
            ``rewards``, ``step`` (long) and every payload key.
        """
        if not self._chunks:
            return None
        rewards = torch.cat([c["rewards"] for c in self._chunks])
        old_adv = torch.cat([c["advantages"] for c in self._chunks])
        steps = torch.cat(
            [torch.full((c["rewards"].shape[0],), c["step"], dtype=torch.long) for c in self._chunks]
        ).to(rewards.device)
        payload = {k: torch.cat([c["payload"][k] for c in self._chunks]) for k in self._chunks[0]["payload"]}
        if self.weight_decay is None:
            base = self.baseline()
            if base is None:  # cannot happen after add(); kept for loaded states
                return None
            adv = recalibrate_advantages(
                rewards,
                base[0].to(rewards.device),
                base[1].to(rewards.device),
                norm_by_std=self.norm_adv_by_std,
                eps=self.eps,
            )
            keep = adv >= 0
        else:
            adv = old_adv * self.weight_decay
            keep = torch.ones(rewards.shape[0], dtype=torch.bool, device=rewards.device)
        idx = torch.nonzero(keep).squeeze(-1)
        m = min(nearest_lower_power_of_two(idx.numel()), self.capacity)
        sel = torch.sort(idx[_randperm(idx.numel(), generator, idx.device)[:m]]).values
        self.reset()
        if m == 0:
            return None
        out = {"advantages": adv[sel], "rewards": rewards[sel], "step": steps[sel]}
        out.update({k: v[sel] for k, v in payload.items()})
        return out

    # -- state -------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": {
                "capacity": self.capacity,
                "baseline_capacity": self.baseline_capacity,
                "tolerate_steps": self.tolerate_steps,
                "norm_adv_by_std": self.norm_adv_by_std,
                "weight_decay": self.weight_decay,
                "eps": self.eps,
            },
            "chunks": [
                {
                    "step": c["step"],
                    "rewards": c["rewards"].clone(),
                    "advantages": c["advantages"].clone(),
                    "payload": {k: v.clone() for k, v in c["payload"].items()},
                }
                for c in self._chunks
            ],
            "mean_history": [(s, v.clone()) for s, v in self._mean_hist],
            "std_history": [(s, v.clone()) for s, v in self._std_hist],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"config", "chunks", "mean_history", "std_history"} - set(state)
        if missing:
            raise ValueError(f"SpearReplayBuffer state is missing keys {sorted(missing)}")
        if len(state["mean_history"]) != len(state["std_history"]):
            raise ValueError("mean_history and std_history must have the same length")
        cfg = state["config"]
        unknown = set(cfg) - set(_CONFIG_KEYS)
        if unknown:
            raise ValueError(f"unknown SpearReplayBuffer config keys {sorted(unknown)}")
        for key in _CONFIG_KEYS:
            if key in cfg:
                setattr(self, key, cfg[key])
        self._chunks = [
            {
                "step": int(c["step"]),
                "rewards": c["rewards"].clone(),
                "advantages": c["advantages"].clone(),
                "payload": {k: v.clone() for k, v in c["payload"].items()},
            }
            for c in state["chunks"]
        ]
        self._mean_hist = [(int(s), v.clone()) for s, v in state["mean_history"]]
        self._std_hist = [(int(s), v.clone()) for s, v in state["std_history"]]
