"""Tests for agent_rl.rows.turns: per-step row helpers."""

from __future__ import annotations

import math

import pytest
import torch

from agent_rl.rows import turns


def make_rows(seed: int, n_groups: int, traj_per_group: int, max_turns: int, t: int) -> dict:
    """Random per-step rows: shuffled, non-contiguous ids, variable episode and response lengths."""
    g = torch.Generator().manual_seed(seed)
    traj, turn, group = [], [], []
    tid = 0
    for gi in range(n_groups):
        for _ in range(traj_per_group):
            length = int(torch.randint(1, max_turns + 1, (1,), generator=g))
            for s in range(length):
                traj.append(1000 + 7 * tid)
                turn.append(s)
                group.append(50 - 3 * gi)
            tid += 1
    perm = torch.randperm(len(traj), generator=g)
    rows = len(traj)
    lengths = torch.randint(0, t + 1, (rows,), generator=g)
    return {
        "traj_id": torch.tensor(traj)[perm],
        "turn": torch.tensor(turn)[perm],
        "group_id": torch.tensor(group)[perm],
        "mask": torch.arange(t)[None, :] < lengths[:, None],
        "ent": torch.rand(rows, t, generator=g) * 3,
    }


def loop_row_means(x: torch.Tensor, mask: torch.Tensor) -> tuple[list[float], list[bool]]:
    means, valid = [], []
    for r in range(x.shape[0]):
        toks = [float(x[r, j]) for j in range(x.shape[1]) if mask[r, j]]
        valid.append(bool(toks))
        means.append(sum(toks) / len(toks) if toks else 0.0)
    return means, valid


SIZES = [(0, 2, 3, 4, 5), (1, 3, 4, 6, 8), (2, 5, 2, 1, 3), (3, 1, 8, 9, 16)]


def test_step_entropy_by_hand():
    ent = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    out = turns.step_entropy(ent, mask)
    assert torch.allclose(out, torch.tensor([2.0, 4.0, 0.0]))


def test_masked_values_never_leak_even_nan():
    ent = torch.tensor([[1.0, float("nan")], [float("inf"), float("nan")]])
    mask = torch.tensor([[True, False], [False, False]])
    mean, valid = turns.masked_row_mean(ent, mask)
    assert torch.equal(mean, torch.tensor([1.0, 0.0]))
    assert valid.tolist() == [True, False]
    assert float(turns.batch_token_mean(ent, mask)) == 1.0


def test_batch_token_mean_weights_tokens_and_empty_is_zero():
    ent = torch.tensor([[1.0, 1.0, 1.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert float(turns.batch_token_mean(ent, mask)) == pytest.approx(7.0 / 4.0)
    assert float(turns.batch_token_mean(ent, torch.zeros_like(mask))) == 0.0


def test_next_step_index_by_hand():
    traj = torch.tensor([7, 3, 7, 3, 7, 9])
    turn = torch.tensor([1, 0, 0, 1, 2, 0])
    assert turns.next_step_index(traj, turn).tolist() == [4, 3, 0, -1, -1, -1]


def test_next_step_index_gaps():
    traj = torch.tensor([1, 1, 1])
    turn = torch.tensor([0, 2, 3])
    assert turns.next_step_index(traj, turn).tolist() == [-1, 2, -1]
    assert turns.next_step_index(traj, turn, require_consecutive=False).tolist() == [1, 2, -1]


@pytest.mark.parametrize("seed,n_groups,traj_per_group,max_turns,t", SIZES)
def test_next_step_index_matches_loop(seed, n_groups, traj_per_group, max_turns, t):
    b = make_rows(seed, n_groups, traj_per_group, max_turns, t)
    traj, turn = b["traj_id"].tolist(), b["turn"].tolist()
    where = {(a, s): r for r, (a, s) in enumerate(zip(traj, turn, strict=True))}
    expected = [where.get((a, s + 1), -1) for a, s in zip(traj, turn, strict=True)]
    assert turns.next_step_index(b["traj_id"], b["turn"]).tolist() == expected


def test_next_step_index_rejects_duplicates_and_bad_shapes():
    with pytest.raises(ValueError, match="duplicate"):
        turns.next_step_index(torch.tensor([1, 1]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="shape"):
        turns.next_step_index(torch.tensor([1, 2]), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="integer"):
        turns.next_step_index(torch.tensor([1.0, 2.0]), torch.tensor([0, 1]))
    assert turns.next_step_index(torch.tensor([5]), torch.tensor([0])).tolist() == [-1]
    assert (
        turns.next_step_index(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)).numel() == 0
    )


def test_minmax_by_hand_batch_and_group():
    x = torch.tensor([1.0, 3.0, 2.0, 10.0, 10.0])
    gid = torch.tensor([0, 0, 0, 4, 4])
    batch = turns.minmax_normalize(x, eps=0.0)
    assert torch.allclose(batch, torch.tensor([0.0, 2 / 9, 1 / 9, 1.0, 1.0]))
    grp = turns.minmax_normalize(x, gid, eps=0.0)
    assert torch.allclose(grp, torch.tensor([0.0, 1.0, 0.5, 0.0, 0.0]))  # zero range -> 0, no NaN


@pytest.mark.parametrize("seed,n_groups,traj_per_group,max_turns,t", SIZES)
@pytest.mark.parametrize("grouped", [False, True])
def test_minmax_and_segment_mean_match_loop(seed, n_groups, traj_per_group, max_turns, t, grouped):
    b = make_rows(seed, n_groups, traj_per_group, max_turns, t)
    h, valid = loop_row_means(b["ent"], b["mask"])
    gid = b["group_id"].tolist() if grouped else [0] * len(h)
    exp_norm, exp_mean = [], []
    for r in range(len(h)):
        members = [h[q] for q in range(len(h)) if gid[q] == gid[r] and valid[q]]
        lo, hi = (min(members), max(members)) if members else (0.0, 0.0)
        exp_norm.append((h[r] - lo) / (hi - lo + 1e-8) if valid[r] and hi > lo else 0.0)
        exp_mean.append(sum(members) / len(members) if members else 0.0)
    ht = torch.tensor(h)
    vt = torch.tensor(valid)
    g = b["group_id"] if grouped else None
    assert torch.allclose(turns.minmax_normalize(ht, g, vt), torch.tensor(exp_norm), atol=1e-6)
    assert torch.allclose(turns.segment_mean(ht, g, vt), torch.tensor(exp_mean), atol=1e-6)


@pytest.mark.parametrize("seed,n_groups,traj_per_group,max_turns,t", SIZES)
def test_per_turn_token_mean_matches_loop(seed, n_groups, traj_per_group, max_turns, t):
    b = make_rows(seed, n_groups, traj_per_group, max_turns, t)
    n = int(b["turn"].max()) + 1
    expected = []
    for s in range(n):
        toks = [
            float(b["ent"][r, j])
            for r in range(b["ent"].shape[0])
            for j in range(t)
            if int(b["turn"][r]) == s and b["mask"][r, j]
        ]
        expected.append(sum(toks) / len(toks) if toks else 0.0)
    out = turns.per_turn_token_mean(b["ent"], b["mask"], b["turn"])
    assert torch.allclose(out, torch.tensor(expected), atol=1e-5)
    assert turns.per_turn_token_mean(b["ent"], b["mask"], b["turn"], num_turns=2).shape == (2,)


def test_compact_ids_and_shape_errors():
    inv, n = turns.compact_ids(torch.tensor([40, -2, 40, 7]))
    assert n == 3 and inv.tolist() == [2, 0, 2, 1]
    with pytest.raises(ValueError, match="same shape"):
        turns.step_entropy(torch.zeros(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"\(rows, T\)"):
        turns.step_entropy(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        turns.per_turn_token_mean(torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([-1]))


def test_all_empty_is_finite():
    x = torch.zeros(4)
    valid = torch.zeros(4, dtype=torch.bool)
    out = turns.minmax_normalize(x, torch.tensor([0, 0, 1, 1]), valid)
    assert torch.equal(out, torch.zeros(4))
    assert all(math.isfinite(v) for v in turns.segment_mean(x, None, valid).tolist())
