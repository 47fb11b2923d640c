"""agent_rl's trainer: verl's V1 sync trainer, with the advantage step taught about per-step rows.

Each training row is one environment step (`agent_rl.rollout.agent_loop`); its ``extra_fields`` say which
trajectory and turn it belongs to, whether its action was valid, and how the episode ended. verl's own
advantage step sees only ``rm_scores`` (the outcome, copied onto every step by verl). Here, before verl's step
runs:

1. each row's score becomes ``R - p·[invalid]`` at its last response token (what verl-agent's reward
   manager and ``apply_invalid_action_penalty`` produce), so critic-based estimators (``gae``) and verl's
   score metrics see the penalty;
2. after verl's step, the base algorithm's advantages: GRPO over the step rows with the group statistics
   of ``algo.group_stats`` (`agent_rl.algos.grpo.grpo_advantages`: verl-agent's by default), or GiGPO's
   episode plus step advantage (``algo=gigpo``, `agent_rl.algos.gigpo`), or verl's own (GAE);
3. episode metrics are added: success rate overall and per task type, episode length, valid-action
   ratio, failed environments.

The methods (``method=...``, `agent_rl.methods.api`) act through hooks this trainer calls in order:
outcome transforms and row filters before step 1, advantage transforms and per-row fields after step 2,
the actor loss installed on the workers at start, work before, around and after the actor update, and
their state in each checkpoint (``method_state.json`` / ``.pt``). The trainer names no method.

Single-turn rows (no ``trajectory_id``) go through verl unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import torch
import transfer_queue as tq
from tensordict import TensorDict
from torch.utils.data import Subset
from torchdata.stateful_dataloader import StatefulDataLoader
from verl.trainer.ppo.v1 import PPOTrainerSync
from verl.workers.utils.padding import response_to_nested

from agent_rl.algos.gigpo import gigpo_advantages
from agent_rl.algos.grpo import GRPO_BASED_ESTIMATORS, grpo_advantages
from agent_rl.algos.sampling import BoundedDapoBuffer
from agent_rl.methods.api import Method, StepBatch, build_methods, implements, stats
from agent_rl.rows import segments
from agent_rl.rows.segments import last_tokens
from agent_rl.rows.turns import per_turn_token_mean
from agent_rl.training import trajectories

logger = logging.getLogger(__name__)


def _as_list(x: Any) -> list:
    return list(x.tolist() if hasattr(x, "tolist") else x)


def real_rows(extra: list[dict[str, Any]], tags: list[dict] | None) -> list[bool]:
    """Rows that are environment steps (they carry a trajectory id) and not verl's padding."""
    tags = tags or [{} for _ in extra]
    return [
        ("trajectory_id" in e) and not t.get("is_padding", False) for e, t in zip(extra, tags, strict=True)
    ]


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
    """verl gives validation metrics per ``data_source`` (``<env>/<task type>`` for our rows); add the
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


def first_generation(extra: list[dict[str, Any]]) -> float | None:
    """The wall time of the earliest generation among the rows (the agent loop's ``generated_at``)."""
    times = [float(e["generated_at"]) for e in extra if "generated_at" in e]
    return min(times) if times else None


def startup_metrics(first_generated: float | None, now: float) -> dict[str, float]:
    """Seconds from this launch (``AGENT_RL_LAUNCH_TIME``, set by agent-rl) to its first generation and to
    ``now``, the end of its first step; empty when launched otherwise (no launch time)."""
    launched = os.environ.get("AGENT_RL_LAUNCH_TIME")
    if not launched:
        return {}
    out = {"startup/first_step_end_s": now - float(launched)}
    if first_generated is not None:
        out["startup/first_generation_s"] = first_generated - float(launched)
    return out


def validation_draw(num_tasks: int, per_eval: int, seed: int, step: int) -> list[int]:
    """The drawn validation protocol (``env.val_protocol``): ``per_eval`` tasks of the split drawn afresh for
    the evaluation at ``step``, the same for the same seed and step (so a resumed run validates as the
    original would have)."""
    rng = random.Random(f"val-{seed}-{step}")
    return sorted(rng.sample(range(num_tasks), min(per_eval, num_tasks)))


def row_scores(step: StepBatch, lengths: torch.Tensor) -> torch.Tensor:
    """``(rows, T)`` token-level scores: a step row's outcome minus its penalty at its last response token
    (``lengths``: the rows' response lengths); a trajectory row's turn penalties at each turn's last token
    and its outcome once, at its last model token (verl's GAE skips the environment's tokens)."""
    rows = step.rows
    if step.segments is None:
        scores = torch.zeros(step.mask.shape)
        scores[torch.arange(len(lengths)), (lengths - 1).clamp(min=0)] = rows.outcome - rows.penalty
        return scores
    seg = step.segments
    scores = torch.zeros((step.num_rows, step.mask.shape[1]))
    has_tokens = seg.mask.any(1)
    scores.index_put_(
        (seg.row[has_tokens], last_tokens(seg.mask)[has_tokens]), -rows.penalty[has_tokens], accumulate=True
    )
    outcome = torch.zeros(step.num_rows)
    outcome[seg.row] = rows.outcome  # the same on every segment of a row
    row_mask = step.to_rows(seg.mask)
    last = torch.where(row_mask.any(1), last_tokens(row_mask), (lengths - 1).clamp(min=0))
    scores[torch.arange(step.num_rows), last] += outcome
    return scores


def start_env_actors(config) -> tuple[list, Future | None]:
    """Start the environment actors of the agent-loop workers' pools now (`agent_rl.envs.pool.prestart`:
    ``env.pool_size`` per worker), while verl starts its own workers: a process and a simulator's imports
    each, which the first rollout would otherwise wait for. Returns their handles (the trainer keeps them
    so the pools can claim them) and a future that checks them: each counts its tasks against the
    driver's (``env.expected_tasks``), since a node without the driver's data would otherwise map task ids
    onto other tasks, and verl turns an agent loop's error into a dropped group, not a stop.
    The trainer waits for the future before the first rollout (`AgentTrainer._env_checked`)."""
    from agent_rl.envs.api import env_class, env_spec

    env_cfg = config.get("env") or {}
    size = env_cfg.get("pool_size")
    if not isinstance(size, int) or not env_class(env_spec(env_cfg)).multi_turn:
        return [], None
    import asyncio

    from agent_rl.envs.pool import TaskCountMismatch, prestart

    expected = dict(env_cfg.get("expected_tasks") or {}) or None
    workers = int(config.actor_rollout_ref.rollout.agent.num_workers)
    kwargs = dict(env_cfg.get("env_kwargs") or {})
    actors = prestart(env_spec(env_cfg), size * workers, kwargs, expected)

    async def check():
        refs = [asyncio.wrap_future(actor.pids.remote().future()) for actor in actors]
        for started in await asyncio.gather(*refs):
            if started.get("task_error"):
                raise TaskCountMismatch(started["task_error"])

    executor = ThreadPoolExecutor(1, thread_name_prefix="agent_rl-env-check")
    future = executor.submit(asyncio.run, check())
    executor.shutdown(wait=False)  # the thread ends with the check
    return actors, future


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
        if self.config.env.get("val_protocol", "fixed") != "fixed" and tasks:  # drawn afresh
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
    def methods(self) -> list[Method]:
        """The run's methods (`agent_rl.methods.api`), built once, in ``method.use`` order."""
        if not hasattr(self, "_methods"):
            self._methods = build_methods(self.config)
        return self._methods

    def _compute_advantage(self, batch, metrics: dict):
        methods = self.methods
        # the entropy feeds the methods and the per-turn entropy metrics (and W&B's plot of them); verl's
        # rollout-correction bypass mode reuses the rollout's log-probs and computes no entropy
        bypass = bool((self.config.algorithm.get("rollout_correction") or {}).get("bypass_mode", False))
        with_entropy = any(m.needs_entropy for m in methods) or (
            "wandb" in self.config.trainer.logger and not bypass
        )
        with_responses = any(m.needs_responses for m in methods)
        fields = ["uid", "extra_fields", "response_mask"] + (["entropy"] if with_entropy else [])
        fields += ["responses"] if with_responses else []
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        extra = [dict(e) if e is not None else {} for e in _as_list(data["extra_fields"])]
        if not any("trajectory_id" in e for e in extra):
            return super()._compute_advantage(batch, metrics)

        real = torch.tensor(real_rows(extra, batch.tags))
        if not hasattr(self, "_first_generated"):  # this launch's first step
            self._first_generated = first_generation(extra)
        response_mask = data["response_mask"]
        row_mask = response_mask.to_padded_tensor(0) * real.unsqueeze(1)
        entropy = data["entropy"].to_padded_tensor(0.0).float() if with_entropy else None
        responses = data["responses"].to_padded_tensor(0) if with_responses else None
        step = StepBatch.build(
            extra, _as_list(data["uid"]), real, row_mask, entropy, responses, self.global_steps, metrics
        )
        for m in methods:  # e.g. a bonus that is part of the outcome (the episode reward)
            step.rows = m.transform_outcome(step.rows, step)
        rows = step.rows
        no_signal = False
        filters = [m for m in methods if implements(type(m), "keep_rows")]
        if filters:  # filtered responses leave the loss (their mask is zeroed in TransferQueue)
            keep = torch.ones(len(extra), dtype=torch.bool)
            for m in filters:
                keep &= m.keep_rows(step)
            no_signal = not bool((keep & step.mask.any(1)).any())
            if not no_signal:
                step.mask = step.mask * keep.unsqueeze(1)
                self._put(batch, response_mask=(step.to_rows(step.mask).clamp(max=1), response_mask))
        mask = step.mask

        # 1. each step's score: outcome minus its own invalid-action penalty, at its last response token (a
        # trajectory row: each turn's penalty at the turn's last token, the outcome once, at the row's last)
        self._put(
            batch,
            rm_scores=(row_scores(step, response_mask.offsets().diff()) * real.unsqueeze(1), response_mask),
        )

        # 2. verl's advantage step (KL in reward, rollout correction, GAE, ...), then the base advantage
        batch = super()._compute_advantage(batch, metrics)
        advantages = self._base_advantages(batch, step)
        advantages = advantages * mask
        if no_signal:  # all filtered: no policy gradient from this batch (verl needs one valid token)
            advantages = torch.zeros_like(advantages)

        # 3. the methods' transforms of the advantages, in order (each sees the previous one's output)
        if step.entropy is not None:
            metrics.update(entropy_by_turn(step.entropy, mask, rows.turn))
        for m in methods:
            if not implements(type(m), "transform_advantages"):
                continue
            base = advantages
            advantages = m.transform_advantages(advantages, step)
            changed = (advantages - base).abs()[mask.bool()]
            if changed.numel():  # how far the method moved the advantages of this very batch
                metrics[f"method/{m.name}/adv_change_abs_mean"] = float(changed.mean())
        row_advantages = step.to_rows(advantages)
        # returns: verl's GAE returns are the critic's targets; where agent_rl computed the advantages (the
        # GRPO family, GiGPO) they are the advantages, as verl's own GRPO writes them
        ours = self._own_advantages()
        batch = self._put(
            batch,
            advantages=(row_advantages, response_mask),
            **({"returns": (row_advantages, response_mask)} if ours else {}),
        )
        row_fields, token_fields = {}, {}
        for m in methods:  # per-row (steps,) and per-token (steps, T) fields for the losses on the workers
            for name, value in m.after_advantages(advantages, step).items():
                if value.dim() == 2:
                    token_fields[name] = (step.to_rows(value), response_mask)
                else:
                    row_fields[name] = step.per_row(value)
        if token_fields:
            batch = self._put(batch, **token_fields)
        if row_fields:
            batch = tq.kv_batch_put(
                keys=batch.keys,
                partition_id=batch.partition_id,
                fields=TensorDict(row_fields, batch_size=len(batch.keys)),
            )

        metrics.update(episode_metrics([e for e, r in zip(extra, real.tolist(), strict=True) if r]))
        return batch

    def _own_advantages(self) -> bool:
        """agent_rl computes the base advantages itself (GiGPO, or a GRPO-based estimator); else verl's."""
        estimator = str(self.config.algorithm.adv_estimator)
        gigpo = self.config.get("algo", {}).get("gigpo")
        return gigpo is not None or estimator == "grpo" or estimator in GRPO_BASED_ESTIMATORS

    def _base_advantages(self, batch, step: StepBatch) -> torch.Tensor:
        """``(rows, T)`` advantages of the base algorithm: GRPO over the step rows with ``algo.group_stats``
        (any GRPO-based estimator name), GiGPO's ``A^E + w A^S`` with ``algo=gigpo``, else verl's own
        (GAE with the critic)."""
        estimator, rows = str(self.config.algorithm.adv_estimator), step.rows
        gigpo = self.config.get("algo", {}).get("gigpo")
        if gigpo is not None:
            return self._gigpo_advantages(step, gigpo).unsqueeze(1)
        if estimator == "grpo" or estimator in GRPO_BASED_ESTIMATORS:
            adv = grpo_advantages(
                rows,
                group_stats=self.group_stats,
                norm_by_std=bool(self.config.algorithm.get("norm_adv_by_std_in_grpo", True)),
            )
            return adv.unsqueeze(1)
        got = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages"])
        return step.on_steps(got["advantages"].to_padded_tensor(0.0))

    def _gigpo_advantages(self, step: StepBatch, gigpo) -> torch.Tensor:
        """GiGPO's joint advantage ``(rows,)`` on the anchors the agent loop recorded
        (`agent_rl.algos.gigpo`)."""
        # verl's padding rows carry row 0's fields: no reward, and an anchor group of their own
        padding = [not r for r in step.real.tolist()]
        rewards = [
            0.0 if p else float(e.get("env_reward", 0.0)) for e, p in zip(step.extra, padding, strict=True)
        ]
        anchors = [None if p else e.get("anchor_obs") for e, p in zip(step.extra, padding, strict=True)]
        joint, episode, step_adv = gigpo_advantages(
            step.rows,
            torch.tensor(rewards),
            anchors,
            gamma=float(gigpo.get("gamma", 0.95)),
            step_advantage_w=float(gigpo.get("step_advantage_w", 1.0)),
            mode=str(gigpo.get("mode", "mean_std_norm")),
            group_stats=self.group_stats,
            similarity_thresh=gigpo.get("similarity_thresh"),
        )
        rows = step.real & step.mask.any(1)
        step.metrics.update(stats("gigpo/episode_advantage", episode[rows]))
        step.metrics.update(stats("gigpo/step_advantage", step_adv[rows]))
        kept = torch.nonzero(rows).flatten().tolist()
        groups = {(int(step.rows.group[i]), anchors[i]) for i in kept}
        step.metrics["gigpo/anchor_groups_per_row"] = len(groups) / max(len(kept), 1)
        return joint

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._env_actors, self._env_check = start_env_actors(self.config)

    def on_init_end(self):
        super().on_init_end()
        losses = [(m, m.actor_loss(self._actor_config())) for m in self.methods]
        losses = [(m, loss) for m, loss in losses if loss is not None]
        if losses:  # at most one (agent_rl.methods.api.check_methods)
            self.actor_rollout_wg.set_loss_fn(losses[0][1])

    def _env_checked(self) -> None:
        """Wait for the environment check started at init (`start_env_actors`); raise what it found."""
        check, self._env_check = getattr(self, "_env_check", None), None
        if check is not None:
            check.result()

    def on_validate_begin(self):
        self._env_checked()
        super().on_validate_begin()

    def on_train_begin(self):
        self._env_checked()
        super().on_train_begin()

    def _actor_config(self):
        from verl.utils.config import omega_conf_to_dataclass

        return omega_conf_to_dataclass(self.config.actor_rollout_ref.actor)

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
        """verl's actor update with mini-batches of ``mini_batch_rows`` rows when set; the number of
        optimizer updates it ran goes to ``actor/updates_per_step``."""
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
        """The methods' work before, around (one method at most) and after verl's actor update."""
        methods = self.methods
        for m in methods:
            m.before_update(self, batch, metrics)
        owner = next((m for m in methods if implements(type(m), "update_actor")), None)
        update = partial(self._verl_update_actor, metrics=metrics)
        batch = owner.update_actor(self, batch, metrics, update) if owner else update(batch)
        for m in methods:
            m.after_update(self, batch, metrics)
        return batch

    # ---- method state in checkpoints ---------------------------------------------------------------------
    def _method_state_path(self, step: int) -> str:
        return os.path.join(self.config.trainer.default_local_dir, f"global_step_{step}", "method_state.json")

    def _method_states(self, state_format: str) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for m in self.methods:
            if m.state_format != state_format:
                continue
            own = m.state_dict()
            clash = own.keys() & state.keys()
            if clash:
                raise ValueError(f"method {m.name}'s state keys {sorted(clash)} are another method's too.")
            state.update(own)
        return state

    def _save_checkpoint(self):
        super()._save_checkpoint()
        state = {
            "method": str(self.config.method.get("name", "none")),
            "global_steps": self.global_steps,
            **self._method_states("json"),
        }
        path = self._method_state_path(self.global_steps)
        with open(path, "w") as f:
            json.dump(state, f)
        tensors = self._method_states("torch")
        if tensors:  # tensors and TransferQueue rows: a torch file beside the json
            torch.save(tensors, path.replace(".json", ".pt"))

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
                tensors = path.replace(".json", ".pt")
                tensor_state = torch.load(tensors, weights_only=False) if os.path.exists(tensors) else {}
                for m in self.methods:
                    m.load_state_dict(state if m.state_format == "json" else tensor_state)
                logger.warning("agent_rl: restored method state from %s", path)
        return result

    # ---- W&B: a per-turn entropy plot and a table of sample trajectories, each step -------------------
    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, **kwargs):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, **kwargs)
        if not getattr(self, "_startup_logged", False):  # the launch's start-up, once, with its first step
            self._startup_logged = True
            metrics.update(startup_metrics(getattr(self, "_first_generated", None), time.time()))
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
        computed none (for the run page's heatmap), and, in the run folder, the step's sample of trajectories
        with their tokens and token entropies (`agent_rl.training.trajectories`, for the run page's
        trajectory viewer): the ``logger.samples_per_step`` trajectories W&B's table shows."""
        bypass = bool((self.config.algorithm.get("rollout_correction") or {}).get("bypass_mode", False))
        fields = ["extra_fields", "prompts", "responses", "response_mask"] + ([] if bypass else ["entropy"])
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        extra = [dict(e) if e is not None else {} for e in _as_list(data["extra_fields"])]
        real = real_rows(extra, batch.tags)
        if not any(real):
            return
        returns = trajectories.episode_returns([e for e, r in zip(extra, real, strict=True) if r])
        metrics["env/return/mean"] = float(np.mean(list(returns.values())))
        if not bypass and not any(k.startswith("entropy_by_turn/") for k in metrics):  # the page's heatmap
            mask = data["response_mask"].to_padded_tensor(0) * torch.tensor(real).unsqueeze(1)
            entropy = data["entropy"].to_padded_tensor(0.0).float()
            turns = [int(e.get("num_steps", 0)) if r else 0 for e, r in zip(extra, real, strict=True)]
            if any(e.get("rows") == "trajectory" for e in extra):  # per turn: the rows' turn segments
                seg = segments.cut(segments.token_turns(extra, mask.shape[1]), mask, turns)
                entropy, mask, turn = entropy[seg.row], seg.mask, seg.turn
            else:
                turn = torch.tensor([int(e.get("turn", 0)) for e in extra])
            metrics.update(entropy_by_turn(entropy, mask, turn))
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
            masks=data["response_mask"],
        )
        trajectories.save_step(run_dir, sample)

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
