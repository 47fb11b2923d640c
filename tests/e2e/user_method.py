"""A method from outside agent_rl, as a researcher would keep it in their own package: the e2e run
``method._target_=tests.e2e.user_method.OptimismBonus +method.bonus=0.25`` trains with it, and nothing in
agent_rl names it (docs/methods/new_method.md walks through the same class).

It adds a constant ``method.bonus`` to every step's advantage (an optimism bonus: an advantage
transform, the hook EMPG and AEM use), reports how many rows it saw, and keeps the count of steps it has
transformed in the checkpoints (``method_state.json``), so a resumed run continues the count.
"""

from __future__ import annotations

from agent_rl.methods.api import Method, StepBatch


class OptimismBonus(Method):
    """``A'_{i,t} = A_{i,t} + b`` on every response token of a real step row."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.bonus = float(self.cfg.get("bonus", 0.1))
        self.steps_seen = 0

    @classmethod
    def check(cls, config):
        bonus = config.method.get("bonus", 0.1)
        if not isinstance(bonus, int | float) or bonus < 0:
            return f"method.bonus must be a number >= 0 (got {bonus!r})."
        return None

    def transform_advantages(self, advantages, batch: StepBatch):
        self.steps_seen += 1
        batch.metrics["method/optimism/rows"] = float(batch.mask.any(1).sum())
        batch.metrics["method/optimism/steps_seen"] = float(self.steps_seen)
        return advantages + self.bonus * batch.mask

    def state_dict(self):
        return {"optimism_steps_seen": self.steps_seen}

    def load_state_dict(self, state):
        self.steps_seen = int(state.get("optimism_steps_seen", 0))
