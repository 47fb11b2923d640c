"""agent_rl's trainer: verl's V1 sync trainer, with the advantage step taught about per-step rows.

Each training row is one environment step (`agent_rl.rollout.agent_loop`); its ``extra_fields`` say which
trajectory and turn it belongs to, whether its action was valid, and how the episode ended. verl's own
advantage step sees only ``rm_scores`` (the outcome, copied onto every step by verl). Here, before verl's
step runs:

1. each row's score becomes ``R - p·[invalid]`` at its last response token (what verl-agent's reward
   manager and ``apply_invalid_action_penalty`` produce), so critic-based estimators (``gae``) and verl's
   score metrics see the penalty;
2. after verl's step, GRPO's advantages are replaced by trajectory-level GRPO over episode returns
   (`agent_rl.advantage.trajectory_grpo`, which says how it relates to verl-agent's per-row statistics);
3. episode metrics are added: success rate overall and per task type, episode length, valid-action
   ratio, failed environments.

Single-turn rows (no ``trajectory_id``) go through verl unchanged.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import transfer_queue as tq
from tensordict import TensorDict
from verl.trainer.ppo.v1 import PPOTrainerSync
from verl.workers.utils.padding import response_to_nested

from agent_rl.advantage import trajectory_grpo
from agent_rl.methods import aem, empg
from agent_rl.methods.epo import EntropyHistory
from agent_rl.methods.turns import batch_token_mean, per_turn_token_mean

logger = logging.getLogger(__name__)


def _as_list(x: Any) -> list:
    return list(x.tolist() if hasattr(x, "tolist") else x)


@dataclass(frozen=True)
class StepRows:
    """Per-row ids and rewards of a batch of step rows, as tensors ``(rows,)``."""

    traj: torch.Tensor  # trajectory index
    turn: torch.Tensor  # step index inside the trajectory
    group: torch.Tensor  # rollout group (verl's uid)
    outcome: torch.Tensor  # the trajectory's outcome reward R
    penalty: torch.Tensor  # this step's invalid-action penalty

    @classmethod
    def from_fields(cls, extra: list[dict[str, Any]], uids: list[str], real: torch.Tensor) -> StepRows:
        trajs = {t: i for i, t in enumerate(dict.fromkeys(e.get("trajectory_id") for e in extra))}
        groups = {u: i for i, u in enumerate(dict.fromkeys(uids))}
        keep = real.float()
        return cls(
            traj=torch.tensor([trajs[e.get("trajectory_id")] for e in extra]),
            turn=torch.tensor([int(e.get("turn", 0)) for e in extra]),
            group=torch.tensor([groups[u] for u in uids]),
            outcome=torch.tensor([float(e.get("episode_return", 0.0)) for e in extra]) * keep,
            penalty=torch.tensor([float(e.get("step_penalty", 0.0)) for e in extra]) * keep,
        )


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


class AgentTrainer(PPOTrainerSync):
    """`PPOTrainerSync` whose advantage step knows trajectories, turns and invalid actions."""

    def _validate(self) -> dict[str, float]:
        metrics = super()._validate()
        sources = list(getattr(self.val_dataset, "dataframe", {})["data_source"]) if self.val_dataset else []
        tasks_per_source = {s: sources.count(s) for s in set(sources) if "/" in s}
        metrics.update(overall_validation_metrics(metrics, tasks_per_source))
        return metrics

    @property
    def method_name(self) -> str:
        return self.config.get("method", {}).get("name", "none")

    def _compute_advantage(self, batch, metrics: dict):
        method = self.method_name
        fields = ["uid", "extra_fields", "response_mask"] + (["entropy"] if method != "none" else [])
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        extra = [dict(e) if e is not None else {} for e in _as_list(data["extra_fields"])]
        if not any("trajectory_id" in e for e in extra):
            return super()._compute_advantage(batch, metrics)

        tags = batch.tags or [{} for _ in batch.keys]
        real = torch.tensor(
            [
                ("trajectory_id" in e) and not t.get("is_padding", False)
                for e, t in zip(extra, tags, strict=True)
            ]
        )
        rows = StepRows.from_fields(extra, _as_list(data["uid"]), real)
        response_mask = data["response_mask"]
        mask = response_mask.to_padded_tensor(0) * real.unsqueeze(1)

        # 1. each row's score: outcome minus its own invalid-action penalty, at its last response token
        lengths = response_mask.offsets().diff()
        scores = torch.zeros(mask.shape)
        scores[torch.arange(len(extra)), (lengths - 1).clamp(min=0)] = rows.outcome - rows.penalty
        self._put(batch, rm_scores=(scores * real.unsqueeze(1), response_mask))

        # 2. verl's advantage step (KL in reward, rollout correction, GAE, ...), then the base advantage
        batch = super()._compute_advantage(batch, metrics)
        if self.config.algorithm.adv_estimator == "grpo":
            adv = trajectory_grpo(
                rows.outcome,
                rows.penalty,
                rows.traj,
                rows.group,
                norm_by_std=bool(self.config.algorithm.get("norm_adv_by_std_in_grpo", True)),
            )
            advantages = adv.unsqueeze(1) * mask
        else:
            got = tq.kv_batch_get(
                keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages"]
            )
            advantages = got["advantages"].to_padded_tensor(0.0) * mask

        # 3. the entropy method's transform of the advantages
        if method != "none":
            entropy = data["entropy"].to_padded_tensor(0.0).float()
            if method == "epo":
                batch = self._prepare_epo(batch, entropy, mask, rows, metrics)
            base = advantages
            advantages = self._method_advantages(method, advantages, entropy, mask, rows, metrics)
            changed = (advantages - base).abs()[mask.bool()]
            if changed.numel():  # how far the method moved the base advantages of this very batch
                metrics[f"method/{method}/adv_change_abs_mean"] = float(changed.mean())
            metrics.update(entropy_by_turn(entropy, mask, rows.turn))
        batch = self._put(batch, advantages=(advantages, response_mask), returns=(advantages, response_mask))

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

    def _update_actor(self, batch, metrics: dict):
        if self.method_name != "epo" or not hasattr(self, "_epo_pending"):
            return super()._update_actor(batch, metrics)
        batch.extra_info.update(
            epo_has_reference=self._epo_has_reference,
            epo_step=self.global_steps - 1,
            epo_total_steps=int(self.total_training_steps),
        )
        batch = super()._update_actor(batch, metrics)
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
        with open(self._method_state_path(self.global_steps), "w") as f:
            json.dump(state, f)

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

    def _put(self, batch, **fields):
        """Write padded ``(rows, T)`` tensors back to TransferQueue as nested tensors shaped like the mask."""
        nested = {name: response_to_nested(t.float(), mask) for name, (t, mask) in fields.items()}
        return tq.kv_batch_put(
            keys=batch.keys,
            partition_id=batch.partition_id,
            fields=TensorDict(nested, batch_size=len(batch.keys)),
        )
