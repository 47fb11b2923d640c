"""Tests for agent_rl.methods.epo (Entropy-regularised Policy Optimisation)."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from agent_rl.methods import epo


def make_rows(seed: int, n_traj: int, max_turns: int, t: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    traj, turn = [], []
    for tid in range(n_traj):
        length = int(torch.randint(1, max_turns + 1, (1,), generator=g))
        for s in range(length):
            traj.append(3 * tid + 11)
            turn.append(s)
    perm = torch.randperm(len(traj), generator=g)
    rows = len(traj)
    lengths = torch.randint(0, t + 1, (rows,), generator=g)
    return {
        "traj_id": torch.tensor(traj)[perm],
        "turn": torch.tensor(turn)[perm],
        "mask": torch.arange(t)[None, :] < lengths[:, None],
        "ent": (torch.rand(rows, t, generator=g) * 3).requires_grad_(True),
    }


def paper_loop(ent, mask, traj, ref, step, total, lam, kl, kr, gamma, alpha):
    """Per-row reference of Eqs. 2-6 built with scalar torch ops (so autograd gives the gradient)."""
    by_traj: dict[int, list[int]] = {}
    for r in range(ent.shape[0]):
        if bool(mask[r].any()):
            by_traj.setdefault(int(traj[r]), []).append(r)
    l_h = ent.sum() * 0.0
    l_s = ent.sum() * 0.0
    for rs in by_traj.values():
        l_h = l_h + sum(ent[r][mask[r]].mean() for r in rs) / len(rs)
        if ref is not None:
            pens = []
            for r in rs:
                h = ent[r][mask[r]]
                ref_r = float(ref[r]) if isinstance(ref, torch.Tensor) and ref.dim() == 1 else float(ref)
                pens.append((alpha * (torch.relu(kl * ref_r - h) + torch.relu(h - kr * ref_r))).mean())
            l_s = l_s + sum(pens) / len(rs)
    b = max(len(by_traj), 1)
    beta = 1 + math.exp(-gamma * step / max(total // 2, 1))
    return -lam * (l_h / b - beta * l_s / b)


def test_hierarchical_mean_by_hand():
    ent = torch.tensor([[1.0, 3.0], [4.0, 100.0], [0.5, 6.0], [7.0, 7.0]])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 0]])
    traj = torch.tensor([0, 0, 1, 2])  # trajectory 2 has only an empty row: not counted in B
    # ((2 + 4) / 2 + 3.25) / 2 = 3.125; the token mean would be (1+3+4+0.5+6)/5 = 2.9
    assert float(epo.hierarchical_mean(ent, mask, traj)) == pytest.approx(3.125)
    assert float(epo.token_mean(ent, mask)) == pytest.approx(2.9)


def test_regularizer_paper_by_hand():
    ent = torch.tensor([[1.0, 3.0], [4.0, 100.0], [0.5, 6.0]], requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]])
    traj = torch.tensor([0, 0, 1])
    # ref 1, corridor [0.5, 2]: penalties row0 [0, 1], row1 [2], row2 [0 (on the bound), 4]
    # L_smooth = 0.1 * ((0.5 + 2) / 2 + 2) / 2 = 0.1625; beta_0 = 2; L_H = 3.125
    reg, metrics = epo.epo_regularizer(
        ent,
        mask,
        traj,
        reference=1.0,
        step=0,
        total_steps=10,
        entropy_coeff=0.01,
        kappa_l=0.5,
        kappa_r=2.0,
        alpha=0.1,
    )
    assert reg.item() == pytest.approx(-0.01 * (3.125 - 2 * 0.1625))
    assert float(metrics["epo/smooth_loss"]) == pytest.approx(0.1625)
    assert float(metrics["epo/penalised_share"]) == pytest.approx(3 / 5)
    assert float(metrics["epo/beta"]) == pytest.approx(2.0)
    assert float(metrics["epo/smoothing_active"]) == 1.0
    reg.backward()
    # token 1.0 of row 0 is inside: only L_H acts: -lam * (1/B)(1/T_0)(1/2) = -0.01 / 8
    assert float(ent.grad[0, 0]) == pytest.approx(-0.01 / 8)
    # token 3.0 is above the corridor: adds lam * beta * alpha * (1/8)
    assert float(ent.grad[0, 1]) == pytest.approx(-0.01 / 8 + 0.01 * 2 * 0.1 / 8)
    assert float(ent.grad[1, 1]) == 0.0  # masked


SIZES = [(0, 3, 4, 5), (1, 8, 6, 8), (2, 1, 1, 3), (3, 12, 3, 12)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hierarchical_weights_sum_to_one_on_masked_tokens(seed):
    b = make_rows(seed, 6, 5, 7)
    w = epo.hierarchical_weights(b["mask"].float(), b["traj_id"], torch.float64)
    assert w.dtype == torch.float64
    assert float(w.sum()) == pytest.approx(1.0)
    assert torch.equal(w > 0, b["mask"])
    x = b["ent"].detach().double()
    assert float((w * x).sum()) == pytest.approx(float(epo.hierarchical_mean(x, b["mask"], b["traj_id"])))
    empty = epo.hierarchical_weights(torch.zeros(3, 2), torch.arange(3), torch.float32)
    assert torch.equal(empty, torch.zeros(3, 2))


@pytest.mark.parametrize("seed,n_traj,max_turns,t", SIZES)
@pytest.mark.parametrize("per_row_ref", [False, True])
def test_paper_matches_loop_value_and_gradient(seed, n_traj, max_turns, t, per_row_ref):
    b = make_rows(seed, n_traj, max_turns, t)
    rows = b["ent"].shape[0]
    ref = torch.rand(rows, generator=torch.Generator().manual_seed(seed)) * 2 if per_row_ref else 1.3
    kw = dict(
        step=seed * 7, total_steps=50, entropy_coeff=0.01, kappa_l=0.5, kappa_r=1.5, gamma=3.0, alpha=0.2
    )
    reg, _ = epo.epo_regularizer(b["ent"], b["mask"], b["traj_id"], reference=ref, **kw)
    (grad,) = torch.autograd.grad(reg, b["ent"])
    expected = paper_loop(
        b["ent"],
        b["mask"],
        b["traj_id"],
        ref,
        kw["step"],
        kw["total_steps"],
        kw["entropy_coeff"],
        kw["kappa_l"],
        kw["kappa_r"],
        kw["gamma"],
        kw["alpha"],
    )
    (grad_exp,) = torch.autograd.grad(expected, b["ent"])
    assert reg.item() == pytest.approx(expected.item(), abs=1e-7)
    assert torch.allclose(grad, grad_exp, atol=1e-9)


def test_penalty_zero_inside_corridor_nonzero_gradient_outside():
    h = torch.tensor([[0.2, 0.5, 1.0, 2.0, 2.5, 4.0]], requires_grad=True)
    p = epo.smoothing_penalty(h, 1.0, kappa_l=0.5, kappa_r=2.0)
    assert torch.allclose(p.detach(), torch.tensor([[0.3, 0.0, 0.0, 0.0, 0.5, 2.0]]))
    p.sum().backward()
    assert h.grad.tolist() == [[-1.0, 0.0, 0.0, 0.0, 1.0, 1.0]]


def test_no_history_means_no_smoothing():
    b = make_rows(4, 4, 3, 5)
    reg, m = epo.epo_regularizer(b["ent"], b["mask"], b["traj_id"], reference=None, step=0, total_steps=10)
    lh = epo.hierarchical_mean(b["ent"], b["mask"], b["traj_id"])
    assert reg.item() == pytest.approx(-1e-3 * lh.item())
    assert float(m["epo/smoothing_active"]) == 0.0 and float(m["epo/penalised_share"]) == 0.0


def test_empty_masks_are_finite_with_zero_gradient():
    ent = torch.rand(3, 4, requires_grad=True)
    mask = torch.zeros(3, 4, dtype=torch.bool)
    for variant in ("paper", "released"):
        reg, metrics = epo.epo_regularizer(
            ent,
            mask,
            torch.arange(3),
            reference=1.0,
            step=3,
            total_steps=10,
            turn=torch.tensor([30, 0, 1]),
            variant=variant,
        )
        (grad,) = torch.autograd.grad(reg, ent)
        assert reg.item() == 0.0
        assert torch.equal(grad, torch.zeros(3, 4))
        assert all(torch.isfinite(v).all() for v in metrics.values())


def test_phase_weights():
    assert epo.phase_weight(0, 150) == pytest.approx(2.0)
    assert epo.phase_weight(75, 150) == pytest.approx(1 + math.exp(-3))
    assert epo.phase_weight(150, 150, gamma=3.0) == pytest.approx(1 + math.exp(-6))
    assert epo.phase_weight(5, 1) == pytest.approx(1 + math.exp(-15))  # k_mid clamped to 1
    assert epo.released_phase_weight(0) == pytest.approx(1.0)
    assert epo.released_phase_weight(75) == pytest.approx(1 - 0.2 * (1 - math.exp(-2)))
    assert epo.released_phase_weight(76) == pytest.approx(0.8 * math.exp(-3 / 75))
    assert epo.released_phase_weight(150) == pytest.approx(0.8 * math.exp(-3))
    assert epo.released_phase_weight(400) == epo.released_phase_weight(150)
    with pytest.raises(ValueError):
        epo.phase_weight(0, 0)


def test_released_penalty_is_constant_and_gated():
    b = make_rows(6, 6, 5, 6)
    rows = b["ent"].shape[0]
    turn_low = torch.zeros(rows, dtype=torch.long)
    turn_high = turn_low.clone()
    turn_high[0] = 25
    kw = dict(
        reference=1.2, step=100, total_steps=125, entropy_coeff=0.01, kappa_l=0.5, kappa_r=1.5, alpha=0.1
    )
    reg_off, m_off = epo.epo_regularizer(
        b["ent"], b["mask"], b["traj_id"], turn=turn_low, variant="released", **kw
    )
    reg_on, m_on = epo.epo_regularizer(
        b["ent"], b["mask"], b["traj_id"], turn=turn_high, variant="released", **kw
    )
    assert float(m_off["epo/smoothing_active"]) == 0.0 and float(m_on["epo/smoothing_active"]) == 1.0
    tok = epo.token_mean(b["ent"], b["mask"])
    assert reg_off.item() == pytest.approx(-0.01 * tok.item())
    h = b["ent"].detach()
    outside = ~((h > 0.6) & (h < 1.8)) & b["mask"]
    share = float(outside.sum()) / float(b["mask"].sum())
    beta = epo.released_phase_weight(100)
    assert float(m_on["epo/penalised_share"]) == pytest.approx(share)
    assert reg_on.item() == pytest.approx(-0.01 * (tok.item() - beta * 0.1 * share), rel=1e-5)
    (g_on,) = torch.autograd.grad(reg_on, b["ent"])
    (g_off,) = torch.autograd.grad(reg_off, b["ent"])
    assert torch.equal(g_on, g_off)  # released smoothing has no gradient
    (g_paper,) = torch.autograd.grad(
        epo.epo_regularizer(b["ent"], b["mask"], b["traj_id"], **kw)[0], b["ent"]
    )
    assert not torch.allclose(g_paper, g_on)


def test_corridor_bounds_open_in_released_closed_in_paper():
    ent = torch.tensor([[0.0, 2.0, 1.0]], requires_grad=True)
    mask = torch.ones(1, 3, dtype=torch.bool)
    kw = dict(reference=1.0, step=0, total_steps=10, kappa_l=0.0, kappa_r=2.0)
    _, m_paper = epo.epo_regularizer(ent, mask, torch.tensor([0]), **kw)
    _, m_rel = epo.epo_regularizer(
        ent, mask, torch.tensor([0]), turn=torch.tensor([30]), variant="released", **kw
    )
    assert float(m_paper["epo/penalised_share"]) == 0.0
    assert float(m_rel["epo/penalised_share"]) == pytest.approx(2 / 3)


def test_epo_loss_adds_pg_loss_and_validates():
    b = make_rows(1, 3, 3, 4)
    pg = torch.tensor(0.37)
    loss, metrics = epo.epo_loss(pg, b["ent"], b["mask"], b["traj_id"], reference=1.0, step=2, total_steps=20)
    reg, _ = epo.epo_regularizer(b["ent"], b["mask"], b["traj_id"], reference=1.0, step=2, total_steps=20)
    assert loss.item() == pytest.approx(0.37 + reg.item())
    assert float(metrics["epo/regularizer"]) == pytest.approx(reg.item())
    with pytest.raises(ValueError, match="pg_loss"):
        epo.epo_loss(torch.zeros(2), b["ent"], b["mask"], b["traj_id"], reference=1.0, step=2, total_steps=20)
    with pytest.raises(ValueError, match="variant"):
        epo.epo_regularizer(
            b["ent"], b["mask"], b["traj_id"], reference=1.0, step=0, total_steps=2, variant="x"
        )
    with pytest.raises(ValueError, match="turn"):
        epo.epo_regularizer(
            b["ent"], b["mask"], b["traj_id"], reference=1.0, step=0, total_steps=2, variant="released"
        )
    with pytest.raises(ValueError, match="reference"):
        epo.epo_regularizer(
            b["ent"], b["mask"], b["traj_id"], reference=torch.ones(2, 2), step=0, total_steps=2
        )
    with pytest.raises(ValueError, match="same shape"):
        epo.epo_regularizer(b["ent"], b["mask"][:, :2], b["traj_id"], reference=1.0, step=0, total_steps=2)
    with pytest.raises(ValueError, match="kappa"):
        epo.smoothing_penalty(b["ent"], 1.0, kappa_l=3.0, kappa_r=2.0)


def test_entropy_history_paper_reference():
    hist = epo.EntropyHistory()
    assert hist.reference() is None and len(hist) == 0
    for v in (1.0, 2.0, 6.0):
        hist.append(torch.tensor(v))
    assert hist.reference() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="finite"):
        hist.append(float("nan"))
    with pytest.raises(ValueError, match="max_turns"):
        hist.append(1.0, per_turn=[1.0])


def test_entropy_history_released_left_padding():
    hist = epo.EntropyHistory(max_turns=4)
    assert hist.reference_for_rows(torch.tensor([0])) is None
    hist.append(1.5, per_turn=[1.0, 2.0])  # padded to [0, 0, 1, 2]
    hist.append(5.0, per_turn=torch.tensor([3.0, 4.0, 5.0, 6.0, 7.0]))  # truncated to [4, 5, 6, 7]
    assert torch.allclose(hist.per_turn_reference(), torch.tensor([2.0, 2.5, 3.5, 4.5]))
    assert torch.allclose(hist.reference_for_rows(torch.tensor([3, 0, 0])), torch.tensor([4.5, 2.0, 2.0]))
    assert hist.reference() == pytest.approx(3.25)
    with pytest.raises(ValueError, match="turn must lie"):
        hist.reference_for_rows(torch.tensor([4]))


def test_entropy_history_state_dict_round_trip():
    hist = epo.EntropyHistory(max_turns=3)
    for k in range(5):
        hist.append(0.5 + k, per_turn=[k, 2 * k][: 1 + k % 2])
    state = pickle.loads(pickle.dumps(hist.state_dict()))
    other = epo.EntropyHistory()
    other.load_state_dict(state)
    assert other.state_dict() == hist.state_dict()
    assert other.reference() == hist.reference()
    assert torch.equal(other.per_turn_reference(), hist.per_turn_reference())
    other.append(9.0, per_turn=[1.0])
    hist.append(9.0, per_turn=[1.0])
    assert other.state_dict() == hist.state_dict()
    state["step_means"].append(123.0)  # the state is a copy, not a view
    assert 123.0 not in hist.step_means
    with pytest.raises(ValueError, match="max_turns"):
        epo.EntropyHistory(max_turns=5).load_state_dict(hist.state_dict())
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({"step_means": []})
