"""AEM's wiring (the maths: `agent_rl.methods.aem`; the page: docs/methods/aem.md).

One hook: ``transform_advantages`` multiplies each step's advantage by its response-entropy weight
alpha, normalised within the rollout group.
"""

from __future__ import annotations

from agent_rl.methods import aem
from agent_rl.methods.api import Method, StepBatch, register_method, stats


@register_method("aem")
class Aem(Method):
    needs_entropy = True
    exclusive = ("transform_advantages",)  # see Empg.exclusive

    @classmethod
    def check(cls, config):
        return group_check(cls.name, config)

    def transform_advantages(self, advantages, batch: StepBatch):
        cfg, rows = self.cfg, batch.rows
        alpha = aem.aem_weights(batch.entropy, batch.mask, rows.group, lam=cfg.lam, min_range=cfg.min_range)
        batch.metrics.update(stats("method/aem/alpha", alpha[batch.mask.any(1)]))
        return aem.aem_advantages(
            advantages, batch.entropy, batch.mask, rows.group, lam=cfg.lam, min_range=cfg.min_range
        )


def group_check(name: str, config) -> str | None:
    """A method whose statistics are taken within rollout groups needs groups of two or more."""
    n = int(config.actor_rollout_ref.rollout.n)
    if n < 2:
        return (
            f"method={name} takes its statistics within rollout groups, which needs "
            f"actor_rollout_ref.rollout.n >= 2 (got {n})."
        )
    return None
