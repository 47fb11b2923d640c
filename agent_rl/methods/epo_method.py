"""EPO's wiring (the maths: `agent_rl.methods.epo`; the loss: `agent_rl.methods.losses.epo_actor_loss`; the
page: docs/methods/epo.md).

- ``actor_loss``: verl's PPO loss plus EPO's regulariser on the live entropy of the update's forward pass;
- ``after_advantages``: each row's trajectory and turn ids and its history reference, for the loss; this
  step's entropy waits until the update is done (the reference is the mean of *past* steps);
- ``before_update``: whether a reference exists, the step and the total steps, in ``extra_info``;
- ``after_update``: this step's entropy joins the history; ``state_dict``: the history.
"""

from __future__ import annotations

import torch

from agent_rl.methods.api import Method, StepBatch, register_method
from agent_rl.methods.epo import EntropyHistory
from agent_rl.rows.turns import batch_token_mean, per_turn_token_mean

LOSS_KEYS = ("entropy_coeff", "kappa_l", "kappa_r", "gamma", "alpha", "variant")


@register_method("epo")
class Epo(Method):
    needs_entropy = True

    def __init__(self, config) -> None:
        super().__init__(config)
        self.history = EntropyHistory(max_turns=int(config.env.get("max_steps", 50)))
        self._pending: tuple[float, torch.Tensor] | None = None
        self._has_reference = False

    @classmethod
    def check(cls, config):
        if float(config.actor_rollout_ref.actor.entropy_coeff) != 0.0:
            return (
                "method=epo replaces verl's entropy bonus with its own multi-turn term (weight "
                "method.entropy_coeff), so actor_rollout_ref.actor.entropy_coeff must be 0."
            )
        return None

    def actor_loss(self, actor_config):
        from functools import partial

        from agent_rl.methods.losses import epo_actor_loss

        return partial(epo_actor_loss, config=actor_config, epo={key: self.cfg[key] for key in LOSS_KEYS})

    def after_advantages(self, advantages, batch: StepBatch):
        rows = batch.rows
        if self.cfg.variant == "released":
            reference = self.history.reference_for_rows(rows.turn)
        else:
            value = self.history.reference()
            reference = None if value is None else torch.full((len(rows.turn),), value)
        self._has_reference = reference is not None
        self._pending = (
            float(batch_token_mean(batch.entropy, batch.mask)),
            per_turn_token_mean(batch.entropy, batch.mask, rows.turn),
        )
        if reference is not None:
            batch.metrics["method/epo/reference_mean"] = float(reference.mean())
        batch.metrics["method/epo/history_steps"] = float(len(self.history))
        fields = {
            "traj_index": rows.traj.float(),
            "turn_index": rows.turn.float(),
            "epo_row_reference": reference.float() if reference is not None else torch.zeros(len(rows.turn)),
        }
        if (
            batch.segments is not None
        ):  # trajectory rows: each token's turn and reference, for the loss's segments
            mask = batch.mask.float()
            fields["epo_token_turn"] = rows.turn.float().unsqueeze(1) * mask
            fields["epo_token_reference"] = fields["epo_row_reference"].unsqueeze(1) * mask
        return fields

    def before_update(self, trainer, batch, metrics):
        if self._pending is None:
            return
        batch.extra_info.update(
            epo_has_reference=self._has_reference,
            epo_step=trainer.global_steps - 1,
            epo_total_steps=int(trainer.total_training_steps),
        )

    def after_update(self, trainer, batch, metrics):
        if self._pending is None:
            return
        step_mean, per_turn = self._pending
        self.history.append(step_mean, per_turn)
        self._pending = None

    def state_dict(self):
        return {"epo_history": self.history.state_dict()}

    def load_state_dict(self, state):
        if "epo_history" in state:
            self.history.load_state_dict(state["epo_history"])
