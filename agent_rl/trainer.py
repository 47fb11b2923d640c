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

import logging
from collections import defaultdict
from typing import Any

import numpy as np
import torch
import transfer_queue as tq
from tensordict import TensorDict
from verl.trainer.ppo.v1 import PPOTrainerSync
from verl.workers.utils.padding import response_to_nested

from agent_rl.advantage import trajectory_grpo

logger = logging.getLogger(__name__)


def _as_list(x: Any) -> list:
    return list(x.tolist() if hasattr(x, "tolist") else x)


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


def overall_validation_metrics(metrics: dict[str, float], tasks_per_source: dict[str, int]) -> dict[str, float]:
    """verl reports validation per ``data_source`` (``<env>/<task type>`` for our rows); add the
    environment-wide value of each ``val-core`` metric, weighted by the number of tasks of each type."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) < 4 or parts[0] != "val-core" or "/".join(parts[1:3]) not in tasks_per_source:
            continue
        weight = tasks_per_source["/".join(parts[1:3])]
        total = totals["/".join(["val-core", parts[1], "all", *parts[3:]])]
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

    def _compute_advantage(self, batch, metrics: dict):
        data = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=["uid", "extra_fields", "response_mask"]
        )
        extra = [dict(e) if e is not None else {} for e in _as_list(data["extra_fields"])]
        if not any("trajectory_id" in e for e in extra):
            return super()._compute_advantage(batch, metrics)

        tags = batch.tags or [{} for _ in batch.keys]
        real = [("trajectory_id" in e) and not t.get("is_padding", False) for e, t in zip(extra, tags, strict=True)]
        response_mask = data["response_mask"]
        lengths = response_mask.offsets().diff()
        rows, width = len(extra), int(lengths.max()) if len(lengths) else 0

        outcome = torch.tensor([e.get("episode_return", 0.0) if r else 0.0 for e, r in zip(extra, real, strict=True)])
        penalty = torch.tensor([e.get("step_penalty", 0.0) if r else 0.0 for e, r in zip(extra, real, strict=True)])

        scores = torch.zeros(rows, max(width, 1))
        last = (lengths - 1).clamp(min=0)
        scores[torch.arange(rows), last] = outcome - penalty
        scores = scores[:, :width] * torch.tensor(real).unsqueeze(1)
        tq.kv_batch_put(
            keys=batch.keys, partition_id=batch.partition_id,
            fields=TensorDict({"rm_scores": response_to_nested(scores, response_mask)}, batch_size=rows),
        )

        batch = super()._compute_advantage(batch, metrics)

        if self.config.algorithm.adv_estimator == "grpo":
            traj_ids = {tid: i for i, tid in enumerate(dict.fromkeys(e.get("trajectory_id") for e in extra))}
            uids = {u: i for i, u in enumerate(dict.fromkeys(_as_list(data["uid"])))}
            adv = trajectory_grpo(
                outcome, penalty,
                traj_id=torch.tensor([traj_ids[e.get("trajectory_id")] for e in extra]),
                group_id=torch.tensor([uids[u] for u in _as_list(data["uid"])]),
                norm_by_std=bool(self.config.algorithm.get("norm_adv_by_std_in_grpo", True)),
            )
            adv = adv * torch.tensor(real, dtype=adv.dtype)
            padded = adv.unsqueeze(1).expand(rows, max(width, 1))[:, :width].contiguous()
            nested = response_to_nested(padded, response_mask)
            batch = tq.kv_batch_put(
                keys=batch.keys, partition_id=batch.partition_id,
                fields=TensorDict({"advantages": nested, "returns": nested.clone()}, batch_size=rows),
            )

        metrics.update(episode_metrics([e for e, r in zip(extra, real, strict=True) if r]))
        return batch
