"""SPEAR's wiring (the maths: `agent_rl.methods.spear`; the rows: `agent_rl.methods.replay.SpearReplay`; the
loss: `agent_rl.methods.losses.spear_actor_loss`; the page: docs/methods/spear.md).

- ``transform_outcome``: the tool-call bonus ``R + mu_t min(1, 0.1 n_calls)`` (every environment action
  is a tool call: the episode length);
- ``actor_loss``: verl's PPO loss; on the replay pass with the replay Clip-Cov bounds, no KL, weight
  ``gamma_t``;
- ``after_advantages``: each row's trajectory return and advantage, kept for the buffer;
- ``update_actor``: the released order: sample the full buffer, on-policy update, replay update, then
  store this batch's positive-advantage rows; ``state_dict``: the buffer and its rows (a torch file).
"""

from __future__ import annotations

import dataclasses

import torch

from agent_rl.methods import spear
from agent_rl.methods.aem_method import group_check
from agent_rl.methods.api import Method, StepBatch, register_method
from agent_rl.rows.step_rows import trajectory_returns


@register_method("spear")
class Spear(Method):
    needs_entropy = True
    state_format = "torch"

    def __init__(self, config) -> None:
        super().__init__(config)
        from agent_rl.methods.replay import SpearReplay

        cfg = self.cfg
        buffer = spear.SpearReplayBuffer(
            capacity=int(cfg.replay_capacity),
            baseline_capacity=int(cfg.baseline_capacity),
            tolerate_steps=int(cfg.tolerate_steps),
            weight_decay=None if cfg.get("replay_weight_decay") is None else float(cfg.replay_weight_decay),
            norm_adv_by_std=bool(config.algorithm.get("norm_adv_by_std_in_grpo", False)),
        )
        self.replay = SpearReplay(buffer, seed=int(config.get("seed", 0)))
        self._pending = None

    @classmethod
    def check(cls, config):
        return group_check(cls.name, config)

    def actor_loss(self, actor_config):
        from functools import partial

        from agent_rl.methods.losses import spear_actor_loss

        return partial(spear_actor_loss, config=actor_config, replay_clip_cov=dict(self.cfg.replay_clip_cov))

    def transform_outcome(self, rows, batch: StepBatch):
        cfg = self.cfg
        calls = torch.tensor(
            [float(e.get("episode_tool_calls", e.get("episode_length", 0))) for e in batch.extra]
        )
        bonus = spear.toolcall_bonus(calls, batch.step, max_steps=int(cfg.bonus_steps), mode=cfg.bonus_mode)
        bonus = bonus * batch.real.float()
        batch.metrics["method/spear/bonus_schedule"] = spear.toolcall_schedule(
            batch.step, max_steps=int(cfg.bonus_steps), mode=cfg.bonus_mode
        )
        if bool(batch.real.any()):
            batch.metrics["method/spear/bonus_mean"] = float(bonus[batch.real].mean())
        return dataclasses.replace(rows, outcome=rows.outcome + bonus)

    def after_advantages(self, advantages, batch: StepBatch):
        rows, mask = batch.rows, batch.mask
        row_adv = (advantages * mask).sum(1) / mask.sum(1).clamp(min=1)
        returns, traj_index, _ = trajectory_returns(rows.outcome, rows.penalty, rows.traj)
        per_row = batch.per_row  # the replay stores the batch's rows (trajectory rows: their segments' mean)
        self._pending = (
            per_row(returns[traj_index]),
            per_row(row_adv),
            per_row(rows.group.double()).round().long(),
            per_row(rows.traj.double()).round().long(),
            per_row((batch.real & mask.any(1)).double()) > 0,
        )
        return {}

    def update_actor(self, trainer, batch, metrics, update):
        if self._pending is None:
            return update(batch)
        import transfer_queue as tq
        from verl.utils.metric import reduce_metrics
        from verl.utils.py_functional import rename_dict

        cfg, step, replay_rows = self.cfg, trainer.global_steps, self.replay
        sampled = replay_rows.sample()
        batch = update(batch)
        weight = spear.replay_loss_weight(
            step, coef=float(cfg.replay_loss_coef), warmup_steps=int(cfg.replay_warmup_steps)
        )
        metrics["method/spear/replay_weight"] = weight
        replayed = 0
        if sampled is not None and weight > 0:
            rows, tags, adv = sampled
            replay = replay_rows.put_for_update(batch, step, rows, tags, adv)
            put_keys = list(replay.keys)
            actor = self.config.actor_rollout_ref.actor
            unit = max(int(getattr(trainer.actor_rollout_wg, "world_size", 1)), 1)
            if not actor.get("use_dynamic_bsz", False):  # fixed micro-batches must divide the rows
                unit *= int(actor.ppo_micro_batch_size_per_gpu)
            replayed = len(put_keys) // unit * unit
            if replayed:
                replay.keys, replay.tags = put_keys[:replayed], replay.tags[:replayed]
                replay.extra_info.update(
                    spear_replay=True,
                    spear_weight=weight,
                    global_batch_size=replayed,
                    mini_batch_size=replayed,
                )
                output = trainer.actor_rollout_wg.update_actor(replay)
                replay_metrics = reduce_metrics(rename_dict(output["metrics"], "actor/"))
                metrics.update({f"method/spear/replay/{k}": v for k, v in replay_metrics.items()})
            tq.kv_clear(keys=put_keys, partition_id=batch.partition_id)
        metrics["method/spear/replay_rows"] = float(replayed)
        metrics["method/spear/replay_share"] = replayed / (replayed + len(batch.keys))
        returns, row_adv, group, traj, real = self._pending
        self._pending = None
        stored = replay_rows.store(batch, step, returns, row_adv, group, traj, real)
        metrics["method/spear/stored_rows"] = float(stored)
        metrics["method/spear/buffer_rows"] = float(replay_rows.num_rows())
        metrics["method/spear/buffer_size"] = float(replay_rows.buffer.size())
        return batch

    def state_dict(self):
        return self.replay.state_dict()

    def load_state_dict(self, state):
        if "buffer" in state:
            self.replay.load_state_dict(state)
