"""agent_rl's trainer: verl's V1 sync trainer, with the advantage step taught about per-step rows.

Each training row is one environment step (`agent_rl.rollout.agent_loop`); its ``extra_fields`` say which
trajectory and turn it belongs to, whether its action was valid, and how the episode ended. verl's own
advantage step sees only ``rm_scores`` (the outcome, copied onto every step by verl). Here, before verl's
step runs:

1. each row's score becomes ``R - p·[invalid]`` at its last response token (what verl-agent's reward
   manager and ``apply_invalid_action_penalty`` produce), so critic-based estimators (``gae``) and verl's
   score metrics see the penalty;
2. after verl's step, GRPO's advantages are replaced by GRPO over the step rows with the group statistics
   of ``algo.group_stats`` (`agent_rl.advantage.grpo_advantages`: verl-agent's by default);
3. episode metrics are added: success rate overall and per task type, episode length, valid-action
   ratio, failed environments.

Single-turn rows (no ``trajectory_id``) go through verl unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
from collections import defaultdict
from functools import partial
from typing import Any

import numpy as np
import torch
import transfer_queue as tq
from tensordict import TensorDict
from torch.utils.data import Subset
from torchdata.stateful_dataloader import StatefulDataLoader
from verl.trainer.ppo.v1 import PPOTrainerSync
from verl.utils.metric import reduce_metrics
from verl.utils.py_functional import rename_dict
from verl.workers.utils.padding import response_to_nested

from agent_rl import trajectories
from agent_rl.advantage import StepRows, grpo_advantages, trajectory_returns
from agent_rl.methods import aem, empg, spear
from agent_rl.methods.epo import EntropyHistory
from agent_rl.methods.turns import batch_token_mean, per_turn_token_mean
from agent_rl.replay import SpearReplay
from agent_rl.sampling import BoundedDapoBuffer

logger = logging.getLogger(__name__)


def _as_list(x: Any) -> list:
    return list(x.tolist() if hasattr(x, "tolist") else x)


def real_rows(extra: list[dict[str, Any]], tags: list[dict] | None) -> list[bool]:
    """Rows that are environment steps (they carry a trajectory id) and not verl's padding."""
    tags = tags or [{} for _ in extra]
    return [
        ("trajectory_id" in e) and not t.get("is_padding", False) for e, t in zip(extra, tags, strict=True)
    ]


def _stats(name: str, x: torch.Tensor) -> dict[str, float]:
    if x.numel() == 0:
        return {}
    return {
        f"{name}/mean": float(x.mean()),
        f"{name}/std": float(x.std(unbiased=False)),
        f"{name}/min": float(x.min()),
        f"{name}/max": float(x.max()),
    }


def entropy_by_turn(entropy: torch.Tensor, mask: torch.Tensor, turn: torch.Tensor) -> dict[str, float]:
    """Mean token entropy of the responses at each turn index (old policy)."""
    per_turn = per_turn_token_mean(entropy, mask, turn)
    present = torch.zeros(len(per_turn), dtype=torch.bool).index_fill_(0, turn[mask.any(1)], True)
    return {
        f"entropy_by_turn/{t}": float(v) for t, (v, p) in enumerate(zip(per_turn, present, strict=True)) if p
    }


def episode_metrics(extra: list[dict[str, Any]], prefix: str = "env") -> dict[str, float]:
    """Metrics over trajectories (each counted once) from the rows' ``extra_fields``."""
    episodes: dict[str, dict[str, Any]] = {}
    for fields in extra:
        episodes.setdefault(fields["trajectory_id"], fields)
    if not episodes:
        return {}
    eps = list(episodes.values())
    lengths = np.array([e["episode_length"] for e in eps], dtype=float)
    out = {
        f"{prefix}/success_rate": float(np.mean([e["won"] for e in eps])),
        f"{prefix}/score/mean": float(np.mean([e["score"] for e in eps])),
        f"{prefix}/episode_length/mean": float(lengths.mean()),
        f"{prefix}/episode_length/max": float(lengths.max()),
        f"{prefix}/episode_length/min": float(lengths.min()),
        f"{prefix}/valid_action_ratio": float(np.mean([e["valid_action_ratio"] for e in eps])),
        f"{prefix}/env_failed_total": float(sum(e["env_failed"] for e in eps)),
        f"{prefix}/trajectories": float(len(eps)),
        f"{prefix}/steps_per_trajectory": float(len(extra) / len(eps)),
        f"{prefix}/prompt_truncated_ratio": float(np.mean([bool(f.get("prompt_truncated")) for f in extra])),
    }
    by_type: dict[str, list[float]] = defaultdict(list)
    for e in eps:
        by_type[e.get("task_type") or "unknown"].append(e["won"])
    for task_type, wins in sorted(by_type.items()):
        out[f"{prefix}/success_rate/{task_type}"] = float(np.mean(wins))
    return out


def overall_validation_metrics(
    metrics: dict[str, float], tasks_per_source: dict[str, int]
) -> dict[str, float]:
    """verl reports validation per ``data_source`` (``<env>/<task type>`` for our rows); add the
    environment-wide value of each ``val-core``/``val-aux`` metric (``won`` is an aux one), weighted by the
    number of tasks of each type."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for key, value in metrics.items():
        parts = key.split("/")
        if (
            len(parts) < 4
            or parts[0] not in ("val-core", "val-aux")
            or "/".join(parts[1:3]) not in tasks_per_source
        ):
            continue
        weight = tasks_per_source["/".join(parts[1:3])]
        total = totals["/".join([parts[0], parts[1], "all", *parts[3:]])]
        total[0] += weight * float(value)
        total[1] += weight
    return {key: s / w for key, (s, w) in totals.items() if w > 0}


def validation_draw(num_tasks: int, per_eval: int, seed: int, step: int) -> list[int]:
    """EPO's protocol: ``per_eval`` tasks of the split drawn afresh for the evaluation at ``step``, the same
    for the same seed and step (so a resumed run validates as the original would have)."""
    rng = random.Random(f"val-{seed}-{step}")
    return sorted(rng.sample(range(num_tasks), min(per_eval, num_tasks)))


def check_env_actor(config) -> None:
    """Start one environment actor the way the agent-loop workers do and let it count its tasks against
    the driver's (agent_rl.envs.pool): a node without ALFWORLD_DATA would otherwise play the shipped games
    in place of the real ones, and verl turns an agent loop's error into a dropped group, not a stop."""
    env_cfg = config.get("env") or {}
    if not env_cfg.get("expected_tasks"):
        return
    import asyncio

    from agent_rl.envs.pool import EnvPool

    async def start_one():
        kwargs = dict(env_cfg.get("env_kwargs") or {})
        pool = EnvPool(env_cfg.name, size=1, env_kwargs=kwargs, expected_tasks=dict(env_cfg.expected_tasks))
        try:
            await pool.start(1)
        finally:
            await pool.shutdown()

    asyncio.run(start_one())


class AgentTrainer(PPOTrainerSync):
    """`PPOTrainerSync` whose advantage step knows trajectories, turns and invalid actions."""

    def _build_replay_buffer(self):
        """verl's buffer; DAPO's dynamic sampling on our group statistics, bounded by
        ``filter_groups.max_num_gen_batches``."""
        filter_groups = self.config.algorithm.get("filter_groups") or {}
        bound = int(filter_groups.get("max_num_gen_batches", 0) or 0)
        return BoundedDapoBuffer.bound(super()._build_replay_buffer(), bound, self.group_stats)

    def _validate(self) -> dict[str, float]:
        """verl's validation over ``env.val_protocol``'s tasks, plus environment-wide metrics."""
        tasks = list(range(len(self.val_dataset))) if self.val_dataset is not None else []
        full = self.val_dataloader
        if self.config.env.get("val_protocol", "fixed") == "epo" and tasks:
            tasks = validation_draw(
                len(tasks), int(self.config.env.val_tasks_per_eval), int(self.config.seed), self.global_steps
            )
            self.val_dataloader = StatefulDataLoader(
                Subset(self.val_dataset, tasks),
                batch_size=len(tasks),
                shuffle=False,
                collate_fn=full.collate_fn,
                num_workers=full.num_workers,
            )
        try:
            metrics = super()._validate()
        finally:
            self.val_dataloader = full
        frame = getattr(self.val_dataset, "dataframe", None)
        every_source = list(frame["data_source"]) if frame is not None else []
        sources = [every_source[i] for i in tasks if i < len(every_source)]
        tasks_per_source = {s: sources.count(s) for s in set(sources) if "/" in s}
        metrics.update(overall_validation_metrics(metrics, tasks_per_source))
        metrics["val/tasks"] = float(len(tasks))
        return metrics

    @property
    def group_stats(self) -> str:
        return str(self.config.get("algo", {}).get("group_stats", "step_rows"))

    @property
    def method_name(self) -> str:
        return self.config.get("method", {}).get("name", "none")

    def _compute_advantage(self, batch, metrics: dict):
        method = self.method_name
        filters = bool(self.config.method.get("dr_bot_filters", False))
        # the entropy feeds the methods and the per-turn entropy metrics (and W&B's plot of them); verl's
        # rollout-correction bypass mode reuses the rollout's log-probs and computes no entropy
        bypass = bool((self.config.algorithm.get("rollout_correction") or {}).get("bypass_mode", False))
        with_entropy = method != "none" or ("wandb" in self.config.trainer.logger and not bypass)
        fields = ["uid", "extra_fields", "response_mask"] + (["entropy"] if with_entropy else [])
        fields += ["responses"] if filters else []
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        extra = [dict(e) if e is not None else {} for e in _as_list(data["extra_fields"])]
        if not any("trajectory_id" in e for e in extra):
            return super()._compute_advantage(batch, metrics)

        real = torch.tensor(real_rows(extra, batch.tags))
        rows = StepRows.from_fields(extra, _as_list(data["uid"]), real)
        if method == "spear":  # the tool-call bonus is part of the outcome (SPEAR's episode reward)
            rows = self._spear_bonus(rows, extra, real, metrics)
        response_mask = data["response_mask"]
        mask = response_mask.to_padded_tensor(0) * real.unsqueeze(1)
        no_signal = False
        if filters:  # Dr.BoT: filtered responses leave the loss (their mask is zeroed in TransferQueue)
            keep = self._dr_bot_keep(rows, extra, data, mask, metrics)
            no_signal = not bool((keep & mask.any(1)).any())
            metrics["dr_bot/all_filtered"] = float(no_signal)
            if not no_signal:
                mask = mask * keep.unsqueeze(1)
                self._put(batch, response_mask=(mask, response_mask))

        # 1. each row's score: outcome minus its own invalid-action penalty, at its last response token
        lengths = response_mask.offsets().diff()
        scores = torch.zeros(mask.shape)
        scores[torch.arange(len(extra)), (lengths - 1).clamp(min=0)] = rows.outcome - rows.penalty
        self._put(batch, rm_scores=(scores * real.unsqueeze(1), response_mask))

        # 2. verl's advantage step (KL in reward, rollout correction, GAE, ...), then the base advantage
        batch = super()._compute_advantage(batch, metrics)
        if self.config.algorithm.adv_estimator in ("grpo", "empg", "aem"):  # verl_plugin: GRPO-based names
            adv = grpo_advantages(
                rows,
                group_stats=self.group_stats,
                norm_by_std=bool(self.config.algorithm.get("norm_adv_by_std_in_grpo", True)),
            )
            advantages = adv.unsqueeze(1) * mask
        else:
            got = tq.kv_batch_get(
                keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages"]
            )
            advantages = got["advantages"].to_padded_tensor(0.0) * mask

        if no_signal:  # all filtered: no policy gradient from this batch (verl needs one valid token)
            advantages = torch.zeros_like(advantages)

        # 3. the entropy method's transform of the advantages
        entropy = data["entropy"].to_padded_tensor(0.0).float() if with_entropy else None
        if entropy is not None:
            metrics.update(entropy_by_turn(entropy, mask, rows.turn))
        if method != "none":
            if method == "epo":
                batch = self._prepare_epo(batch, entropy, mask, rows, metrics)
            base = advantages
            advantages = self._method_advantages(method, advantages, entropy, mask, rows, metrics)
            changed = (advantages - base).abs()[mask.bool()]
            if changed.numel():  # how far the method moved the base advantages of this very batch
                metrics[f"method/{method}/adv_change_abs_mean"] = float(changed.mean())
        batch = self._put(batch, advantages=(advantages, response_mask), returns=(advantages, response_mask))
        if method == "spear":
            row_adv = (advantages * mask).sum(1) / mask.sum(1).clamp(min=1)
            returns, traj_index, _ = trajectory_returns(rows.outcome, rows.penalty, rows.traj)
            self._spear_pending = (returns[traj_index], row_adv, rows.group, rows.traj, real & mask.any(1))

        metrics.update(episode_metrics([e for e, r in zip(extra, real.tolist(), strict=True) if r]))
        return batch

    # ---- EPO: a loss on the live entropy, with a reference from the history of past steps --------------
    @property
    def epo_history(self) -> EntropyHistory:
        if not hasattr(self, "_epo_history"):
            self._epo_history = EntropyHistory(max_turns=int(self.config.env.get("max_steps", 50)))
        return self._epo_history

    def on_init_end(self):
        super().on_init_end()
        check_env_actor(self.config)
        if self.method_name == "spear":
            from verl.utils.config import omega_conf_to_dataclass

            from agent_rl.losses import spear_actor_loss

            actor_cfg = omega_conf_to_dataclass(self.config.actor_rollout_ref.actor)
            replay = dict(self.config.method.replay_clip_cov)
            self.actor_rollout_wg.set_loss_fn(
                partial(spear_actor_loss, config=actor_cfg, replay_clip_cov=replay)
            )
        if self.method_name == "epo":
            from verl.utils.config import omega_conf_to_dataclass

            from agent_rl.losses import epo_actor_loss

            cfg = self.config.method
            epo = {
                key: cfg[key] for key in ("entropy_coeff", "kappa_l", "kappa_r", "gamma", "alpha", "variant")
            }
            actor_cfg = omega_conf_to_dataclass(self.config.actor_rollout_ref.actor)
            self.actor_rollout_wg.set_loss_fn(partial(epo_actor_loss, config=actor_cfg, epo=epo))

    def _prepare_epo(self, batch, entropy, mask, rows: StepRows, metrics):
        """Row ids and the per-row reference for the loss; this step's entropy waits for the history
        until the update is done (the reference is the mean of *past* steps)."""
        history = self.epo_history
        if self.config.method.variant == "released":
            reference = history.reference_for_rows(rows.turn)
        else:
            value = history.reference()
            reference = None if value is None else torch.full((len(rows.turn),), value)
        self._epo_has_reference = reference is not None
        self._epo_pending = (
            float(batch_token_mean(entropy, mask)),
            per_turn_token_mean(entropy, mask, rows.turn),
        )
        if reference is not None:
            metrics["method/epo/reference_mean"] = float(reference.mean())
        metrics["method/epo/history_steps"] = float(len(history))
        fields = TensorDict(
            {
                "traj_index": rows.traj.float(),
                "turn_index": rows.turn.float(),
                "epo_row_reference": reference.float()
                if reference is not None
                else torch.zeros(len(rows.turn)),
            },
            batch_size=len(rows.turn),
        )
        return tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=fields)

    # ---- mini-batches counted in step rows ------------------------------------------------------------
    @property
    def mini_batch_rows(self) -> int | None:
        """``algo.mini_batch_rows``: step rows per optimizer update (verl-agent's ``ppo_mini_batch_size``,
        which it runs with ``rollout.n=1``); None keeps verl's ``ppo_mini_batch_size x rollout.n``."""
        rows = self.config.get("algo", {}).get("mini_batch_rows")
        return int(rows) if rows else None

    def _get_required_batch_multiple(self, dp_size: int) -> int:
        """verl pads the batch to whole mini-batches; with ``mini_batch_rows``, to whole row mini-batches
        (the padding rows carry no loss, so the last update is a partial one, as in verl-agent)."""
        rows = self.mini_batch_rows
        if rows is None:
            return super()._get_required_batch_multiple(dp_size)
        multiple = math.lcm(dp_size, rows)
        if self.use_critic:
            critic_rows = self.config.critic.ppo_mini_batch_size * self.config.actor_rollout_ref.rollout.n
            multiple = math.lcm(multiple, critic_rows)
        return multiple

    def _verl_update_actor(self, batch, metrics: dict):
        """verl's actor update with mini-batches of ``mini_batch_rows`` rows when set; reports the number
        of optimizer updates it ran as ``actor/updates_per_step``."""
        workers, rows = self.actor_rollout_wg, self.mini_batch_rows
        update = workers.update_actor  # bound per instance by verl's worker group
        updates = []

        def update_in_rows(b):
            if rows is not None:
                b.extra_info.update(global_batch_size=rows, mini_batch_size=rows)
            output = update(b)
            grad_norm = output["metrics"].get("grad_norm")  # one value per optimizer step
            updates.append(len(grad_norm) if isinstance(grad_norm, list) else int(grad_norm is not None))
            return output

        workers.update_actor = update_in_rows
        try:
            batch = super()._update_actor(batch, metrics)
        finally:
            workers.update_actor = update
        metrics["actor/updates_per_step"] = float(sum(updates))
        return batch

    def _update_actor(self, batch, metrics: dict):
        if self.method_name == "spear" and hasattr(self, "_spear_pending"):
            return self._spear_update(batch, metrics)
        if self.method_name != "epo" or not hasattr(self, "_epo_pending"):
            return self._verl_update_actor(batch, metrics)
        batch.extra_info.update(
            epo_has_reference=self._epo_has_reference,
            epo_step=self.global_steps - 1,
            epo_total_steps=int(self.total_training_steps),
        )
        batch = self._verl_update_actor(batch, metrics)
        step_mean, per_turn = self._epo_pending
        self.epo_history.append(step_mean, per_turn)
        del self._epo_pending
        return batch

    # ---- method state in checkpoints ---------------------------------------------------------------------
    def _method_state_path(self, step: int) -> str:
        return os.path.join(self.config.trainer.default_local_dir, f"global_step_{step}", "method_state.json")

    def _save_checkpoint(self):
        super()._save_checkpoint()
        state = {
            "method": self.method_name,
            "global_steps": self.global_steps,
            "epo_history": self.epo_history.state_dict(),
        }
        path = self._method_state_path(self.global_steps)
        with open(path, "w") as f:
            json.dump(state, f)
        if self.method_name == "spear":  # tensors and TransferQueue rows: a torch file beside the json
            torch.save(self.spear_replay.state_dict(), path.replace(".json", ".pt"))

    def _load_checkpoint(self):
        result = super()._load_checkpoint()
        if self.global_steps > 0:
            folder = (
                self.config.trainer.resume_from_path
                if self.config.trainer.resume_mode == "resume_path"
                else None
            )
            path = (
                os.path.join(folder, "method_state.json")
                if folder
                else self._method_state_path(self.global_steps)
            )
            if os.path.exists(path):
                with open(path) as f:
                    state = json.load(f)
                self.epo_history.load_state_dict(state["epo_history"])
                if os.path.exists(path.replace(".json", ".pt")):
                    spear_state = torch.load(path.replace(".json", ".pt"), weights_only=False)
                    self.spear_replay.load_state_dict(spear_state)
                logger.warning("agent_rl: restored method state from %s", path)
        return result

    def _method_advantages(self, method, advantages, entropy, mask, rows: StepRows, metrics):
        cfg = self.config.method
        if method == "empg":
            terms = empg.empg_terms(entropy, mask, rows.traj, rows.turn, k=cfg.k, k_next=cfg.k_next, eps=1e-8)
            metrics.update(_stats("method/empg/g", terms.g[terms.valid]))
            metrics.update(_stats("method/empg/f", terms.f[terms.valid]))
            return empg.empg_advantages(
                advantages, entropy, mask, rows.traj, rows.turn, k=cfg.k, k_next=cfg.k_next, zeta=cfg.zeta
            )
        if method == "aem":
            alpha = aem.aem_weights(entropy, mask, rows.group, lam=cfg.lam, min_range=cfg.min_range)
            metrics.update(_stats("method/aem/alpha", alpha[mask.any(1)]))
            return aem.aem_advantages(
                advantages, entropy, mask, rows.group, lam=cfg.lam, min_range=cfg.min_range
            )
        return advantages

    # ---- W&B: a per-turn entropy plot and a table of sample trajectories, each step -------------------
    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        try:
            self._save_trajectories(batch, metrics, global_steps)
        except Exception as err:  # noqa: BLE001 - the viewer's sample must never stop training
            logger.warning("agent_rl: trajectory sample skipped at step %s: %r", global_steps, err)
        try:
            import wandb
        except ImportError:
            return
        if wandb.run is not None and "wandb" in self.config.trainer.logger:
            try:
                media = self._wandb_media(batch, metrics, wandb)
            except Exception as err:  # noqa: BLE001 - a plot must never stop training
                logger.warning("agent_rl: W&B media skipped at step %s: %r", global_steps, err)
                return
            wandb.log(media, step=global_steps)

    def _wandb_media(self, batch, metrics: dict, wandb) -> dict:
        """The plot of this step's ``entropy_by_turn/<t>`` metrics, and a few of its trajectories."""
        media = {}
        per_turn = sorted(
            (int(k.split("/")[1]), v) for k, v in metrics.items() if k.startswith("entropy_by_turn/")
        )
        if per_turn:
            table = wandb.Table(columns=["turn", "entropy"], data=[list(p) for p in per_turn])
            media["plots/entropy_by_turn"] = wandb.plot.line(
                table, "turn", "entropy", title=f"Mean token entropy by turn (step {self.global_steps})"
            )
        fields = ["extra_fields", "responses"]
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        extra = [dict(e) if e is not None else {} for e in _as_list(data["extra_fields"])]
        real = real_rows(extra, batch.tags)
        shown = trajectories.pick(extra, real, int(self.config.logger.get("samples_per_step", 2)))
        rows = []
        responses = data["responses"]
        for i, (e, r) in enumerate(zip(extra, real, strict=True)):
            if r and e["trajectory_id"] in shown:
                text = self.tokenizer.decode(responses[i].tolist(), skip_special_tokens=True)
                rows.append(
                    [
                        self.global_steps,
                        e["trajectory_id"],
                        e.get("task_type"),
                        int(e.get("turn", 0)),
                        text,
                        bool(e.get("action_valid")),
                        e.get("invalid_reason"),
                        float(e.get("won", 0.0)),
                        float(e.get("episode_return", 0.0)),
                    ]
                )
        if rows:
            columns = [
                "step",
                "trajectory",
                "task_type",
                "turn",
                "response",
                "valid",
                "reason",
                "won",
                "return",
            ]
            media["samples/trajectories"] = wandb.Table(columns=columns, data=rows)
        return media

    def _save_trajectories(self, batch, metrics: dict, step: int) -> None:
        """The mean trajectory return (``env/return/mean``), the entropy by turn where the advantage step
        computed none (for the report's heatmap), and, in the run folder, the step's sample of trajectories
        with their tokens and token entropies (`agent_rl.trajectories`, for the report's trajectory
        viewer): the ``logger.samples_per_step`` trajectories W&B's table shows."""
        bypass = bool((self.config.algorithm.get("rollout_correction") or {}).get("bypass_mode", False))
        fields = ["extra_fields", "prompts", "responses"] + ([] if bypass else ["entropy", "response_mask"])
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        extra = [dict(e) if e is not None else {} for e in _as_list(data["extra_fields"])]
        real = real_rows(extra, batch.tags)
        if not any(real):
            return
        returns = trajectories.episode_returns([e for e, r in zip(extra, real, strict=True) if r])
        metrics["env/return/mean"] = float(np.mean(list(returns.values())))
        if not bypass and not any(k.startswith("entropy_by_turn/") for k in metrics):  # the report's heatmap
            mask = data["response_mask"].to_padded_tensor(0) * torch.tensor(real).unsqueeze(1)
            turn = torch.tensor([int(e.get("turn", 0)) for e in extra])
            metrics.update(entropy_by_turn(data["entropy"].to_padded_tensor(0.0).float(), mask, turn))
        run_dir, k = self.config.logger.get("run_dir"), int(self.config.logger.get("samples_per_step", 2))
        if not run_dir or k <= 0:
            return
        from agent_rl.rollout.parsing import parse_action

        env, tokenizer = str(self.config.env.name), self.tokenizer
        try:
            parse_action("", env)
            parse = partial(parse_action, env_name=env)
        except ValueError:  # an environment without a parser of ours: the rows' validity only
            parse = None
        sample = trajectories.step_sample(
            step,
            env,
            extra,
            real,
            prompts=data["prompts"],
            responses=data["responses"],
            entropy=None if bypass else data["entropy"],
            decode=partial(tokenizer.decode, skip_special_tokens=True),
            decode_each=lambda ids: tokenizer.batch_decode([[i] for i in ids]),
            k=k,
            parse=parse,
        )
        trajectories.save_step(run_dir, sample)

    # ---- SPEAR: tool-call bonus, self-imitation replay; Dr.BoT filters ---------------------------------
    @property
    def spear_replay(self) -> SpearReplay:
        if not hasattr(self, "_spear_replay"):
            cfg = self.config.method
            buffer = spear.SpearReplayBuffer(
                capacity=int(cfg.replay_capacity),
                baseline_capacity=int(cfg.baseline_capacity),
                tolerate_steps=int(cfg.tolerate_steps),
                weight_decay=None if cfg.get("replay_weight_decay") is None else float(cfg.replay_weight_decay),
                norm_adv_by_std=bool(self.config.algorithm.get("norm_adv_by_std_in_grpo", False)),
            )
            self._spear_replay = SpearReplay(buffer, seed=int(self.config.get("seed", 0)))
        return self._spear_replay

    def _spear_bonus(self, rows: StepRows, extra, real, metrics) -> StepRows:
        """``R + mu_t min(1, 0.1 n_calls)``: every environment action is a tool call (episode length)."""
        cfg = self.config.method
        calls = torch.tensor([float(e.get("episode_length", 0)) for e in extra])
        bonus = spear.toolcall_bonus(
            calls, self.global_steps, max_steps=int(cfg.bonus_steps), mode=cfg.bonus_mode
        )
        bonus = bonus * real.float()
        metrics["method/spear/bonus_schedule"] = spear.toolcall_schedule(
            self.global_steps, max_steps=int(cfg.bonus_steps), mode=cfg.bonus_mode
        )
        if bool(real.any()):
            metrics["method/spear/bonus_mean"] = float(bonus[real].mean())
        return dataclasses.replace(rows, outcome=rows.outcome + bonus)

    def _dr_bot_keep(self, rows: StepRows, extra, data, mask, metrics) -> torch.Tensor:
        """Rows kept by Dr.BoT's filters: not overlong, complete (valid think/action format), no 20-gram
        repeated 10 times, and in the 75% of groups with the highest std of trajectory returns."""
        cfg = self.config.method
        valid_rows = mask.any(1)
        response_length = int(self.config.actor_rollout_ref.rollout.response_length)
        overlong = spear.overlong_mask(mask, response_length)
        incomplete = torch.tensor([not e.get("action_valid", True) for e in extra])
        ids = data["responses"].to_padded_tensor(0)
        repeated = spear.repeated_ngram_mask(ids, mask[:, : ids.shape[1]], n=20, threshold=10)
        returns, traj_index, _ = trajectory_returns(rows.outcome, rows.penalty, rows.traj)
        in_group = torch.ones_like(valid_rows)
        in_group[valid_rows] = spear.group_std_filter(
            returns[traj_index][valid_rows],
            rows.group[valid_rows],
            rows.traj[valid_rows],
            keep_ratio=float(cfg.get("group_keep_ratio", 0.75)),
        )
        keep = ~(overlong | incomplete | repeated) & in_group
        if bool(valid_rows.any()):
            for name, flag in (("overlong", overlong), ("incomplete", incomplete), ("repetitive", repeated)):
                metrics[f"dr_bot/{name}_share"] = float(flag[valid_rows].float().mean())
            metrics["dr_bot/group_filtered_share"] = float((~in_group)[valid_rows].float().mean())
            metrics["dr_bot/kept_share"] = float(keep[valid_rows].float().mean())
        return keep

    def _spear_update(self, batch, metrics: dict):
        """Released order: sample the full buffer, on-policy update, replay update, then store this batch."""
        cfg = self.config.method
        step = self.global_steps
        sampled = self.spear_replay.sample()
        batch = self._verl_update_actor(batch, metrics)
        weight = spear.replay_loss_weight(
            step, coef=float(cfg.replay_loss_coef), warmup_steps=int(cfg.replay_warmup_steps)
        )
        metrics["method/spear/replay_weight"] = weight
        replayed = 0
        if sampled is not None and weight > 0:
            rows, tags, adv = sampled
            replay = self.spear_replay.put_for_update(batch, step, rows, tags, adv)
            put_keys = list(replay.keys)
            actor = self.config.actor_rollout_ref.actor
            unit = max(int(getattr(self.actor_rollout_wg, "world_size", 1)), 1)
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
                output = self.actor_rollout_wg.update_actor(replay)
                replay_metrics = reduce_metrics(rename_dict(output["metrics"], "actor/"))
                metrics.update({f"method/spear/replay/{k}": v for k, v in replay_metrics.items()})
            tq.kv_clear(keys=put_keys, partition_id=batch.partition_id)
        metrics["method/spear/replay_rows"] = float(replayed)
        metrics["method/spear/replay_share"] = replayed / (replayed + len(batch.keys))
        returns, row_adv, group, traj, real = self._spear_pending
        del self._spear_pending
        stored = self.spear_replay.store(batch, step, returns, row_adv, group, traj, real)
        metrics["method/spear/stored_rows"] = float(stored)
        metrics["method/spear/buffer_rows"] = float(self.spear_replay.num_rows())
        metrics["method/spear/buffer_size"] = float(self.spear_replay.buffer.size())
        return batch

    def _put(self, batch, **fields):
        """Write padded ``(rows, T)`` tensors back to TransferQueue as nested tensors shaped like the mask."""
        nested = {
            name: response_to_nested(t.to(mask.dtype if name == "response_mask" else torch.float32), mask)
            for name, (t, mask) in fields.items()
        }
        return tq.kv_batch_put(
            keys=batch.keys,
            partition_id=batch.partition_id,
            fields=TensorDict(nested, batch_size=len(batch.keys)),
        )
