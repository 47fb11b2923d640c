"""Actor losses that agent_rl installs on verl's actor workers (``actor_rollout_wg.set_loss_fn``).

verl's policy-loss registry never sees the entropy (verl 0.9.1 ``ppo_loss`` adds ``-entropy_coeff * H``
itself), so a method that shapes the entropy of the *current* forward pass, EPO, replaces the whole loss
function: verl's ``ppo_loss`` plus the method's term on ``model_output["entropy"]``. SPEAR's replay pass
needs other Clip-Cov bounds, no KL and a weight on the whole loss: ``spear_actor_loss``.

Driver-side values reach the loss through the batch's ``extra_info`` (they arrive as non-tensor data on
every micro-batch); per-row ids arrive as tensor fields that the trainer wrote into TransferQueue
(``traj_index``, ``turn_index``, ``epo_row_reference``: the history reference of each row, a constant
for the paper's variant, per turn for the released one).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.utils.metric import AggregationType, Metric
from verl.workers.utils.losses import ppo_loss
from verl.workers.utils.padding import no_padding_2_padding

from agent_rl.methods.epo import epo_regularizer
from agent_rl.rows import segments


def epo_actor_loss(
    config, model_output: dict[str, Any], data: TensorDict, dp_group=None, *, epo: dict[str, Any]
):
    """verl's PPO loss plus EPO's ``R = -lambda (L_H - beta_k L_smooth)`` on the live entropy.

    ``R`` is computed on this micro-batch (its hierarchical means are over the trajectories present) and
    weighted by the micro-batch's share of the global batch's response tokens, the same share that
    verl's token-mean terms carry, so that the micro-batches of one update add up to one batch-level term.
    """
    loss, metrics = ppo_loss(config, model_output, data, dp_group)
    entropy = no_padding_2_padding(model_output["entropy"], data)
    mask = data.select("response_mask").to_padded_tensor()["response_mask"].bool()
    has_reference = bool(tu.get_non_tensor_data(data, "epo_has_reference", False))
    traj, turn = data["traj_index"].long(), data["turn_index"].long()
    reference = data["epo_row_reference"].to(entropy.dtype) if has_reference else None
    if "epo_token_turn" in data.keys():  # trajectory rows: the regulariser runs on their turn segments
        fields = data.select("epo_token_turn", "epo_token_reference").to_padded_tensor()
        entropy, mask, traj, turn, reference = turn_segments(
            entropy, mask, traj, reference, fields["epo_token_turn"], fields["epo_token_reference"]
        )
    regularizer, terms = epo_regularizer(
        entropy,
        mask,
        traj,
        turn=turn,
        reference=reference,
        step=int(tu.get_non_tensor_data(data, "epo_step", 0)),
        total_steps=int(tu.get_non_tensor_data(data, "epo_total_steps", 1)),
        **epo,
    )
    batch_tokens = data["batch_num_tokens"]
    share = mask.sum() * data["dp_size"] / batch_tokens if batch_tokens is not None else torch.tensor(1.0)
    weighted = regularizer * share.to(regularizer.dtype)
    metrics["actor/epo_regularizer"] = Metric(value=weighted.detach(), aggregation=AggregationType.SUM)
    for name, value in terms.items():
        key = name.replace("epo/", "actor/epo/")  # verl prefixes worker metrics with actor/ anyway
        metrics[key] = Metric(value=torch.as_tensor(value).detach().float(), aggregation=AggregationType.MEAN)
    return loss + weighted, metrics


def turn_segments(entropy, mask, traj, reference, token_turn, token_reference):
    """Trajectory rows ``(rows, T)`` cut into their turns (`agent_rl.rows.segments`): the entropy, mask,
    trajectory and turn ids and reference of each segment, as EPO's step rows give them; ``token_turn`` and
    ``token_reference`` are each token's turn and reference (``epo_token_*``, 0 off the mask), ``reference``
    the rows' own (``epo_row_reference``: what an empty segment, e.g. of a padding row, gets)."""
    width = mask.shape[1]
    token_turn = token_turn.round().long()[:, :width]
    token_turn = torch.where(mask, token_turn, torch.full_like(token_turn, -1))
    seg = segments.cut(token_turn, mask, (token_turn.amax(1) + 1).clamp(min=0).tolist())
    seg_mask = seg.mask.bool()
    if reference is not None:  # each segment's own; an empty one (verl's padding rows) its row's
        per_token = token_reference[:, :width].to(entropy.dtype)[seg.row]
        own = (per_token * seg_mask).sum(1) / seg_mask.sum(1).clamp(min=1)
        reference = torch.where(seg_mask.any(1), own, reference.to(entropy.dtype)[seg.row])
    return entropy[seg.row], seg_mask, traj[seg.row], seg.turn.to(traj.device), reference


def spear_actor_loss(
    config,
    model_output: dict[str, Any],
    data: TensorDict,
    dp_group=None,
    *,
    replay_clip_cov: dict[str, float],
):
    """verl's PPO loss; on SPEAR's self-imitation pass (``extra_info["spear_replay"]``) with the replay
    Clip-Cov bounds, no KL loss, and the whole loss scaled by the warm-up weight ``gamma_t``
    (``extra_info["spear_weight"]``), as the released ``dp_actor.update_policy(data, data_replay)``."""
    if not bool(tu.get_non_tensor_data(data, "spear_replay", False)):
        return ppo_loss(config, model_output, data, dp_group)
    weight = float(tu.get_non_tensor_data(data, "spear_weight", 1.0))
    policy_loss = dataclasses.replace(
        config.policy_loss,
        clip_cov_ratio=float(replay_clip_cov["ratio"]),
        clip_cov_lb=float(replay_clip_cov["lb"]),
        clip_cov_ub=float(replay_clip_cov["ub"]),
    )
    replay_config = dataclasses.replace(config, use_kl_loss=False, policy_loss=policy_loss)
    loss, metrics = ppo_loss(replay_config, model_output, data, dp_group)
    metrics["actor/spear_weight"] = Metric(value=torch.tensor(weight), aggregation=AggregationType.MEAN)
    return loss * weight, metrics
