"""EMPG's wiring (the maths: `agent_rl.methods.empg`; the page: docs/methods/empg.md).

One hook: ``transform_advantages`` rescales the base algorithm's advantages by each step's
batch-normalised entropy (g) and adds the future-clarity bonus (f), on the old policy's entropy.
"""

from __future__ import annotations

from agent_rl.methods import empg
from agent_rl.methods.api import Method, StepBatch, register_method, stats


@register_method("empg")
class Empg(Method):
    needs_entropy = True
    # EMPG and AEM each turn the base advantage into an entropy-weighted one; a product of the two has no
    # defined meaning, so the two refuse each other (a plain adjustment of the advantages chains with either)
    exclusive = ("transform_advantages",)

    def transform_advantages(self, advantages, batch: StepBatch):
        cfg, rows = self.cfg, batch.rows
        terms = empg.empg_terms(
            batch.entropy, batch.mask, rows.traj, rows.turn, k=cfg.k, k_next=cfg.k_next, eps=1e-8
        )
        batch.metrics.update(stats("method/empg/g", terms.g[terms.valid]))
        batch.metrics.update(stats("method/empg/f", terms.f[terms.valid]))
        return empg.empg_advantages(
            advantages,
            batch.entropy,
            batch.mask,
            rows.traj,
            rows.turn,
            k=cfg.k,
            k_next=cfg.k_next,
            zeta=cfg.zeta,
        )
