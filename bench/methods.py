#!/usr/bin/env python
"""Cost of the entropy methods (``agent_rl.methods``) next to the verl code they sit beside.

One synthetic but realistic training batch (default 8192 step rows x 512 response tokens): trajectories of
1-20 steps, 8 trajectories per rollout group, token entropies exponential (mean 0.6 nats), response lengths
drawn log-normally (median ~180 tokens, cut at 512, so some rows are full), rows shuffled (verl's
``balance_batch`` reorders rows), 40% of trajectories succeed (reward 1 on the last response token of every
row of the trajectory), ``response_mask`` int64 as in verl's batch. Every case runs on that same batch in
this process.

Timing: each group of cases runs ``--warmup`` untimed and ``--reps`` timed repetitions; a repetition runs
every case of the group once (setup untimed; the order rotates between repetitions), so a case and its
baseline see the same load. Printed per case: median and min wall time (``time.perf_counter``), median
process CPU time (``time.process_time``); ``ratio`` is the median over repetitions of the per-repetition
wall-time ratio to the baseline (targets are judged on it), ``cpu r.`` the same with CPU times, which the
machine's other load disturbs least. ``torch.set_num_threads(--threads)``, default 1: on the shared 2-core
box other jobs hold the cores, and with 2 threads every parallel tensor op waits for its second thread to
be scheduled (milliseconds each). Under such load verl's vectorized GRPO took a median 73 ms at 2 threads
against 24 ms at 1, the loss baseline 741 ms against 220 ms, while verl's GRPO loop, Python-bound, runs
single-threaded either way. ``--threads 2`` on an idle box.

Advantage transforms, baseline ``verl.trainer.ppo.core_algos.compute_grpo_outcome_advantage`` (what
``adv_estimator: grpo`` runs; a Python loop over rows) on the batch's token-level rewards and string uids:

- ``empg_advantages`` and ``aem_advantages`` applied to GRPO's ``(rows, T)`` output (target <= 1.5x), and
  to ``(rows,)`` per-row advantages (information);
- verl's ``compute_grpo_vectorized_outcome_advantage`` (information: a much faster baseline).

EPO loss, forward + backward, target <= 1.2x. Baseline: the tensor work of verl's ``ppo_loss``
(``verl/workers/utils/losses.py``) on padded ``(rows, T)`` tensors: ``core_algos.compute_policy_loss_vanilla``
(clip 0.2/0.28, ``token-mean``, the ``global_batch_info`` verl sets; no KL term, which would add the same
work to both sides) minus ``entropy_coeff`` x ``agg_loss(entropy)``, backward into leaf ``log_prob`` and
``entropy`` tensors. The EPO case is the same policy loss with EPO in place of verl's entropy term (EPO's
lambda *is* ``entropy_coeff``, as in the released code): ``epo_loss(pg_loss, entropy, ...)``, paper variant,
smoothing active (reference from an ``EntropyHistory``, step 40 of 150, alpha 0.1). Why not ``ppo_loss``
itself on the full batch: it takes the model output in verl's padding-free layout and pads it back with
``no_padding_2_padding``, one slice + ``F.pad`` per row; the backward of 8192 slices of one values tensor
adds 8192 full-size gradient buffers (quadratic), measured at 72-296 s per call here, so it would time
verl's plumbing, not the loss. verl calls it per micro-batch, so ``ppo_loss`` is also timed that way
(information, ``--micro-batches`` of 8 rows, ``ppo_micro_batch_size_per_gpu``): the project's
``conf/algo/grpo.yaml`` actor settings (clip 0.2, KL loss 0.01 low_var_kl, entropy_coeff 0.001,
token-mean), nested log-prob/entropy outputs as verl's FSDP engine produces them; the EPO case pads the
entropy with the same ``no_padding_2_padding``, calls ``ppo_loss`` without entropy and adds ``epo_loss``.
The released EPO variant (smoothing forced on via ``gate_turn=0``) is shown for information.

SPEAR (information, absolute times): ``SpearReplayBuffer.add`` of the whole batch (payload: response ids,
mask, old log-probs), ``sample`` from a full buffer, ``clip_cov_select`` with the on-policy bounds.

The process exits non-zero only on errors; missed targets are reported, not failed.

    .venv/bin/python bench/methods.py                    # full size, 2-4 min on the busy 2-core box
    .venv/bin/python bench/methods.py --threads 2        # on an idle machine
    .venv/bin/python bench/methods.py --rows 1024 --reps 5 --only adv,loss   # quick look
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

GROUP_SIZE = 8
MAX_STEPS = 20


@dataclass
class Batch:
    rows: int
    t: int
    traj_id: torch.Tensor
    turn: torch.Tensor
    group_id: torch.Tensor
    uid: np.ndarray
    mask: torch.Tensor  # bool (rows, T)
    token_entropy: torch.Tensor  # (rows, T), values on the padding too (the methods must ignore them)
    old_log_prob: torch.Tensor
    log_prob: torch.Tensor
    ref_log_prob: torch.Tensor
    response_ids: torch.Tensor
    token_level_rewards: torch.Tensor
    row_reward: torch.Tensor


@dataclass
class Row:
    name: str
    median_ms: float  # wall clock
    min_ms: float
    cpu_ms: float  # median process CPU time
    base: str | None
    ratio: float | None  # wall: median over repetitions of the per-repetition ratio to base
    cpu_ratio: float | None  # the same with CPU times
    target: float | None

    HEADER = (
        f"{'case':<26} {'median ms':>9} {'min ms':>8} {'cpu ms':>8}  {'ratio':>5} {'cpu r.':>6}  "
        f"{'vs':<20} target"
    )

    def format(self) -> str:
        ratio = f"{self.ratio:5.2f}" if self.ratio is not None else ""
        cpu_ratio = f"{self.cpu_ratio:6.2f}" if self.cpu_ratio is not None else ""
        target = ""
        if self.target is not None:
            ok = self.ratio is not None and self.ratio <= self.target
            target = f"<={self.target:.1f} " + ("ok" if ok else "MISSED")
        return (
            f"{self.name:<26} {self.median_ms:9.1f} {self.min_ms:8.1f} {self.cpu_ms:8.1f}  {ratio:>5} "
            f"{cpu_ratio:>6}  {self.base or '':<20} {target}"
        ).rstrip()


def make_batch(rows: int, t: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    traj, turn, group, success = [], [], [], []
    tid = 0
    while len(traj) < rows:
        gid = tid // GROUP_SIZE
        length = int(torch.randint(1, MAX_STEPS + 1, (1,), generator=g))
        ok = float(torch.rand((), generator=g) < 0.4)
        for s in range(length):
            traj.append(tid)
            turn.append(s)
            group.append(gid)
            success.append(ok)
        tid += 1
    perm = torch.randperm(rows, generator=g)  # the last trajectory may lose its tail steps
    traj_id = torch.tensor(traj[:rows])[perm]
    turn_t = torch.tensor(turn[:rows])[perm]
    group_id = torch.tensor(group[:rows])[perm]
    row_reward = torch.tensor(success[:rows])[perm]
    lengths = torch.exp(torch.randn(rows, generator=g) * 0.6 + math.log(180.0)).round().clamp(8, t).long()
    mask = torch.arange(t)[None, :] < lengths[:, None]
    token_entropy = torch.empty(rows, t).exponential_(1 / 0.6, generator=g)  # mostly low, a long tail
    old_log_prob = -torch.rand(rows, t, generator=g) * 2.0
    log_prob = old_log_prob + torch.randn(rows, t, generator=g) * 0.05
    ref_log_prob = old_log_prob + torch.randn(rows, t, generator=g) * 0.05
    response_ids = torch.randint(0, 150_000, (rows, t), generator=g)
    tlr = torch.zeros(rows, t)
    tlr[torch.arange(rows), lengths - 1] = row_reward
    # verl's uid: one str(uuid4()) per prompt, an object array
    names = np.array([f"{i:08x}-uid" for i in range(int(group_id.max()) + 1)], dtype=object)
    uid = names[group_id.numpy()]
    return Batch(
        rows, t, traj_id, turn_t, group_id, uid, mask, token_entropy, old_log_prob, log_prob,
        ref_log_prob, response_ids, tlr, row_reward,
    )  # fmt: skip


Case = tuple[Callable[[], object] | None, Callable[[], object]]  # (untimed setup or None, timed call)


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)  # seconds, time.perf_counter
    cpu: list[float] = field(default_factory=list)  # seconds of this process's CPU, time.process_time


def time_cases(cases: dict[str, Case], reps: int, warmup: int) -> dict[str, Samples]:
    """Interleaved timing: each repetition runs every case once after its untimed setup.

    The order rotates by one case per repetition, so that no case always runs first (or after the same one).
    """
    out = {k: Samples() for k in cases}
    names = list(cases)
    for i in range(warmup + reps):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            setup, fn = cases[name]
            if setup is not None:
                setup()
            gc.collect()
            gc.disable()
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            t1, c1 = time.perf_counter(), time.process_time()
            gc.enable()
            if i >= warmup:
                out[name].wall.append(t1 - t0)
                out[name].cpu.append(c1 - c0)
    return out


class Leaves:
    """Fresh-gradient leaf tensors for the loss cases (grads are dropped in the untimed setup)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.t = [x.clone().requires_grad_(True) for x in tensors]

    def reset(self) -> None:
        for x in self.t:
            x.grad = None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=8192)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (see above)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--micro-batches", type=int, default=64, help="ppo_loss micro-batches (8 rows) per rep")
    ap.add_argument(
        "--only", default="adv,loss,mb,spear", help="comma list of groups: adv, loss, mb (ppo_loss), spear"
    )
    args = ap.parse_args(argv)
    groups = set(args.only.split(","))
    if not groups <= {"adv", "loss", "mb", "spear"}:
        ap.error(f"unknown groups in --only: {sorted(groups - {'adv', 'loss', 'mb', 'spear'})}")

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    t_start = time.perf_counter()

    from verl.trainer.ppo import core_algos
    from verl.workers.config import ActorConfig

    from agent_rl.methods import aem, empg, epo, spear

    b = make_batch(args.rows, args.tokens, args.seed)
    m = b.mask
    mi = m.long()  # verl's batch holds response_mask as int64 (a slice of attention_mask)
    n_tok = int(m.sum())
    adv2d, _ = core_algos.compute_grpo_outcome_advantage(b.token_level_rewards, mi, b.uid)
    adv1d = adv2d[torch.arange(b.rows), 0].contiguous()
    print(
        f"batch: {b.rows} rows x {b.t} tokens, {int(b.traj_id.max()) + 1} trajectories "
        f"({GROUP_SIZE} per group, 1-{MAX_STEPS} steps), {int(b.group_id.max()) + 1} groups, "
        f"mean response {n_tok / b.rows:.0f} tokens ({n_tok} masked), "
        f"{int((m.sum(-1) == b.t).sum())} rows at {b.t}"
    )
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, reps {args.reps} (+{args.warmup} "
        f"warm-up), cpus {os.cpu_count()}, load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}"
    )

    results: list[Row | None] = []  # None: a blank line

    def add(times: dict[str, Samples], name: str, base: str | None = None, target: float | None = None,
            scale: float = 1.0) -> None:  # fmt: skip
        x = times[name]
        ratio = cpu_ratio = None
        if base is not None:  # median over repetitions of the paired ratio (same repetition, same load)
            ratio = statistics.median(a / b for a, b in zip(x.wall, times[base].wall, strict=True))
            cpu_ratio = statistics.median(
                a / max(b, 1e-9) for a, b in zip(x.cpu, times[base].cpu, strict=True)
            )
        ms = scale * 1e3
        med, best, cpu = statistics.median(x.wall) * ms, min(x.wall) * ms, statistics.median(x.cpu) * ms
        results.append(Row(name, med, best, cpu, base, ratio, cpu_ratio, target))

    # -- advantage transforms --------------------------------------------------------------------------
    if "adv" in groups:
        grpo = "verl grpo (loop)"
        cases = {
            grpo: (None, lambda: core_algos.compute_grpo_outcome_advantage(b.token_level_rewards, mi, b.uid)),
            "verl grpo_vectorized": (
                None,
                lambda: core_algos.compute_grpo_vectorized_outcome_advantage(
                    b.token_level_rewards, mi, b.uid
                ),
            ),
            "empg (rows,T)": (
                None,
                lambda: empg.empg_advantages(adv2d, b.token_entropy, mi, b.traj_id, b.turn),
            ),
            "empg (rows,)": (
                None,
                lambda: empg.empg_advantages(adv1d, b.token_entropy, mi, b.traj_id, b.turn),
            ),
            "aem (rows,T)": (None, lambda: aem.aem_advantages(adv2d, b.token_entropy, mi, b.group_id)),
            "aem (rows,)": (None, lambda: aem.aem_advantages(adv1d, b.token_entropy, mi, b.group_id)),
        }
        times = time_cases(cases, args.reps, args.warmup)
        add(times, grpo)
        add(times, "verl grpo_vectorized", grpo)
        add(times, "empg (rows,T)", grpo, 1.5)
        add(times, "empg (rows,)", grpo)
        add(times, "aem (rows,T)", grpo, 1.5)
        add(times, "aem (rows,)", grpo)
        results.append(None)
        add(times, "empg (rows,T)", "verl grpo_vectorized")
        add(times, "aem (rows,T)", "verl grpo_vectorized")
        results.append(None)

    # -- EPO loss ----------------------------------------------------------------------------------------
    entropy_coeff = 1e-3
    cfg = ActorConfig(
        strategy="fsdp", rollout_n=GROUP_SIZE, ppo_micro_batch_size_per_gpu=8, loss_agg_mode="token-mean",
        clip_ratio_low=0.2, clip_ratio_high=0.28, entropy_coeff=entropy_coeff,
    )  # fmt: skip
    cfg.global_batch_info.update(
        dp_size=1, batch_num_tokens=n_tok, global_batch_size=b.rows, loss_scale_factor=None
    )
    hist = epo.EntropyHistory()
    for k in range(40):
        hist.append(float(epo.turns.batch_token_mean(b.token_entropy, m)) * (1.0 + 0.002 * k))
    epo_kw = dict(
        reference=hist.reference(), step=40, total_steps=150, entropy_coeff=entropy_coeff, alpha=0.1
    )
    _, em = epo.epo_regularizer(b.token_entropy, m, b.traj_id, **epo_kw)
    print(
        f"EPO: reference {float(em['epo/reference']):.3f}, beta {float(em['epo/beta']):.3f}, "
        f"{float(em['epo/penalised_share']):.1%} of tokens outside the corridor"
    )
    if "loss" in groups:
        lv = Leaves(b.log_prob, b.token_entropy)

        def pg_loss() -> torch.Tensor:
            pg, _ = core_algos.compute_policy_loss_vanilla(
                b.old_log_prob, lv.t[0], adv2d, m, "token-mean", cfg
            )
            return pg

        def base_loss() -> None:
            ent = core_algos.agg_loss(lv.t[1], m, "token-mean", **cfg.global_batch_info)
            (pg_loss() - entropy_coeff * ent).backward()

        def epo_paper() -> None:
            loss, _ = epo.epo_loss(pg_loss(), lv.t[1], m, b.traj_id, **epo_kw)
            loss.backward()

        def epo_released() -> None:
            loss, _ = epo.epo_loss(
                pg_loss(), lv.t[1], m, b.traj_id, turn=b.turn, variant="released", gate_turn=0, **epo_kw
            )
            loss.backward()

        def pg_only() -> None:
            pg_loss().backward()

        base = "pg + entropy fwd+bwd"
        cases = {
            base: (lv.reset, base_loss),
            "pg + epo (paper) fwd+bwd": (lv.reset, epo_paper),
            "pg + epo (released)": (lv.reset, epo_released),
            "pg alone fwd+bwd": (lv.reset, pg_only),
        }
        times = time_cases(cases, args.reps, args.warmup)
        add(times, base)
        add(times, "pg + epo (paper) fwd+bwd", base, 1.2)
        add(times, "pg + epo (released)", base)
        add(times, "pg alone fwd+bwd", base)
        results.append(None)

    if "mb" in groups:
        times, n_mb = ppo_loss_cases(b, adv2d, n_tok, epo_kw, args)
        add(times, "verl ppo_loss per mb", scale=1.0 / n_mb)
        add(times, "ppo_loss + epo per mb", "verl ppo_loss per mb", scale=1.0 / n_mb)
        results.append(None)

    # -- SPEAR ---------------------------------------------------------------------------------------------
    if "spear" in groups:
        payload = {"responses": b.response_ids, "response_mask": m.long(), "old_log_probs": b.old_log_prob}
        gen = torch.Generator().manual_seed(1)
        buf = spear.SpearReplayBuffer(capacity=2048, tolerate_steps=5)
        full = spear.SpearReplayBuffer(capacity=max(16, b.rows // 4), tolerate_steps=5)
        for step in range(3):
            full.add(step, b.row_reward, adv2d, b.group_id, b.traj_id, payload)
        if not full.is_full():
            raise RuntimeError("SPEAR buffer did not fill; the sample case would time nothing")
        full_state = full.state_dict()
        counter = [10]

        def sp_add() -> None:
            counter[0] += 1
            buf.add(counter[0], b.row_reward, adv2d, b.group_id, b.traj_id, payload)
            buf.remove_old()

        def sp_sample() -> None:
            out = full.sample(gen)
            if out is None:
                raise RuntimeError("SPEAR sample returned nothing")

        cases = {
            "spear buffer.add": (None, sp_add),
            "spear buffer.sample": (lambda: full.load_state_dict(full_state), sp_sample),
            "spear clip_cov_select": (
                None,
                lambda: spear.clip_cov_select(adv2d, b.log_prob, m, generator=gen),
            ),
        }
        times = time_cases(cases, args.reps, args.warmup)
        for name in cases:
            add(times, name)

    load1 = os.getloadavg()
    print()
    print(Row.HEADER)
    print("-" * len(Row.HEADER))
    for row in results:
        print("" if row is None else row.format())
    print(
        f"\nload average at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; "
        f"total {time.perf_counter() - t_start:.0f} s"
    )
    return 0


def ppo_loss_cases(
    b: Batch, adv2d: torch.Tensor, n_tok: int, epo_kw: dict, args: argparse.Namespace
) -> tuple[dict[str, Samples], int]:
    """verl's ``ppo_loss`` per micro-batch of 8 rows, as its engine calls it, with and without EPO.

    Returns the times of the whole run of micro-batches and their number.
    """
    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu
    from verl.workers.config import ActorConfig
    from verl.workers.utils.losses import ppo_loss
    from verl.workers.utils.padding import no_padding_2_padding

    from agent_rl.methods import epo

    mb, n_mb = 8, args.micro_batches
    g = torch.Generator().manual_seed(args.seed + 7)
    p = 256  # prompt (observation) width, left-padded
    common = dict(
        strategy="fsdp", rollout_n=GROUP_SIZE, ppo_micro_batch_size_per_gpu=mb, loss_agg_mode="token-mean",
        clip_ratio=0.2, use_kl_loss=True, kl_loss_coef=0.01, kl_loss_type="low_var_kl",
    )  # fmt: skip
    cfg_base = ActorConfig(entropy_coeff=epo_kw["entropy_coeff"], **common)
    cfg_epo = ActorConfig(entropy_coeff=0.0, **common)
    items = []
    for i in range(min(n_mb, b.rows // mb)):
        sl = slice(i * mb, (i + 1) * mb)
        rmask = b.mask[sl]
        plen = torch.randint(32, p + 1, (mb,), generator=g)
        pmask = torch.arange(p)[None, :] >= (p - plen)[:, None]
        attn = torch.cat([pmask, rmask], 1).long()
        data = TensorDict(
            {
                "prompts": torch.zeros(mb, p, dtype=torch.long),
                "responses": b.response_ids[sl],
                "attention_mask": attn,
                "response_mask": rmask.long(),
                "old_log_probs": b.old_log_prob[sl],
                "advantages": adv2d[sl],
                "ref_log_prob": b.ref_log_prob[sl],
            },
            batch_size=[mb],
        )
        tu.assign_non_tensor(data, dp_size=1, batch_num_tokens=n_tok, global_batch_size=b.rows)
        seq = attn.sum(-1)
        offsets = torch.zeros(mb + 1, dtype=torch.long)
        offsets[1:] = seq.cumsum(0)
        nnz = int(offsets[-1])
        # log_probs/entropy in the padding-free layout: response values sit at positions [prompt-1, seq-1)
        lp_vals = torch.empty(nnz)
        ent_vals = torch.empty(nnz)
        for r in range(mb):
            start, lr = int(offsets[r] + plen[r] - 1), int(rmask[r].sum())
            lp_vals[int(offsets[r]) : int(offsets[r + 1])] = -1.0
            ent_vals[int(offsets[r]) : int(offsets[r + 1])] = 1.0
            lp_vals[start : start + lr] = b.log_prob[i * mb + r, :lr]
            ent_vals[start : start + lr] = b.token_entropy[i * mb + r, :lr]
        items.append((data, Leaves(lp_vals, ent_vals), offsets, b.traj_id[sl], rmask))

    def setup() -> None:
        for it in items:
            it[1].reset()

    def outputs(leaves: Leaves, offsets: torch.Tensor) -> dict:
        return {
            "log_probs": torch.nested.nested_tensor_from_jagged(leaves.t[0], offsets),
            "entropy": torch.nested.nested_tensor_from_jagged(leaves.t[1], offsets),
        }

    def run_base() -> None:
        for data, leaves, offsets, _, _ in items:
            loss, _ = ppo_loss(cfg_base, outputs(leaves, offsets), data)
            loss.backward()

    def run_epo() -> None:
        for data, leaves, offsets, traj, rmask in items:
            out = outputs(leaves, offsets)
            ent = no_padding_2_padding(out.pop("entropy"), data)
            pg, _ = ppo_loss(cfg_epo, out, data)
            loss, _ = epo.epo_loss(pg, ent, rmask, traj, **epo_kw)
            loss.backward()

    run_base()  # first call builds verl's lazy state
    cases = {"verl ppo_loss per mb": (setup, run_base), "ppo_loss + epo per mb": (setup, run_epo)}
    return time_cases(cases, args.reps, args.warmup), len(items)


if __name__ == "__main__":
    sys.exit(main())
