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

Deviation: DAPO's reference implementation (verl's former ``recipe/dapo``) raises an error when the bound
is reached; a run that stops after hours because one batch was all failures is not what a researcher
wants, so we train on and log it instead.
"""

from __future__ import annotations

from collections import Counter

from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer


class BoundedDapoBuffer(ReplayBuffer):
    """verl's sync ``ReplayBuffer`` that stops DAPO group filtering after a number of refilled batches."""

    max_refill_prompts: int = 0

    @classmethod
    def bound(cls, buffer: ReplayBuffer, max_num_gen_batches: int) -> ReplayBuffer:
        """Give an already built buffer (verl builds it with private arguments) this class's behaviour."""
        if (
            type(buffer) is not ReplayBuffer
            or buffer.filter_groups_metric is None
            or max_num_gen_batches <= 0
        ):
            return buffer
        buffer.__class__ = cls
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
        return super()._dapo_filtered_keys(partition_id)

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        self._refilled = 0
        batch, metrics = super().sample(global_steps, partition_id, batch_size)
        if partition_id != "val":
            prefix = self._metrics_prefix(partition_id)
            metrics[f"{prefix}/filter_groups/refill_prompts"] = self._refilled
            metrics[f"{prefix}/filter_groups/bound_reached"] = float(self._bound_reached())
        return batch, metrics
