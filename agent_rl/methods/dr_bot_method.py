"""Dr.BoT's filters (SPEAR's baseline; the maths: `agent_rl.methods.spear`; the page:
docs/methods/dr_bot.md), added to any run by ``method.dr_bot_filters=true``.

One hook: ``keep_rows`` drops from the loss the rows that are overlong, incomplete (no valid
think/action format), hold a 20-gram repeated 10 times, or sit outside the 75% of groups with the highest
std of trajectory returns. When every row is filtered, the trainer zeroes the batch's advantages.
"""

from __future__ import annotations

import torch

from agent_rl.methods import spear
from agent_rl.methods.api import Method, StepBatch, register_method
from agent_rl.rows.step_rows import trajectory_returns


@register_method("dr_bot")
class DrBot(Method):
    needs_responses = True

    def keep_rows(self, batch: StepBatch) -> torch.Tensor:
        rows, mask, metrics = batch.rows, batch.mask, batch.metrics
        valid_rows = mask.any(1)
        response_length = int(self.config.actor_rollout_ref.rollout.response_length)
        overlong = spear.overlong_mask(mask, response_length)
        incomplete = torch.tensor([not e.get("action_valid", True) for e in batch.extra])
        ids = batch.responses
        repeated = spear.repeated_ngram_mask(ids, mask[:, : ids.shape[1]], n=20, threshold=10)
        returns, traj_index, _ = trajectory_returns(rows.outcome, rows.penalty, rows.traj)
        in_group = torch.ones_like(valid_rows)
        in_group[valid_rows] = spear.group_std_filter(
            returns[traj_index][valid_rows],
            rows.group[valid_rows],
            rows.traj[valid_rows],
            keep_ratio=float(self.cfg.get("group_keep_ratio", 0.75)),
        )
        keep = ~(overlong | incomplete | repeated) & in_group
        if bool(valid_rows.any()):
            for name, flag in (("overlong", overlong), ("incomplete", incomplete), ("repetitive", repeated)):
                metrics[f"dr_bot/{name}_share"] = float(flag[valid_rows].float().mean())
            metrics["dr_bot/group_filtered_share"] = float((~in_group)[valid_rows].float().mean())
            metrics["dr_bot/kept_share"] = float(keep[valid_rows].float().mean())
        metrics["dr_bot/all_filtered"] = float(not bool((keep & valid_rows).any()))
        return keep
