"""The one place where agent_rl touches verl's registries.

verl imports this module in every process that imports verl (the ``verl.plugins`` entry point in
pyproject.toml): the driver, the TaskRunner, the actor/rollout workers, the agent-loop workers and
vLLM's worker processes. Registrations made here are therefore visible everywhere.

verl 0.9.1 swallows any exception raised while loading a plugin (logged at DEBUG, verl/__init__.py),
which would leave a run silently without our platform or estimators. ``_load`` therefore reports a
failure on stderr and raises ``PluginLoadError``, a ``BaseException`` that verl's ``except Exception`` does
not catch.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback


class PluginLoadError(BaseException):
    """agent_rl's verl plugin failed to load; the process must not continue without it."""


def _load() -> None:
    # The CPU platform registers and activates itself on import. The switch is read here, not from the module:
    # `import agent_rl.training.platform.cpu` imports verl, which imports this plugin while that module is
    # still half-initialised.
    if os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu":
        importlib.import_module("agent_rl.training.platform.cpu")
    _value_model_attention()


def _value_model_attention() -> None:
    """PPO's critic loads with the attention the config chose, not always flash_attention_2.

    verl 0.9.1 builds the critic with ``load_valuehead_model`` (verl/utils/model.py), which passes
    ``attn_implementation="flash_attention_2"`` to ``from_pretrained`` whatever the model config says;
    without the flash-attn package (agent_rl's GPU clusters use SDPA, the CPU cluster has no CUDA) that
    raises ImportError. The actor's path reads ``override_config.attn_implementation`` into the HF config
    (verl/workers/config/model.py), so the critic's config carries the choice as ``_attn_implementation``:
    this wrapper loads the token-classification value model with it and leaves every other case to verl.
    The engine imports the function at call time (transformer_impl.py ``_build_module``), so replacing the
    module attribute is enough."""
    from verl.utils import model as verl_model

    original = verl_model.load_valuehead_model
    if getattr(original, "_agent_rl", False):
        return

    def load_valuehead_model(local_path, torch_dtype, model_config, trust_remote_code):
        attn = getattr(model_config, "_attn_implementation", None)
        if attn in (None, "flash_attention_2"):
            return original(local_path, torch_dtype, model_config, trust_remote_code)
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification.from_pretrained(
            pretrained_model_name_or_path=local_path,
            torch_dtype=torch_dtype,
            config=model_config,
            attn_implementation=attn,
            trust_remote_code=trust_remote_code,
        )

    load_valuehead_model._agent_rl = True
    verl_model.load_valuehead_model = load_valuehead_model


try:
    _load()
except Exception as exc:  # noqa: BLE001 - re-raised as a BaseException, see module docstring
    traceback.print_exc(file=sys.stderr)
    raise PluginLoadError(f"agent_rl verl plugin failed to load: {exc!r}") from exc


def register_estimators() -> None:
    """Register ``empg`` and ``aem`` as verl advantage-estimator names.

    verl's estimator call passes rewards, masks and group ids, never the entropy nor the turn ids that
    EMPG and AEM need (verl 0.9.1 ``compute_advantage``), so a registered function can only compute the
    base: GRPO's outcome advantage. `agent_rl.training.trainer.AgentTrainer` then replaces it with
    trajectory-level
    GRPO and applies the method's transform. The names exist so that ``algorithm.adv_estimator=empg`` with
    ``method=empg`` is accepted and a conflicting pair (``adv_estimator=empg method=aem``) is refused by
    `agent_rl.cli.train.check_method` rather than failing inside verl. (A method itself needs no estimator
    name: `agent_rl.methods.api`.)
    """
    from verl.trainer.ppo import core_algos

    def grpo_base(token_level_rewards, response_mask, config=None, index=None, **kwargs):
        norm = True if config is None else bool(config.get("norm_adv_by_std_in_grpo", True))
        return core_algos.compute_grpo_outcome_advantage(
            token_level_rewards=token_level_rewards,
            response_mask=response_mask,
            index=index,
            norm_adv_by_std_in_grpo=norm,
        )

    from agent_rl.algos.grpo import GRPO_BASED_ESTIMATORS

    for name in GRPO_BASED_ESTIMATORS:
        if name not in core_algos.ADV_ESTIMATOR_REGISTRY:
            core_algos.register_adv_est(name)(grpo_base)


def install_trainer() -> None:
    """Make verl's "sync" trainer mode build `agent_rl.training.trainer.AgentTrainer` in this process.

    Called by `agent_rl.training.runner.TaskRunner` inside the TaskRunner actor, where verl looks the trainer
    up (``get_trainer_cls(trainer.v1.trainer_mode)``). The name stays "sync" on purpose: verl 0.9.1 compares
    ``trainer_mode == "sync"`` in several places (replay buffer, dataloader, checkpoints), so a new name would
    silently switch those to async behaviour. ``register_trainer`` refuses to re-register a name, hence the
    direct registry entry.
    """
    from verl.trainer.ppo.v1 import trainer_base

    from agent_rl.training.trainer import AgentTrainer

    trainer_base.TRAINER_REGISTRY["sync"] = AgentTrainer
    register_estimators()
