"""Tests for agent_rl.methods.aem (Adaptive Entropy Modulation)."""

from __future__ import annotations

import math

import pytest
import torch

from agent_rl.methods import aem


def make_rows(seed: int, n_groups: int, rows_per_group: int, t: int, spread: float = 3.0) -> dict:
    g = torch.Generator().manual_seed(seed)
    rows = n_groups * rows_per_group
    group = torch.tensor([50 - 3 * (r // rows_per_group) for r in range(rows)])
    perm = torch.randperm(rows, generator=g)
    lengths = torch.randint(0, t + 1, (rows,), generator=g)
    return {
        "group_id": group[perm],
        "mask": torch.arange(t)[None, :] < lengths[:, None],
        "ent": torch.rand(rows, t, generator=g) * spread,
        "adv": torch.randn(rows, generator=g),
        "logp": -torch.rand(rows, t, generator=g) * 4,
    }


def aem_loop(adv, ent, mask, gid, lam=1.0, min_range=0.1, eps=1e-8):
    rows, t = ent.shape
    h, valid = [], []
    for r in range(rows):
        toks = [float(ent[r, j]) for j in range(t) if mask[r, j]]
        valid.append(bool(toks))
        h.append(sum(toks) / len(toks) if toks else 0.0)
    alpha = []
    for r in range(rows):
        members = [q for q in range(rows) if int(gid[q]) == int(gid[r]) and valid[q]]
        hs = [h[q] for q in members]
        if not valid[r] or max(hs) - min(hs) < min_range:
            alpha.append(1.0)
            continue
        lo, hi = min(hs), max(hs)
        e = {q: math.exp(-lam * (h[q] - lo) / (hi - lo + eps)) for q in members}
        alpha.append(e[r] / (sum(e.values()) / len(members)))
    return [alpha[r] * float(adv[r]) for r in range(rows)], alpha


def test_by_hand_live_group_and_dead_zone():
    # group 0: step entropies 0.5, 1.0, 1.5 (range 1.0); group 1: 2.0, 2.05 (range 0.05 < 0.1)
    ent = torch.tensor([[0.5, 0.5], [1.0, 1.0], [1.0, 2.0], [2.0, 2.0], [2.1, 2.0]])
    mask = torch.ones(5, 2)
    gid = torch.tensor([0, 0, 0, 1, 1])
    adv = torch.tensor([1.0, -2.0, 3.0, 4.0, -5.0])
    e = [math.exp(-x) for x in (0.0, 0.5, 1.0)]
    alpha = [x / (sum(e) / 3) for x in e] + [1.0, 1.0]
    got = aem.aem_weights(ent, mask, gid)
    assert torch.allclose(got, torch.tensor(alpha), atol=1e-6)
    out = aem.aem_advantages(adv, ent, mask, gid)
    assert torch.allclose(out, torch.tensor(alpha) * adv, atol=1e-6)


SIZES = [(0, 2, 4, 6), (1, 5, 8, 10), (2, 1, 1, 3), (3, 8, 3, 16), (4, 3, 6, 1)]


@pytest.mark.parametrize("seed,n_groups,rows_per_group,t", SIZES)
@pytest.mark.parametrize("lam,min_range", [(1.0, 0.1), (2.5, 0.5), (0.7, 0.0)])
def test_matches_loop(seed, n_groups, rows_per_group, t, lam, min_range):
    b = make_rows(seed, n_groups, rows_per_group, t)
    expected, alpha = aem_loop(b["adv"], b["ent"], b["mask"], b["group_id"], lam=lam, min_range=min_range)
    got_alpha = aem.aem_weights(b["ent"], b["mask"], b["group_id"], lam=lam, min_range=min_range)
    assert torch.allclose(got_alpha, torch.tensor(alpha), atol=1e-5)
    out = aem.aem_advantages(b["adv"], b["ent"], b["mask"], b["group_id"], lam=lam, min_range=min_range)
    assert torch.allclose(out, torch.tensor(expected), atol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_sign_kept_and_live_groups_average_one(seed):
    b = make_rows(seed, 6, 8, 9)
    b["adv"][::5] = 0.0
    out = aem.aem_advantages(b["adv"], b["ent"], b["mask"], b["group_id"])
    assert torch.equal(torch.sign(out), torch.sign(b["adv"]))
    alpha = aem.aem_weights(b["ent"], b["mask"], b["group_id"])
    assert (alpha > 0).all()
    valid = b["mask"].any(-1)
    live_groups = 0
    for gid in b["group_id"].unique():
        sel = (b["group_id"] == gid) & valid
        if sel.sum() > 1 and not torch.allclose(alpha[sel], torch.ones_like(alpha[sel])):
            assert float(alpha[sel].mean()) == pytest.approx(1.0, abs=1e-5)
            live_groups += 1
    assert live_groups > 0


def test_zero_variance_single_row_and_lam_zero_give_one():
    ent = torch.tensor([[1.0, 1.0], [1.0, 1.0], [3.0, 0.0], [0.2, 0.4]])
    mask = torch.tensor([[1, 1], [1, 1], [1, 0], [1, 1]])
    gid = torch.tensor([0, 0, 1, 2])  # equal entropies; two single-row groups
    assert torch.equal(aem.aem_weights(ent, mask, gid), torch.ones(4))
    b = make_rows(1, 3, 5, 6)
    assert torch.allclose(aem.aem_weights(b["ent"], b["mask"], b["group_id"], lam=0.0), torch.ones(15))
    # the dead zone is "range < min_range": a range exactly equal to it is live
    edge = aem.aem_weights(
        torch.tensor([[0.25], [0.75]]), torch.ones(2, 1), torch.tensor([0, 0]), min_range=0.5
    )
    assert torch.allclose(edge, torch.tensor([2.0, 2.0 * math.exp(-1.0)]) / (1 + math.exp(-1.0)))


def test_empty_masks_excluded_and_unchanged():
    b = make_rows(9, 2, 5, 6)
    b["mask"][:, 0] = True
    base = aem.aem_advantages(b["adv"], b["ent"], b["mask"], b["group_id"])
    ent = torch.cat([b["ent"], torch.full((2, 6), 50.0)])
    mask = torch.cat([b["mask"], torch.zeros(2, 6, dtype=torch.bool)])
    gid = torch.cat([b["group_id"], b["group_id"][:2]])  # padding rows inside existing groups
    adv = torch.cat([b["adv"], torch.tensor([3.0, -4.0])])
    out = aem.aem_advantages(adv, ent, mask, gid)
    assert torch.allclose(out[:10], base, atol=1e-6)
    assert torch.equal(out[10:], torch.tensor([3.0, -4.0]))
    all_empty = aem.aem_advantages(adv, ent, torch.zeros_like(mask), gid)
    assert torch.equal(all_empty, adv)


def test_token_level_advantages_and_dtype():
    b = make_rows(4, 3, 4, 5)
    adv2d = b["adv"][:, None] * b["mask"]
    out1 = aem.aem_advantages(b["adv"], b["ent"], b["mask"], b["group_id"])
    out2 = aem.aem_advantages(adv2d.bfloat16(), b["ent"].bfloat16(), b["mask"], b["group_id"])
    assert out2.dtype == torch.bfloat16 and out2.shape == adv2d.shape
    assert torch.allclose(out2.float(), out1[:, None] * b["mask"], atol=0.05, rtol=0.02)


def test_relative_surprisal_by_hand():
    logp = torch.tensor([[-1.0, -2.0, -7.0], [-0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    ent = torch.tensor([[0.5, 1.0, 9.0], [0.25, 0.0, 0.0], [1.0, 1.0, 1.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    # row 0: surprisal 3, entropy 1.5 -> sum 1.5, mean 0.75; row 1: 0.5 - 0.25
    assert torch.allclose(aem.relative_surprisal(logp, ent, mask), torch.tensor([0.75, 0.25, 0.0]))
    assert torch.allclose(
        aem.relative_surprisal(logp, ent, mask, reduction="sum"), torch.tensor([1.5, 0.25, 0.0])
    )
    with pytest.raises(ValueError, match="reduction"):
        aem.relative_surprisal(logp, ent, mask, reduction="max")


@pytest.mark.parametrize("seed", [0, 1])
def test_relative_surprisal_matches_loop(seed):
    b = make_rows(seed, 3, 4, 7)
    expected = []
    for r in range(b["ent"].shape[0]):
        d = [-float(b["logp"][r, j]) - float(b["ent"][r, j]) for j in range(7) if b["mask"][r, j]]
        expected.append(sum(d) / len(d) if d else 0.0)
    got = aem.relative_surprisal(b["logp"], b["ent"], b["mask"])
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)


def test_bad_inputs_raise():
    ent, mask = torch.rand(3, 4), torch.ones(3, 4)
    with pytest.raises(ValueError, match="group_id"):
        aem.aem_weights(ent, mask, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        aem.aem_weights(ent, mask, torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="advantages"):
        aem.aem_advantages(torch.zeros(2), ent, mask, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="min_range"):
        aem.aem_weights(ent, mask, torch.tensor([0, 1, 1]), min_range=-1.0)
