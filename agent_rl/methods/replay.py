"""SPEAR's self-imitation replay on verl's V1 trainer: the driver keeps the rows, TransferQueue carries them.

:class:`agent_rl.methods.spear.SpearReplayBuffer` decides *which* rows are replayed and with what
advantage (the pure part). This module keeps the rows themselves: after each update, the positive-advantage
rows of the batch are read back from TransferQueue whole (every field the actor's update reads: token ids,
masks, positions, the collection-time ``old_log_probs``, ...) and held on the driver; when the buffer is
full, the sampled rows are written back under fresh keys with their recalibrated advantages, trained in a
separate update (``spear_replay`` in the batch's ``extra_info`` selects the replay loss of
:func:`agent_rl.methods.losses.spear_actor_loss`), and cleared.

Each stored row gets an integer slot, the buffer's only payload; ``state_dict`` holds the buffer and the
rows, so a resumed run replays exactly what the stopped one would have.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import transfer_queue as tq
from tensordict import TensorDict
from transfer_queue.metadata import KVBatchMeta
from verl.utils import tensordict_utils as tu

from agent_rl.methods.spear import SpearReplayBuffer


class SpearReplay:
    """Driver-side SPEAR replay: :class:`SpearReplayBuffer` plus the stored TransferQueue rows."""

    def __init__(self, buffer: SpearReplayBuffer, seed: int = 0) -> None:
        self.buffer = buffer
        self.generator = torch.Generator().manual_seed(seed)
        self._chunks: dict[int, tuple[TensorDict, list[dict], int]] = {}  # step -> (rows, tags, first slot)
        self._next_slot = 0

    def num_rows(self) -> int:
        return self.buffer.num_rows()

    def store(
        self,
        batch: KVBatchMeta,
        step: int,
        rewards: torch.Tensor,
        advantages: torch.Tensor,
        group: torch.Tensor,
        traj: torch.Tensor,
        real: torch.Tensor,
    ) -> int:
        """Evict old rows, then add this batch (released order: ``remove_old`` before ``update_batch``).

        ``rewards, advantages, group, traj (rows,)`` describe every row of ``batch``; padding rows
        (``real`` False) take part in nothing.
        """
        self.buffer.remove_old()
        idx = torch.nonzero(real).squeeze(-1)
        positive = idx[advantages[idx] > 0]
        slots = torch.full((len(batch.keys),), -1, dtype=torch.long)
        slots[positive] = torch.arange(len(positive)) + self._next_slot
        stored = self.buffer.add(
            step, rewards[idx], advantages[idx], group[idx], traj[idx], payload={"slot": slots[idx]}
        )
        if stored:
            keys = [batch.keys[i] for i in positive.tolist()]
            rows = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id)
            tags = [dict(batch.tags[i]) if batch.tags else {} for i in positive.tolist()]
            self._chunks[step] = (rows, tags, self._next_slot)
            self._next_slot += len(keys)
        kept = set(self.buffer.steps())
        self._chunks = {s: c for s, c in self._chunks.items() if s in kept}
        return stored

    def sample(self) -> tuple[list[TensorDict], list[list[dict]], torch.Tensor] | None:
        """Rows to replay (per stored chunk), their tags, and their recalibrated advantages ``(rows,)``,
        or None when the buffer is not full or nothing survives; a full buffer is emptied."""
        if not self.buffer.is_full():
            return None
        out = self.buffer.sample(self.generator)
        chunks, self._chunks = self._chunks, {}
        if out is None:
            return None
        slots = out["slot"]
        rows, tags, advantages = [], [], []
        for chunk, chunk_tags, first in chunks.values():
            local = slots - first
            hit = torch.nonzero((local >= 0) & (local < len(chunk_tags))).squeeze(-1)
            if hit.numel() == 0:
                continue
            rows.append(tu.index_select_tensor_dict(chunk, local[hit]))
            tags.append([chunk_tags[i] for i in local[hit].tolist()])
            advantages.append(out["advantages"][hit])
        return rows, tags, torch.cat(advantages)

    def put_for_update(
        self, batch: KVBatchMeta, step: int, rows: list[TensorDict], tags: list[list[dict]], adv: torch.Tensor
    ) -> KVBatchMeta:
        """Write the sampled rows under fresh keys of ``batch``'s partition, with ``adv`` broadcast over each
        row's response tokens, and return the batch meta of the replay update."""
        keys, all_tags, offset = [], [], 0
        for chunk, chunk_tags in zip(rows, tags, strict=True):
            n = len(chunk_tags)
            chunk_keys = [f"spear{step}-{offset + i}" for i in range(n)]
            lengths = chunk["response_mask"].offsets().diff()
            chunk = chunk.clone()
            chunk["advantages"] = torch.nested.as_nested_tensor(
                [
                    torch.full((int(n_tok),), float(a))
                    for n_tok, a in zip(lengths, adv[offset : offset + n], strict=True)
                ],
                layout=torch.jagged,
            )
            chunk_tags = [{**t, "spear_replay": True} for t in chunk_tags]
            tq.kv_batch_put(keys=chunk_keys, partition_id=batch.partition_id, fields=chunk, tags=chunk_tags)
            keys += chunk_keys
            all_tags += chunk_tags
            offset += n
        return KVBatchMeta(
            partition_id=batch.partition_id,
            keys=keys,
            tags=all_tags,
            fields=None,  # fetch every field (a put's ``fields`` is a snapshot)
            extra_info=copy.deepcopy(batch.extra_info),
        )

    # -- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "buffer": self.buffer.state_dict(),
            "chunks": {s: (rows, tags, first) for s, (rows, tags, first) in self._chunks.items()},
            "next_slot": self._next_slot,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self._chunks = {int(s): tuple(c) for s, c in state["chunks"].items()}
        self._next_slot = int(state["next_slot"])
        self.generator.set_state(state["generator"])
