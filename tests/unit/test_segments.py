"""Both row layouts (``agent.rows``) give the methods the same steps: the same episodes laid out as step rows
and as trajectory rows (every turn's tokens in one row, the environment's tokens between them under mask 0)
give the same per-turn entropies, the same base advantages (GRPO, GiGPO), the same per-token advantages after
every method's transform (EMPG, AEM), the same EPO regulariser, and a response mask covering exactly the
model's tokens."""

from __future__ import annotations

import random

import pytest
import torch
from hydra import compose

from agent_rl.algos.gigpo import gigpo_advantages
from agent_rl.algos.grpo import grpo_advantages
from agent_rl.methods import api
from agent_rl.methods.api import StepBatch
from agent_rl.methods.epo import epo_regularizer
from agent_rl.methods.losses import turn_segments
from agent_rl.rows.turns import per_turn_token_mean
from agent_rl.training.trainer import row_scores

CONTEXT = 3  # environment tokens between two turns of a trajectory row


def episodes(seed: int = 0):
    """Six episodes in three groups: turns, each turn's model tokens, entropies, penalties and anchors."""
    rng = random.Random(seed)
    out = []
    for i in range(6):
        turns = rng.randint(1, 4)
        out.append(
            {
                "id": f"t{i}",
                "uid": f"g{i // 2}",
                "won": float(rng.random() < 0.5),
                "lengths": [rng.randint(2, 6) for _ in range(turns)],
                "penalty": [rng.choice([0.0, 0.1]) for _ in range(turns)],
                "anchor": [rng.choice(["a", "b", "c"]) for _ in range(turns)],
            }
        )
    g = torch.Generator().manual_seed(seed)
    for e in out:
        e["entropy"] = [torch.rand(n, generator=g) for n in e["lengths"]]
    return out


def step_layout(eps):
    extra, uids, ents, width = [], [], [], max(max(e["lengths"]) for e in eps)
    for e in eps:
        n = len(e["lengths"])
        for k, ent in enumerate(e["entropy"]):
            extra.append(
                {
                    "trajectory_id": e["id"],
                    "turn": k,
                    "num_steps": n,
                    "episode_return": 10.0 * e["won"],
                    "step_penalty": e["penalty"][k],
                    "action_valid": e["penalty"][k] == 0.0,
                    "anchor_obs": e["anchor"][k],
                    "env_reward": 10.0 * e["won"] if k == n - 1 else 0.0,
                }
            )
            uids.append(e["uid"])
            ents.append(ent)
    mask = torch.zeros(len(ents), width)
    entropy = torch.zeros(len(ents), width)
    for r, ent in enumerate(ents):
        mask[r, : len(ent)] = 1
        entropy[r, : len(ent)] = ent
    return extra, uids, mask, entropy


def trajectory_layout(eps):
    extra, uids, masks, ents = [], [], [], []
    for e in eps:
        mask, ent, token_turn = [], [], []
        for k, x in enumerate(e["entropy"]):
            if k:  # the environment's answer to the previous turn
                mask += [0] * CONTEXT
                ent += [9.0] * CONTEXT  # never read: off the mask
                token_turn += [k - 1] * CONTEXT
            mask += [1] * len(x)
            ent += x.tolist()
            token_turn += [k] * len(x)
        n = len(e["lengths"])
        extra.append(
            {
                "rows": "trajectory",
                "trajectory_id": e["id"],
                "turn": 0,
                "num_steps": n,
                "token_turn": token_turn,
                "episode_return": 10.0 * e["won"],
                "turn_penalty": list(e["penalty"]),
                "turn_valid": [p == 0.0 for p in e["penalty"]],
                "turn_anchor": list(e["anchor"]),
                "step_penalty": sum(e["penalty"]),
            }
        )
        uids.append(e["uid"])
        masks.append(mask)
        ents.append(ent)
    width = max(len(m) for m in masks)
    mask = torch.zeros(len(masks), width)
    entropy = torch.zeros(len(masks), width)
    for r, (m, x) in enumerate(zip(masks, ents, strict=True)):
        mask[r, : len(m)] = torch.tensor(m, dtype=torch.float)
        entropy[r, : len(x)] = torch.tensor(x)
    return extra, uids, mask, entropy


def both(with_padding_row: bool = False):
    eps = episodes()
    s_extra, s_uids, s_mask, s_ent = step_layout(eps)
    t_extra, t_uids, t_mask, t_ent = trajectory_layout(eps)
    t_real = torch.ones(len(t_extra), dtype=torch.bool)
    if with_padding_row:  # verl's padding: a copy of row 0, not real
        t_extra, t_uids = t_extra + [dict(t_extra[0])], t_uids + ["pad"]
        t_mask, t_ent = torch.cat([t_mask, t_mask[:1]]), torch.cat([t_ent, t_ent[:1]])
        t_real = torch.cat([t_real, torch.tensor([False])])
    s = StepBatch.build(
        s_extra, s_uids, torch.ones(len(s_extra), dtype=torch.bool), s_mask, s_ent, None, 3, {}
    )
    t = StepBatch.build(t_extra, t_uids, t_real, t_mask * t_real.unsqueeze(1), t_ent, None, 3, {})
    return eps, s, t


def model_tokens_of_steps(x: torch.Tensor, batch: StepBatch) -> torch.Tensor:
    """Per-token values on the model's tokens, in episode/turn/token order."""
    return x[batch.mask.bool()]


def model_tokens_of_rows(x: torch.Tensor, batch: StepBatch, real_rows: int) -> torch.Tensor:
    rows = batch.to_rows(x)[:real_rows]
    mask = batch.to_rows(batch.mask.float())[:real_rows]
    return rows[mask.bool()]


def test_segments_are_the_step_rows():
    eps, s, t = both()
    assert t.segments is not None and len(t.segments) == len(s.rows.turn)
    assert torch.equal(t.rows.turn, s.rows.turn) and torch.equal(t.rows.traj, s.rows.traj)
    assert torch.equal(t.rows.group, s.rows.group)
    assert torch.equal(t.rows.outcome, s.rows.outcome) and torch.equal(t.rows.penalty, s.rows.penalty)
    # each segment's mask covers exactly its turn's model tokens
    assert torch.equal(t.mask.sum(1), s.mask.sum(1))
    assert torch.equal(model_tokens_of_steps(t.entropy, t), model_tokens_of_steps(s.entropy, s))
    # the segments' masks add up to the rows' mask: the environment's tokens are in no segment
    _, _, t_mask, _ = trajectory_layout(eps)
    assert torch.equal(t.to_rows(t.mask.float()), t_mask)


def test_per_turn_entropies_are_the_same():
    _, s, t = both()
    assert torch.allclose(
        per_turn_token_mean(t.entropy, t.mask, t.rows.turn),
        per_turn_token_mean(s.entropy, s.mask, s.rows.turn),
    )


@pytest.mark.parametrize("group_stats", ["step_rows", "trajectory"])
def test_grpo_and_gigpo_advantages_are_the_same(group_stats):
    _, s, t = both(with_padding_row=True)
    real = t.real
    t_adv = grpo_advantages(t.rows, group_stats=group_stats)[real]
    assert torch.allclose(t_adv, grpo_advantages(s.rows, group_stats=group_stats), atol=1e-6)

    def gigpo(b):
        rewards = torch.tensor([float(e.get("env_reward", 0.0)) for e in b.extra]) * b.real
        anchors = [e.get("anchor_obs") if r else None for e, r in zip(b.extra, b.real.tolist(), strict=True)]
        return gigpo_advantages(b.rows, rewards, anchors, group_stats=group_stats)[0][b.real]

    assert torch.allclose(gigpo(t), gigpo(s), atol=1e-6)


@pytest.mark.parametrize("method", ["empg", "aem"])
def test_method_transforms_give_the_same_token_advantages(hydra_ctx, method):
    """The base advantage, then the method's transform; the trajectory rows' tokens (after collapsing the
    segments back) carry what the step rows' tokens carry."""
    (m,) = api.build_methods(compose("config", overrides=[f"method={method}"]))
    _, s, t = both()
    out = []
    for b in (s, t):
        base = grpo_advantages(b.rows).unsqueeze(1) * b.mask
        out.append(m.transform_advantages(base, b))
    steps = model_tokens_of_steps(out[0], s)
    rows = model_tokens_of_rows(out[1], t, t.num_rows)
    assert steps.numel() == rows.numel() == int(s.mask.sum())
    assert torch.allclose(rows, steps, atol=1e-6)
    assert (steps != 0).any()


def test_epo_regulariser_is_the_same_on_trajectory_rows():
    """EPO's loss cuts trajectory rows into segments on the workers (`losses.turn_segments`) and gives the
    regulariser, with the released variant's per-turn references, of the step rows."""
    _, s, t = both()
    reference = 0.3 + 0.05 * s.rows.turn.double()
    kwargs = dict(step=4, total_steps=10, variant="released", kappa_l=0.0, kappa_r=0.5, gate_turn=1)
    want, want_terms = epo_regularizer(
        s.entropy.double(), s.mask.bool(), s.rows.traj, turn=s.rows.turn, reference=reference, **kwargs
    )
    token_turn = t.to_rows(t.rows.turn.double().unsqueeze(1) * t.mask)
    token_reference = t.to_rows(reference.unsqueeze(1) * t.mask)
    row_mask = t.to_rows(t.mask.float()).bool()
    traj = t.per_row(t.rows.traj.double()).round().long()
    entropy = t.to_rows(t.entropy.double())
    ent, mask, traj_s, turn_s, ref_s = turn_segments(
        entropy,
        row_mask,
        traj,
        t.per_row(reference[: len(t.rows.turn)].double()),
        token_turn,
        token_reference,
    )
    got, terms = epo_regularizer(ent, mask, traj_s, turn=turn_s, reference=ref_s, **kwargs)
    assert torch.allclose(got, want, atol=1e-9) and float(want) != 0.0
    assert float(terms["epo/reference"]) == pytest.approx(float(want_terms["epo/reference"]))


def test_row_scores_put_penalties_at_each_turn_and_the_outcome_once():
    eps, _, t = both()
    lengths = t.to_rows(t.mask.float()).shape[1] - (t.to_rows(t.mask.float()).flip(1).cumsum(1) == 0).sum(1)
    scores = row_scores(t, lengths)
    for r, e in enumerate(eps):
        assert float(scores[r].sum()) == pytest.approx(10.0 * e["won"] - sum(e["penalty"]))
        ends = [int(i) for i in torch.nonzero(scores[r]).flatten()]
        assert len(ends) <= len(e["lengths"])
        last_model_token = int(torch.nonzero(t.to_rows(t.mask.float())[r]).max())
        assert float(scores[r, last_model_token]) == pytest.approx(10.0 * e["won"] - e["penalty"][-1])


def test_per_row_values_are_the_token_weighted_means_of_the_rows_steps():
    """What a method keeping per-row state reads (SPEAR's replay: each row's return, advantage, group): a
    value constant over a trajectory's steps is the row's value; any other is its token-weighted mean."""
    eps, _, t = both()
    assert torch.equal(t.per_row(t.rows.outcome), torch.tensor([10.0 * e["won"] for e in eps]))
    steps = torch.arange(len(t.rows.turn), dtype=torch.float)
    tokens = t.mask.sum(1)
    for r in range(len(eps)):
        own = t.segments.row == r
        want = (steps[own] * tokens[own]).sum() / tokens[own].sum()
        assert float(t.per_row(steps)[r]) == pytest.approx(float(want))
    step_layout_batch = both()[1]
    assert torch.equal(step_layout_batch.per_row(steps[: len(step_layout_batch.rows.turn)]), steps)
