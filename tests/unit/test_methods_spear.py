"""Tests for agent_rl.methods.spear (SPEAR: tool-call reward, replay buffer, Clip-Cov, Dr.BoT filters)."""

from __future__ import annotations

import math
import pickle
import statistics
from collections import Counter

import pytest
import torch

from agent_rl.methods import spear

# ----------------------------------------------------------------------------------------------------------
# schedules
# ----------------------------------------------------------------------------------------------------------


def test_toolcall_schedule_and_bonus():
    assert spear.toolcall_schedule(0) == pytest.approx(1.0)
    assert spear.toolcall_schedule(100) == pytest.approx(0.5)
    assert spear.toolcall_schedule(50) == pytest.approx((math.cos(math.pi / 4) + 1) / 2)
    assert spear.toolcall_schedule(200) == pytest.approx(0.0, abs=1e-12)
    assert spear.toolcall_schedule(201) == 0.0
    assert spear.toolcall_schedule(500, mode="constant") == 1.0
    assert spear.toolcall_schedule(0, mode="none") == 0.0
    calls = torch.tensor([0, 3, 10, 25])
    assert torch.allclose(spear.toolcall_bonus(calls, 0), torch.tensor([0.0, 0.3, 1.0, 1.0]))
    assert torch.allclose(spear.toolcall_bonus(calls, 100), torch.tensor([0.0, 0.15, 0.5, 0.5]))
    assert torch.equal(spear.toolcall_bonus(calls, 10, mode="none"), torch.zeros(4))
    with pytest.raises(ValueError, match="mode"):
        spear.toolcall_schedule(0, mode="linear")
    with pytest.raises(ValueError, match="num_calls"):
        spear.toolcall_bonus(torch.zeros(2, 2), 0)


def test_replay_loss_weight_and_power_of_two():
    assert spear.replay_loss_weight(0, coef=2.0) == 0.0
    assert spear.replay_loss_weight(100, coef=2.0) == pytest.approx(1.0)
    assert spear.replay_loss_weight(200, coef=2.0) == pytest.approx(2.0)
    assert spear.replay_loss_weight(350, coef=2.0) == 2.0
    assert spear.replay_loss_weight(10, coef=0.5, warmup_steps=0) == 0.5
    table = {0: 0, 1: 0, 2: 2, 3: 2, 4: 4, 7: 4, 8: 8, 1000: 512, 2048: 2048}
    assert {n: spear.nearest_lower_power_of_two(n) for n in table} == table


# ----------------------------------------------------------------------------------------------------------
# group statistics and filters
# ----------------------------------------------------------------------------------------------------------


def make_rows(seed: int, n_groups: int, traj_per_group: int, max_turns: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    traj, group, reward = [], [], []
    tid = 0
    for gi in range(n_groups):
        for _ in range(traj_per_group):
            length = int(torch.randint(1, max_turns + 1, (1,), generator=g))
            r = float(torch.randint(0, 3, (1,), generator=g)) * 5.0  # ties are likely
            for _ in range(length):
                traj.append(100 + 3 * tid)
                group.append(90 - 7 * gi)
                reward.append(r + float(torch.rand(1, generator=g)) * 0.01 * (gi % 2))
            tid += 1
    perm = torch.randperm(len(traj), generator=g)
    return {
        "traj_id": torch.tensor(traj)[perm],
        "group_id": torch.tensor(group)[perm],
        "rewards": torch.tensor(reward)[perm],
        "adv": torch.randn(len(traj), generator=g),
    }


def loop_group_stats(rewards, gid, tid):
    """Released ``update_batch`` / ``_filter_rollout`` statistics, in first-appearance order."""
    by_uid: dict[int, dict[int, list[float]]] = {}
    for r, u, t in zip(rewards.tolist(), gid.tolist(), tid.tolist(), strict=True):
        by_uid.setdefault(u, {}).setdefault(t, []).append(r)
    means, stds = {}, {}
    for u, trajs in by_uid.items():
        tm = [sum(v) / len(v) for v in trajs.values()]
        means[u] = sum(tm) / len(tm)
        stds[u] = statistics.pstdev(tm)
    return means, stds


@pytest.mark.parametrize("seed,n_groups,traj_per_group,max_turns", [(0, 4, 3, 4), (1, 9, 2, 6), (2, 1, 5, 1)])
def test_group_reward_stats_match_loop(seed, n_groups, traj_per_group, max_turns):
    b = make_rows(seed, n_groups, traj_per_group, max_turns)
    mean, std, inv = spear.group_reward_stats(b["rewards"], b["group_id"], b["traj_id"])
    exp_mean, exp_std = loop_group_stats(b["rewards"], b["group_id"], b["traj_id"])
    for r, u in enumerate(b["group_id"].tolist()):
        assert float(mean[inv[r]]) == pytest.approx(exp_mean[u], abs=1e-5)
        assert float(std[inv[r]]) == pytest.approx(exp_std[u], abs=1e-5)
    with pytest.raises(ValueError, match="different group"):
        spear.group_reward_stats(torch.zeros(2), torch.tensor([0, 1]), torch.tensor([5, 5]))


@pytest.mark.parametrize(
    "seed,n_groups,traj_per_group,max_turns", [(0, 4, 3, 4), (3, 10, 3, 3), (4, 7, 2, 5)]
)
@pytest.mark.parametrize("descending", [True, False])
def test_group_std_filter_matches_released_sort(seed, n_groups, traj_per_group, max_turns, descending):
    b = make_rows(seed, n_groups, traj_per_group, max_turns)
    _, stds = loop_group_stats(b["rewards"], b["group_id"], b["traj_id"])
    items = list(stds.items())  # dict order = first appearance, as the released code
    n_keep = max(1, int(0.75 * len(items)))
    chosen = {u for u, _ in sorted(items, key=lambda x: x[1], reverse=descending)[:n_keep]}
    keep = spear.group_std_filter(b["rewards"], b["group_id"], b["traj_id"], descending=descending)
    assert keep.tolist() == [u in chosen for u in b["group_id"].tolist()]


def test_group_std_filter_by_hand():
    # groups 5, 6, 7, 8 with trajectory-reward stds 0, 5, 2.5, 5; keep 3 highest -> drop group 5
    rewards = torch.tensor([1.0, 1.0, 0.0, 10.0, 0.0, 5.0, 10.0, 0.0])
    gid = torch.tensor([5, 5, 6, 6, 7, 7, 8, 8])
    tid = torch.arange(8)
    assert spear.group_std_filter(rewards, gid, tid).tolist() == [False, False] + [True] * 6
    # keep 2 of 4: tie between groups 6 and 8 at std 5 -> both kept, group 7 dropped
    keep = spear.group_std_filter(rewards, gid, tid, keep_ratio=0.5)
    assert keep.tolist() == [False, False, True, True, False, False, True, True]
    assert spear.group_std_filter(rewards, gid, tid, keep_ratio=1.0).all()
    with pytest.raises(ValueError, match="keep_ratio"):
        spear.group_std_filter(rewards, gid, tid, keep_ratio=0.0)


def test_subsample_power_of_two():
    keep = torch.tensor([True, False, True, True, True, True, False, True])  # 6 -> 4
    out = spear.subsample_power_of_two(keep, torch.Generator().manual_seed(0))
    assert int(out.sum()) == 4 and not (out & ~keep).any()
    assert not spear.subsample_power_of_two(torch.tensor([False, True])).any()  # 1 -> 0, as released


def loop_has_repeated_ngrams(words, n, threshold):
    ngrams = [" ".join(str(w) for w in words[i : i + n]) for i in range(len(words) - n + 1)]
    return any(c >= threshold for c in Counter(ngrams).values())


@pytest.mark.parametrize("seed,vocab,n,threshold,t", [(0, 2, 3, 3, 20), (1, 3, 2, 4, 16), (2, 5, 4, 2, 30)])
def test_repeated_ngrams_match_counter(seed, vocab, n, threshold, t):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (64, t), generator=g) * 1009 + 17
    mask = torch.rand(64, t, generator=g) < 0.85  # holes: only masked tokens, in order, form the response
    mask[:4] = False
    expected = []
    for r in range(64):
        words = [int(ids[r, j]) for j in range(t) if mask[r, j]]
        expected.append(loop_has_repeated_ngrams(words, n, threshold))
    got = spear.repeated_ngram_mask(ids, mask, n=n, threshold=threshold)
    assert got.tolist() == expected
    assert 0 < sum(expected) < 60  # both outcomes occur


def test_repeated_20grams_default():
    base = torch.arange(20) + 1000
    rep10 = base.repeat(10)[None, :]  # a 20-gram repeated 10 times (overlapping shifts repeat 9 times)
    rep9 = base.repeat(9)[None, :]
    fill = torch.arange(40)[None, :] + 5000  # distinct tokens
    ids = torch.cat([torch.cat([rep10, fill[:, :20]], 1), torch.cat([rep9, fill], 1)])
    mask = torch.ones_like(ids)
    mask[0, 200:] = 0  # 10 repeats -> True; 9 repeats + distinct filler -> False
    assert spear.repeated_ngram_mask(ids, mask).tolist() == [True, False]
    with pytest.raises(ValueError, match="2\\*\\*31"):
        spear.repeated_ngram_mask(torch.tensor([[-5, 1]]), torch.ones(1, 2), n=1, threshold=1)


def test_overlong_and_apply_filters():
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1], [0, 0, 0]])
    over = spear.overlong_mask(mask, 3)
    assert over.tolist() == [True, False, True, False]
    incomplete = torch.tensor([0, 1, 0, 0])
    out = spear.apply_response_filters(mask, over, incomplete, None)
    assert out.tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    out = spear.apply_response_filters(mask, torch.tensor([False, False, True, False]))
    assert out.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="flags"):
        spear.apply_response_filters(mask, torch.tensor([True]))


# ----------------------------------------------------------------------------------------------------------
# Clip-Cov
# ----------------------------------------------------------------------------------------------------------


def make_tokens(seed: int, rows: int, t: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, t + 1, (rows,), generator=g)
    old = -torch.rand(rows, t, generator=g) * 3
    return {
        "adv": torch.randn(rows, generator=g) * 3,
        "old": old,
        "logp": (old + torch.randn(rows, t, generator=g) * 0.3).requires_grad_(True),
        "mask": torch.arange(t)[None, :] < lengths[:, None],
    }


def loop_candidates(adv, logp, mask, lb, ub, exclude=None):
    rows, t = logp.shape
    toks = [(r, j) for r in range(rows) for j in range(t) if mask[r, j]]
    a_bar = sum(float(adv[r]) for r, _ in toks) / max(len(toks), 1)
    l_bar = sum(float(logp[r, j]) for r, j in toks) / max(len(toks), 1)
    out = set()
    for r, j in toks:
        cov = (float(adv[r]) - a_bar) * (float(logp[r, j]) - l_bar)
        if lb < cov < ub and (exclude is None or not exclude[r, j]):
            out.add((r, j))
    return out, len(toks)


@pytest.mark.parametrize("seed,rows,t", [(0, 8, 12), (1, 32, 20), (2, 3, 5)])
def test_clip_cov_select_matches_loop(seed, rows, t):
    b = make_tokens(seed, rows, t)
    bounds = spear.ClipCovBounds(ratio=1.0, lb=0.05, ub=2.0)  # ratio 1: every candidate is chosen
    sel = spear.clip_cov_select(b["adv"], b["logp"], b["mask"], bounds=bounds)
    cand, _ = loop_candidates(b["adv"], b["logp"].detach(), b["mask"], 0.05, 2.0)
    assert {tuple(x) for x in torch.nonzero(sel).tolist()} == cand
    excl = torch.rand(rows, t, generator=torch.Generator().manual_seed(seed)) < 0.5
    sel = spear.clip_cov_select(b["adv"], b["logp"], b["mask"], bounds=bounds, exclude=excl)
    cand_x, _ = loop_candidates(b["adv"], b["logp"].detach(), b["mask"], 0.05, 2.0, excl)
    assert {tuple(x) for x in torch.nonzero(sel).tolist()} == cand_x


@pytest.mark.parametrize("ratio", [2e-4, 0.02, 0.1])
def test_clip_cov_select_count_and_randomness(ratio):
    b = make_tokens(5, 64, 40)
    bounds = spear.ClipCovBounds(ratio=ratio, lb=0.0, ub=50.0)
    cand, n_tok = loop_candidates(b["adv"], b["logp"].detach(), b["mask"], 0.0, 50.0)
    k = min(max(int(ratio * n_tok), 1), len(cand))
    s1 = spear.clip_cov_select(
        b["adv"], b["logp"], b["mask"], bounds=bounds, generator=torch.Generator().manual_seed(1)
    )
    s1b = spear.clip_cov_select(
        b["adv"], b["logp"], b["mask"], bounds=bounds, generator=torch.Generator().manual_seed(1)
    )
    s2 = spear.clip_cov_select(
        b["adv"], b["logp"], b["mask"], bounds=bounds, generator=torch.Generator().manual_seed(2)
    )
    assert int(s1.sum()) == k and {tuple(x) for x in torch.nonzero(s1).tolist()} <= cand
    assert torch.equal(s1, s1b)
    if k < len(cand) and k > 1:
        assert not torch.equal(s1, s2)


def test_clip_cov_policy_loss_equals_ppo_off_candidates():
    b = make_tokens(3, 16, 10)
    none = spear.ClipCovBounds(ratio=0.5, lb=1e9, ub=2e9)  # no candidate at all
    losses, metrics = spear.clip_cov_policy_loss(b["old"], b["logp"], b["adv"], b["mask"], bounds=none)
    ratio = torch.exp(b["logp"] - b["old"])
    a = b["adv"][:, None]
    ppo = torch.maximum(-a * ratio, -a * torch.clamp(ratio, 0.8, 1.28))
    assert torch.allclose(losses, torch.where(b["mask"], ppo, 0.0), atol=1e-6)
    assert float(metrics["pg_clipfrac"]) == 0.0
    some = spear.ClipCovBounds(ratio=0.2, lb=-1e9, ub=1e9)
    losses, metrics = spear.clip_cov_policy_loss(
        b["old"], b["logp"], b["adv"], b["mask"], bounds=some, generator=torch.Generator().manual_seed(0)
    )
    zeroed = (losses == 0) & b["mask"] & (ppo != 0)
    clipped = (-a * torch.clamp(ratio, 0.8, 1.28) > -a * ratio) & b["mask"]
    assert int(zeroed.sum()) == max(int(0.2 * int(b["mask"].sum())), 1)
    assert not (zeroed & clipped).any()  # PPO-clipped tokens are never selected
    (grad,) = torch.autograd.grad(losses.sum(), b["logp"])
    assert torch.equal(grad[zeroed], torch.zeros(int(zeroed.sum())))
    assert (grad[b["mask"] & ~zeroed & ~clipped] != 0).all()


# ----------------------------------------------------------------------------------------------------------
# replay buffer
# ----------------------------------------------------------------------------------------------------------


def hand_buffer(**kw) -> spear.SpearReplayBuffer:
    """Two steps whose group means are 1, 3 (step 0) and 5, 7 (step 1); stds 1, 0, 1, 0."""
    buf = spear.SpearReplayBuffer(**kw)
    # step 0: group A trajectories 0, 2 (mean 1, std 1); group B 3, 3; stores the reward-2 row
    buf.add(0, torch.tensor([0.0, 2.0, 3.0, 3.0]), torch.tensor([-1.0, 1.0, 0.0, 0.0]),
            torch.tensor([1, 1, 2, 2]), torch.tensor([10, 11, 12, 13]),
            payload={"row": torch.tensor([0, 1, 2, 3])})  # fmt: skip
    # step 1: group C trajectories 4 and 6 (two rows), group D 7, 7; stores rewards 4, 6, 6, 7
    buf.remove_old()
    buf.add(1, torch.tensor([4.0, 6.0, 6.0, 7.0, 7.0]), torch.tensor([1.0, 1.0, 1.0, 1.0, -2.0]),
            torch.tensor([3, 3, 3, 4, 4]), torch.tensor([14, 15, 15, 16, 17]),
            payload={"row": torch.tensor([4, 5, 6, 7, 8])})  # fmt: skip
    return buf


def test_buffer_recalibration_by_hand():
    buf = hand_buffer(capacity=1, tolerate_steps=5)
    assert buf.num_rows() == 5 and buf.steps() == [0, 1]
    p50_mean, p50_std = buf.baseline()
    assert float(p50_mean) == pytest.approx(4.0)  # median of [1, 3, 5, 7], linear interpolation
    assert float(p50_std) == pytest.approx(0.5)
    assert buf.size() == 3  # rewards 6, 6, 7 exceed 4
    assert buf.is_full()  # 3 > 1.5 * 1
    # recalibrated: [2, 4, 6, 6, 7] - 4 = [-2, 0, 2, 2, 3]; 4 rows kept (A = 0 too); capacity 1 -> 1
    out = buf.sample(torch.Generator().manual_seed(0))
    assert out["advantages"].shape == (1,) and buf.num_rows() == 0
    assert float(out["advantages"][0]) == pytest.approx(float(out["rewards"][0]) - 4.0)
    assert int(out["row"][0]) in (4, 5, 6, 7)
    buf2 = hand_buffer(capacity=8, tolerate_steps=5)
    assert not buf2.is_full()  # 3 <= 12
    out = buf2.sample(torch.Generator().manual_seed(0))
    assert out["row"].tolist() == [4, 5, 6, 7]  # 4 is a power of two: every kept row, buffer order
    assert out["step"].tolist() == [1, 1, 1, 1]
    assert out["advantages"].tolist() == [0.0, 2.0, 2.0, 3.0]
    buf3 = hand_buffer(capacity=8, norm_adv_by_std=True)
    out = buf3.sample(torch.Generator().manual_seed(0))
    assert torch.allclose(out["advantages"], (out["rewards"] - 4.0) / (0.5 + 1e-6))
    assert buf3.sample() is None  # reset after sampling


def test_buffer_weight_decay_mode():
    buf = hand_buffer(capacity=8, weight_decay=0.5)
    assert buf.size() == 5  # every stored row counts
    out = buf.sample(torch.Generator().manual_seed(0))
    assert len(out["row"]) == 4  # 5 rows -> nearest lower power of two
    assert set(out["row"].tolist()) <= {1, 4, 5, 6, 7}
    assert out["row"].tolist() == sorted(out["row"].tolist())  # buffer order
    assert torch.equal(out["advantages"], torch.full((4,), 0.5))


def test_buffer_eviction():
    buf = spear.SpearReplayBuffer(capacity=4, tolerate_steps=1)
    for step in range(5):
        buf.remove_old()
        buf.add(
            step,
            torch.tensor([1.0, 2.0]),
            torch.tensor([1.0, 1.0]),
            torch.tensor([0, 0]),
            torch.tensor([0, 1]),
        )
        # remove_old runs before add and measures age from the newest stored step
        assert buf.steps() == ([0] if step == 0 else [step - 2, step - 1, step] if step >= 2 else [0, 1])
    assert buf.remove_old() == 2  # newest is 4: step 2 is 2 steps older
    assert buf.steps() == [3, 4]
    buf.add(
        9, torch.tensor([1.0]), torch.tensor([-1.0]), torch.tensor([0]), torch.tensor([0])
    )  # nothing stored
    assert buf.steps() == [3, 4]


def test_baseline_history_trimmed_before_append():
    buf = spear.SpearReplayBuffer(baseline_capacity=3)
    for step, base in enumerate([0.0, 100.0, 200.0]):
        rewards = torch.tensor([base, base + 2.0, base + 10.0, base + 10.0])
        buf.add(step, rewards, torch.ones(4), torch.tensor([0, 0, 1, 1]), torch.arange(4))
    state = buf.state_dict()
    assert [s for s, _ in state["mean_history"]] == [1, 2]  # step 0 dropped once 4 > 3 entries
    assert torch.allclose(state["mean_history"][0][1], torch.tensor([101.0, 110.0]))
    assert torch.allclose(state["std_history"][1][1], torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_buffer_matches_loop_reference(seed):
    g = torch.Generator().manual_seed(seed)
    buf = spear.SpearReplayBuffer(capacity=16, baseline_capacity=12, tolerate_steps=2)
    ref_chunks: list[tuple[int, list[tuple[float, int]]]] = []
    ref_means: list[tuple[int, list[float]]] = []
    next_row = 0
    for step in range(7):
        b = make_rows(seed * 100 + step, 3, 4, 3)
        rows = b["rewards"].shape[0]
        row_id = torch.arange(next_row, next_row + rows)
        next_row += rows
        # reference: remove_old, then statistics (trim before append), then positive rows
        if ref_chunks:
            latest = ref_chunks[-1][0]
            ref_chunks = [c for c in ref_chunks if abs(c[0] - latest) <= 2]
        means, _ = loop_group_stats(b["rewards"], b["group_id"], b["traj_id"])
        while ref_means and sum(len(v) for _, v in ref_means) > 12:
            ref_means.pop(0)
        ref_means.append((step, list(means.values())))
        pos = [(float(b["rewards"][r]), int(row_id[r])) for r in range(rows) if float(b["adv"][r]) > 0]
        if pos:
            ref_chunks.append((step, pos))
        buf.remove_old()
        buf.add(step, b["rewards"], b["adv"], b["group_id"], b["traj_id"], payload={"row": row_id})
        p50 = statistics.median([m for _, v in ref_means for m in v])
        assert float(buf.baseline()[0]) == pytest.approx(p50, abs=1e-5)
        assert buf.steps() == [s for s, _ in ref_chunks]
        assert buf.size() == sum(1 for _, c in ref_chunks for r, _ in c if r > p50 + 1e-6)
    cand = {i: r - p50 for _, c in ref_chunks for r, i in c if r - p50 >= -1e-6}
    out = buf.sample(g)
    expected_n = min(spear.nearest_lower_power_of_two(len(cand)), 16)
    assert len(out["row"]) == expected_n
    assert set(out["row"].tolist()) <= set(cand)
    for i, a in zip(out["row"].tolist(), out["advantages"].tolist(), strict=True):
        assert a == pytest.approx(cand[i], abs=1e-5)


def test_buffer_state_dict_round_trip():
    buf = hand_buffer(capacity=2, tolerate_steps=3)
    state = pickle.loads(pickle.dumps(buf.state_dict()))
    other = spear.SpearReplayBuffer()
    other.load_state_dict(state)
    state["chunks"][0]["rewards"][0] = -100.0  # loading copies: the buffer does not alias the state
    state["mean_history"][0][1][0] = -100.0
    assert float(other.state_dict()["chunks"][0]["rewards"][0]) == 2.0
    assert float(other.baseline()[0]) == pytest.approx(4.0)
    assert (other.capacity, other.tolerate_steps) == (2, 3)
    assert other.steps() == buf.steps() and other.size() == buf.size()
    assert torch.equal(other.baseline()[0], buf.baseline()[0])
    for b in (buf, other):
        b.remove_old()
        rewards, adv = torch.tensor([9.0, 0.0]), torch.tensor([1.0, -1.0])
        b.add(
            2,
            rewards,
            adv,
            torch.tensor([5, 5]),
            torch.tensor([20, 21]),
            payload={"row": torch.tensor([9, 10])},
        )
    s1 = buf.sample(torch.Generator().manual_seed(4))
    s2 = other.sample(torch.Generator().manual_seed(4))
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({"config": {}})
    with pytest.raises(ValueError, match="unknown"):
        other.load_state_dict({**buf.state_dict(), "config": {"bogus": 1}})


def test_buffer_rejects_bad_input():
    buf = spear.SpearReplayBuffer()
    ids = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="rewards"):
        buf.add(0, torch.zeros(2, 2), torch.zeros(2), ids, ids)
    with pytest.raises(ValueError, match="advantages"):
        buf.add(0, torch.zeros(2), torch.zeros(3), ids, ids)
    with pytest.raises(ValueError, match="reserved"):
        buf.add(0, torch.zeros(2), torch.ones(2), ids, ids, payload={"step": torch.zeros(2)})
    with pytest.raises(ValueError, match="first dimension"):
        buf.add(0, torch.zeros(2), torch.ones(2), ids, ids, payload={"x": torch.zeros(3)})
    buf.add(0, torch.zeros(2), torch.ones(2), ids, ids, payload={"x": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match="trailing shape"):
        buf.add(1, torch.zeros(2), torch.ones(2), ids, ids, payload={"x": torch.zeros(2, 5)})
    with pytest.raises(ValueError, match="payload keys"):
        buf.add(1, torch.zeros(2), torch.ones(2), ids, ids, payload={"y": torch.zeros(2, 4)})
    assert spear.SpearReplayBuffer().sample() is None
