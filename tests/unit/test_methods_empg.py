"""Tests for agent_rl.methods.empg (Entropy-Modulated Policy Gradients)."""

from __future__ import annotations

import math

import pytest
import torch

from agent_rl.methods import empg


def make_rows(seed: int, n_groups: int, traj_per_group: int, max_turns: int, t: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    traj, turn = [], []
    tid = 0
    for _ in range(n_groups * traj_per_group):
        length = int(torch.randint(1, max_turns + 1, (1,), generator=g))
        for s in range(length):
            traj.append(1000 + 7 * tid)
            turn.append(s)
        tid += 1
    perm = torch.randperm(len(traj), generator=g)
    rows = len(traj)
    lengths = torch.randint(0, t + 1, (rows,), generator=g)
    return {
        "traj_id": torch.tensor(traj)[perm],
        "turn": torch.tensor(turn)[perm],
        "mask": (torch.arange(t)[None, :] < lengths[:, None]).long(),
        "ent": torch.rand(rows, t, generator=g) * 3,
        "adv": torch.randn(rows, generator=g),
    }


def empg_loop(adv, ent, mask, traj, turn, k=1.0, k_next=1.0, zeta=0.05, center=True, eps=1e-8):
    """Plain per-row reference implementation of EMPG with Python floats."""
    rows, t = ent.shape
    h, valid = [], []
    for r in range(rows):
        toks = [float(ent[r, j]) for j in range(t) if mask[r, j]]
        valid.append(bool(toks))
        h.append(sum(toks) / len(toks) if toks else 0.0)
    vh = [h[r] for r in range(rows) if valid[r]]
    lo, hi = (min(vh), max(vh)) if vh else (0.0, 0.0)
    hn = [(h[r] - lo) / (hi - lo + eps) if valid[r] and hi > lo else 0.0 for r in range(rows)]
    e = [math.exp(-k * x) for x in hn]
    n_valid = sum(valid)
    mean_e = sum(e[r] for r in range(rows) if valid[r]) / max(n_valid, 1)
    g = [e[r] / mean_e if valid[r] else 1.0 for r in range(rows)]
    where = {(int(traj[r]), int(turn[r])): r for r in range(rows)}
    f = []
    for r in range(rows):
        nr = where.get((int(traj[r]), int(turn[r]) + 1))
        f.append(math.exp(-k_next * hn[nr]) if nr is not None and valid[nr] and valid[r] else 0.0)
    a_mod = [g[r] * float(adv[r]) + zeta * f[r] for r in range(rows)]
    if center and n_valid:
        m = sum(a_mod[r] for r in range(rows) if valid[r]) / n_valid
        a_mod = [a - m for a in a_mod]
    return [a_mod[r] if valid[r] else 0.0 for r in range(rows)], g, f


def test_by_hand_three_steps():
    # trajectory 5: turns 0, 1; trajectory 9: one step. Step entropies 1, 3, 2.
    ent = torch.tensor([[1.0, 1.0, 0.0], [2.0, 4.0, 3.0], [2.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]])
    traj = torch.tensor([5, 5, 9])
    turn = torch.tensor([0, 1, 0])
    adv = torch.tensor([1.0, 1.0, -1.0])
    hn = [0.0, 1.0, 0.5]  # (H - 1) / (3 - 1)
    e = [math.exp(-x) for x in hn]
    g = [x / (sum(e) / 3) for x in e]
    f = [math.exp(-1.0), 0.0, 0.0]  # only step 0 of trajectory 5 has a next step (H~ = 1)
    a_mod = [g[0] * 1 + 0.05 * f[0], g[1] * 1, g[2] * -1]
    mean = sum(a_mod) / 3
    expected = torch.tensor([a - mean for a in a_mod])
    terms = empg.empg_terms(ent, mask, traj, turn)
    assert torch.allclose(terms.h_norm, torch.tensor(hn), atol=1e-6)
    assert torch.allclose(terms.g, torch.tensor(g), atol=1e-6)
    assert torch.allclose(terms.f, torch.tensor(f), atol=1e-6)
    out = empg.empg_advantages(adv, ent, mask, traj, turn)
    assert torch.allclose(out, expected, atol=1e-6)
    assert abs(float(out.sum())) < 1e-6


SIZES = [(0, 2, 4, 5, 6), (1, 4, 8, 3, 10), (2, 1, 1, 1, 3), (3, 3, 5, 12, 16), (4, 6, 2, 2, 1)]


@pytest.mark.parametrize("seed,n_groups,traj_per_group,max_turns,t", SIZES)
@pytest.mark.parametrize("zeta,k,k_next,center", [(0.05, 1.0, 1.0, True), (0.3, 2.0, 0.5, False)])
def test_matches_loop(seed, n_groups, traj_per_group, max_turns, t, zeta, k, k_next, center):
    b = make_rows(seed, n_groups, traj_per_group, max_turns, t)
    expected, g_exp, f_exp = empg_loop(
        b["adv"], b["ent"], b["mask"], b["traj_id"], b["turn"], k=k, k_next=k_next, zeta=zeta, center=center
    )
    out = empg.empg_advantages(
        b["adv"], b["ent"], b["mask"], b["traj_id"], b["turn"], k=k, k_next=k_next, zeta=zeta, center=center
    )
    assert torch.allclose(out, torch.tensor(expected), atol=1e-5)
    terms = empg.empg_terms(b["ent"], b["mask"], b["traj_id"], b["turn"], k=k, k_next=k_next)
    assert torch.allclose(terms.g, torch.tensor(g_exp), atol=1e-5)
    assert torch.allclose(terms.f, torch.tensor(f_exp), atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_token_level_advantages_equal_row_form(seed):
    b = make_rows(seed, 3, 4, 5, 7)
    adv2d = b["adv"][:, None] * b["mask"]
    out1 = empg.empg_advantages(b["adv"], b["ent"], b["mask"], b["traj_id"], b["turn"])
    out2 = empg.empg_advantages(adv2d, b["ent"], b["mask"], b["traj_id"], b["turn"])
    assert out2.shape == adv2d.shape
    assert torch.allclose(out2, out1[:, None] * b["mask"], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_g_averages_one_over_valid_steps(seed):
    b = make_rows(seed, 4, 4, 6, 8)
    terms = empg.empg_terms(b["ent"], b["mask"], b["traj_id"], b["turn"], k=1.7)
    assert terms.valid.any()
    assert float(terms.g[terms.valid].mean()) == pytest.approx(1.0, abs=1e-6)
    # low entropy steps are scaled up, high entropy ones down
    h = (b["ent"] * b["mask"]).sum(-1) / b["mask"].sum(-1).clamp_min(1)
    v = terms.valid
    assert float(terms.g[v][h[v].argmin()]) > 1.0 > float(terms.g[v][h[v].argmax()])


def test_equal_entropies_give_unit_scale_and_finite():
    ent = torch.full((4, 3), 0.7)
    mask = torch.ones(4, 3)
    traj = torch.tensor([0, 0, 1, 1])
    turn = torch.tensor([0, 1, 0, 1])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    terms = empg.empg_terms(ent, mask, traj, turn)
    assert torch.equal(terms.g, torch.ones(4))
    assert torch.equal(terms.f, torch.tensor([1.0, 0.0, 1.0, 0.0]))
    out = empg.empg_advantages(adv, ent, mask, traj, turn, zeta=0.05)
    assert torch.allclose(out, torch.tensor([1.025, 0.975, -0.975, -1.025]), atol=1e-6)


def test_single_step_trajectories_get_no_bonus():
    g = torch.Generator().manual_seed(3)
    ent = torch.rand(6, 4, generator=g)
    mask = torch.ones(6, 4)
    traj = torch.arange(6) * 10
    turn = torch.zeros(6, dtype=torch.long)
    adv = torch.randn(6, generator=g)
    terms = empg.empg_terms(ent, mask, traj, turn)
    assert torch.equal(terms.f, torch.zeros(6))
    out = empg.empg_advantages(adv, ent, mask, traj, turn, zeta=10.0)
    expected = terms.g * adv
    assert torch.allclose(out, expected - expected.mean(), atol=1e-6)


def test_zero_variance_advantages_stay_finite():
    ent = torch.rand(5, 3)
    mask = torch.ones(5, 3)
    out = empg.empg_advantages(torch.zeros(5), ent, mask, torch.arange(5), torch.zeros(5, dtype=torch.long))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.zeros(5), atol=1e-7)


def test_empty_mask_rows_are_ignored_and_zeroed():
    b = make_rows(7, 2, 3, 4, 5)
    b["mask"][b["mask"].sum(-1) == 0, 0] = 1  # start from a batch with no empty row
    rows = b["adv"].shape[0]
    base = empg.empg_advantages(b["adv"], b["ent"], b["mask"], b["traj_id"], b["turn"])
    # append padding rows: own trajectories, empty masks, huge entropies and advantages
    ent = torch.cat([b["ent"], torch.full((2, 5), 99.0)])
    mask = torch.cat([b["mask"], torch.zeros(2, 5, dtype=b["mask"].dtype)])
    traj = torch.cat([b["traj_id"], torch.tensor([-1, -2])])
    turn = torch.cat([b["turn"], torch.tensor([0, 0])])
    adv = torch.cat([b["adv"], torch.tensor([50.0, -50.0])])
    out = empg.empg_advantages(adv, ent, mask, traj, turn)
    assert torch.allclose(out[:rows], base, atol=1e-6)
    assert torch.equal(out[rows:], torch.zeros(2))


def test_next_step_with_empty_mask_gives_no_bonus_and_all_empty_is_zero():
    ent = torch.tensor([[1.0, 1.0], [5.0, 5.0], [2.0, 2.0]])
    mask = torch.tensor([[1, 1], [0, 0], [1, 1]])
    terms = empg.empg_terms(ent, mask, torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0]))
    assert torch.equal(terms.f, torch.zeros(3))
    out = empg.empg_advantages(
        torch.ones(3), ent, torch.zeros_like(mask), torch.arange(3), torch.zeros(3).long()
    )
    assert torch.equal(out, torch.zeros(3))


def test_row_permutation_equivariance():
    b = make_rows(13, 3, 3, 5, 6)
    out = empg.empg_advantages(b["adv"], b["ent"], b["mask"], b["traj_id"], b["turn"])
    p = torch.randperm(out.shape[0], generator=torch.Generator().manual_seed(0))
    out_p = empg.empg_advantages(b["adv"][p], b["ent"][p], b["mask"][p], b["traj_id"][p], b["turn"][p])
    assert torch.allclose(out_p, out[p], atol=1e-6)


def test_bf16_entropy_and_dtype_preserved():
    b = make_rows(2, 2, 3, 4, 5)
    out = empg.empg_advantages(b["adv"].double(), b["ent"].bfloat16(), b["mask"], b["traj_id"], b["turn"])
    assert out.dtype == torch.float64 and torch.isfinite(out).all()


def test_bad_shapes_raise():
    ent, mask = torch.rand(3, 4), torch.ones(3, 4)
    traj, turn = torch.arange(3), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="advantages"):
        empg.empg_advantages(torch.zeros(4), ent, mask, traj, turn)
    with pytest.raises(ValueError, match="same shape"):
        empg.empg_advantages(torch.zeros(3, 5), ent, mask, traj, turn)
    with pytest.raises(ValueError, match="traj_id"):
        empg.empg_advantages(torch.zeros(3), ent, mask, torch.arange(2), turn)
    with pytest.raises(ValueError, match="response_mask"):
        empg.empg_advantages(torch.zeros(3), ent, torch.ones(3, 3), traj, turn)
