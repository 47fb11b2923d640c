"""DAPO's dynamic sampling with a bound, on verl's V1 sync replay buffer.

verl 0.9.1's V1 ``ReplayBuffer`` implements DAPO's dynamic sampling (``algorithm.filter_groups``): a
finished group whose trajectories share one outcome is evicted and ``2k`` fresh prompts are dispatched for
``k`` evicted groups, until a full batch of mixed-outcome groups exists. It ignores
``filter_groups.max_num_gen_batches`` (it logs so), so a policy that solves every task, or none, keeps it
generating forever; a randomly initialised model on a long-horizon task is exactly that case.

:class:`BoundedDapoBuffer` restores the bound. Within one training step, once refills have dispatched
``max_num_gen_batches × train_batch_size`` prompts, it stops filtering: groups finishing afterwards are
kept whatever their outcomes (under GRPO a group with one outcome has zero advantage, so it adds no
gradient, only tokens to the token-mean), and the step goes on. ``<prefix>/filter_groups/refill_prompts``
and ``.../bound_reached`` report it.

The filter sits on the GRPO statistics the run uses (``algo.group_stats``, `agent_rl.algos.grpo`): for
verl's canonical metric (``filter_groups.metric: reward``) a group is dropped when every one of its GRPO
advantages would be 0 under those statistics (`agent_rl.algos.grpo.groups_without_signal`), e.g. under
``step_rows`` a group whose trajectories all lost but one wrote an invalid action keeps its signal (that
row's score is lower). verl's own rule compares only the outcomes. Any other metric name is verl's rule on
``reward_extra_info[metric]``, unchanged.

Deviation: DAPO's reference implementation (verl's former ``recipe/dapo``) raises an error when the bound
is reached; a run that stops after hours because one batch was all failures is not what a researcher
wants, so we train on and log it instead.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import torch
import transfer_queue as tq
from verl.trainer.ppo.v1.replay_buffer import FILTER_GROUPS_REWARD_METRIC, ReplayBuffer

from agent_rl.algos.grpo import groups_without_signal
from agent_rl.rows.step_rows import StepRows


class BoundedDapoBuffer(ReplayBuffer):
    """verl's sync ``ReplayBuffer`` whose DAPO group filter follows our GRPO statistics and stops after a
    number of refilled batches."""

    max_refill_prompts: float = float("inf")
    group_stats: str = "step_rows"

    @classmethod
    def bound(cls, buffer: ReplayBuffer, max_num_gen_batches: int, group_stats: str) -> ReplayBuffer:
        """Give an already built buffer (verl builds it with private arguments) this class's behaviour;
        ``max_num_gen_batches <= 0`` filters without a bound."""
        if type(buffer) is not ReplayBuffer or buffer.filter_groups_metric is None:
            return buffer
        buffer.__class__ = cls
        buffer.group_stats = group_stats
        if max_num_gen_batches > 0:
            buffer.max_refill_prompts = int(max_num_gen_batches) * int(buffer.train_batch_size)
        buffer._refilled = 0
        unbounded_refill = buffer.refill_fn

        def counted_refill(num_prompts: int):
            buffer._refilled += num_prompts
            return unbounded_refill(num_prompts)

        buffer.refill_fn = counted_refill
        return buffer

    def _bound_reached(self) -> bool:
        return self._refilled >= self.max_refill_prompts

    def _dapo_filtered_keys(self, partition_id: str) -> tuple[set[str], Counter]:
        if partition_id != "val" and self._bound_reached():
            return set(), Counter()
        if partition_id == "val" or self.filter_groups_metric != FILTER_GROUPS_REWARD_METRIC:
            return super()._dapo_filtered_keys(partition_id)
        # verl's bookkeeping (a cache of classified finished groups), with our classification
        finished = self.finished_keys[partition_id]
        cache = self._dapo_classification_cache[partition_id]
        for uid in cache.keys() - finished:
            del cache[uid]
        new = finished - cache.keys()
        keys = [key for key in self.partitions[partition_id] if key.split("_")[0] in new]
        rows: dict[str, list[dict]] = defaultdict(list)
        if keys:
            data = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["extra_fields"])
            for key, fields in zip(keys, data["extra_fields"], strict=True):
                rows[key.split("_")[0]].append(dict(getattr(fields, "data", fields) or {}))
        for uid in new:
            cache[uid] = self._shared_outcome(rows.get(uid, []))
        dropped = {uid: outcome for uid, outcome in cache.items() if outcome is not None}
        return set(dropped), Counter(dropped.values())

    def _shared_outcome(self, rows: list[dict]) -> float | None:
        """The group's outcome if the group carries no GRPO signal under ``group_stats``, else None."""
        if len({r.get("trajectory_id") for r in rows}) < 2:
            return None  # verl keeps a group with a single trajectory
        steps = StepRows.from_fields(rows, ["group"] * len(rows), torch.ones(len(rows), dtype=torch.bool))
        dropped = groups_without_signal(steps, self.group_stats)
        return float(steps.outcome[0]) if dropped.numel() else None

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        self._refilled = 0
        batch, metrics = super().sample(global_steps, partition_id, batch_size)
        if partition_id != "val":
            prefix = self._metrics_prefix(partition_id)
            metrics[f"{prefix}/filter_groups/refill_prompts"] = self._refilled
            metrics[f"{prefix}/filter_groups/bound_reached"] = float(self._bound_reached())
        return batch, metrics
