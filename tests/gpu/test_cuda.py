"""On a CUDA GPU (skipped elsewhere, tests/conftest.py): the methods and losses in bf16 on the GPU against
their fp32 CPU results, and one actor update of a randomly initialised Qwen2.5-1.5B-shaped model through
verl's FSDP2 path at the GPU clusters' token budget, its peak memory against the planner's estimate.

Run by scripts/gpu_check.sh (under 10 minutes on one GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agent_rl.algos.grpo import grpo_advantages
from agent_rl.methods import aem, empg, epo, spear

pytestmark = pytest.mark.gpu
REPO = Path(__file__).resolve().parents[2]
# bf16 keeps 8 bits of mantissa: relative error ~2**-8 per rounding, a few roundings deep
BF16 = dict(rtol=3e-2, atol=3e-2)


def rows(seed: int = 0, groups: int = 4, per_group: int = 6, t: int = 48) -> dict[str, torch.Tensor]:
    """Step rows of ``groups`` rollout groups: trajectories of 1-3 turns, masked responses."""
    g = torch.Generator().manual_seed(seed)
    n = groups * per_group
    traj = torch.arange(n) // 2  # two step rows per trajectory
    turn = torch.arange(n) % 2
    lengths = torch.randint(4, t + 1, (n,), generator=g)
    return {
        "group": traj // (per_group // 2),
        "traj": traj,
        "turn": turn,
        "mask": torch.arange(t)[None, :] < lengths[:, None],
        "entropy": torch.rand(n, t, generator=g) * 3,
        "log_prob": -torch.rand(n, t, generator=g) * 4,
        "old_log_prob": -torch.rand(n, t, generator=g) * 4,
        "outcome": (torch.rand(n, generator=g) > 0.5).float() * 10,
        "penalty": (torch.rand(n, generator=g) > 0.8).float() * 0.1,
    }


def on_gpu(x: torch.Tensor) -> torch.Tensor:
    return x.cuda().to(torch.bfloat16) if x.is_floating_point() else x.cuda()


def test_advantage_methods_in_bf16_on_the_gpu_match_fp32_on_the_cpu():
    r = rows()
    base = grpo_advantages(r["outcome"], r["penalty"], r["traj"], r["group"], r["turn"])
    gpu = {k: on_gpu(v) for k, v in r.items()}
    base_gpu = grpo_advantages(gpu["outcome"], gpu["penalty"], gpu["traj"], gpu["group"], gpu["turn"])
    torch.testing.assert_close(base_gpu.float().cpu(), base, **BF16)
    cpu_aem = aem.aem_advantages(base, r["entropy"], r["mask"], r["group"])
    gpu_aem = aem.aem_advantages(on_gpu(base), gpu["entropy"], gpu["mask"], gpu["group"])
    torch.testing.assert_close(gpu_aem.float().cpu(), cpu_aem.float(), **BF16)
    cpu_empg = empg.empg_advantages(base, r["entropy"], r["mask"], r["traj"], r["turn"])
    gpu_empg = empg.empg_advantages(on_gpu(base), gpu["entropy"], gpu["mask"], gpu["traj"], gpu["turn"])
    torch.testing.assert_close(gpu_empg.float().cpu(), cpu_empg.float(), **BF16)


def test_losses_in_bf16_on_the_gpu_match_fp32_on_the_cpu():
    """EPO's regularizer and SPEAR's Clip-Cov loss run in the actor workers, on the GPU."""
    r = rows(seed=1)
    gpu = {k: on_gpu(v) for k, v in r.items()}
    kwargs = dict(reference=1.2, step=3, total_steps=10, turn=r["turn"])
    cpu_reg, _ = epo.epo_regularizer(r["entropy"], r["mask"], r["traj"], **kwargs)
    gpu_reg, _ = epo.epo_regularizer(
        gpu["entropy"], gpu["mask"], gpu["traj"], **{**kwargs, "turn": gpu["turn"]}
    )
    torch.testing.assert_close(gpu_reg.float().cpu(), cpu_reg.float(), **BF16)
    adv = torch.randn(r["mask"].shape[0])
    none_zeroed = spear.ClipCovBounds(ratio=1e-4, lb=1e9, ub=2e9)  # compare the PPO part, no random picks
    cpu_loss, _ = spear.clip_cov_policy_loss(
        r["old_log_prob"], r["log_prob"], adv, r["mask"], bounds=none_zeroed
    )
    gpu_loss, _ = spear.clip_cov_policy_loss(
        gpu["old_log_prob"], gpu["log_prob"], on_gpu(adv), gpu["mask"], bounds=none_zeroed
    )
    torch.testing.assert_close(gpu_loss.float().cpu(), cpu_loss.float(), **BF16)


def test_an_actor_update_at_the_token_budget_fits_the_plan():
    """Qwen2.5-1.5B's shape, random weights, one 16,384-token micro-batch (cluster.tokens_per_gpu) of
    2,560-token rows (ALFWorld's prompt + response): the packed SDPA micro-batch attends within each row, and
    the peak memory is within the planner's estimate of the same items (weights, gradients, AdamW, gathered
    layers, activations, fused logits, SDPA mask) and not far below it."""
    cmd = [sys.executable, "-m", "tests.gpu.engine_step", "--model", "qwen2.5-1.5b", "--tokens", "16384"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(result)
    assert result["packed_vs_alone_max_abs"] < 0.1  # bf16 log-probs; a crossed mask differs by ~1
    assert result["peak_gib"] <= 1.15 * result["planned_gib"] + 1.0, result
    assert result["peak_gib"] >= 0.5 * result["planned_gib"], result
