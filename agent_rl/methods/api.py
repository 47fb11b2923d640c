r"""The method API: one object per method, registered by name, whose hooks the trainer calls.

A method subclasses :class:`Method` and overrides the hooks it needs; the trainer
(`agent_rl.training.trainer.AgentTrainer`) calls every hook of every method of the run, in the order the run
lists them, and names no method itself. The hooks, in the order of one training step:

==========================  ==============================================================================
hook                        called / composes as
==========================  ==============================================================================
``check(config)``           classmethod, in the driver before Ray starts: a one-sentence refusal or None
``actor_loss(actor_cfg)``   once at start: a loss function that replaces verl's ``ppo_loss`` on the actor
                            workers (``set_loss_fn``); **one method per run**
``transform_outcome``       advantage step: the outcome :math:`R_i` of each row (a bonus); chained
``keep_rows``               advantage step: rows kept in the loss (a filter); AND-ed
``transform_advantages``    advantage step: ``(rows, T)`` advantages after the base algorithm; chained, like
                            ``optax.chain`` (each sees the previous one's output)
``after_advantages``        advantage step: per-row fields for the actor workers (written to TransferQueue)
                            and bookkeeping for the update
``before_update``           before the actor update: e.g. values for the loss in the batch's ``extra_info``
``update_actor``            the actor update itself (wraps the trainer's); **one method per run**
``after_update``            after the actor update (a history, a replay buffer)
``state_dict``              checkpoints: ``method_state.json`` (``state_format="json"``) or ``.pt`` (torch)
==========================  ==============================================================================

Methods compose (``method=[empg,epo]``) when no two of them claim one hook that only one can own:
``actor_loss`` and ``update_actor`` (there is one loss function on the workers and one update call), and
a hook that both methods list in ``exclusive`` (EMPG and AEM each define the step advantage as an
entropy-weighted one, and their product has no defined meaning, so both list ``transform_advantages``;
either still chains with a method that merely adjusts the advantages). :func:`check_methods` refuses such a
pair with one sentence naming both, before Ray starts.

Config: ``method.use`` maps each method's name to its class (a registered name or a dotted path), and the
Hydra group files fill it in (``conf/method/<name>.yaml``); a list of choices merges them, in order.
``method._target_=pkg.module.Class`` adds a class from the user's own package (it must be importable in
the Ray workers too: installed, or on ``PYTHONPATH``). ``method.dr_bot_filters=true`` adds Dr.BoT's
filters to any run. docs/methods/new_method.md walks through writing one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from agent_rl.rows import segments
from agent_rl.rows.segments import Segments
from agent_rl.rows.step_rows import StepRows

METHOD_REGISTRY: dict[str, type[Method]] = {}
# agent_rl's own methods, name -> class path (imported on demand, so that the registry is complete without
# importing every method's wiring up front).
BUILTIN = {
    "empg": "agent_rl.methods.empg_method.Empg",
    "aem": "agent_rl.methods.aem_method.Aem",
    "epo": "agent_rl.methods.epo_method.Epo",
    "spear": "agent_rl.methods.spear_method.Spear",
    "dr_bot": "agent_rl.methods.dr_bot_method.DrBot",
}
# Hooks that one method at most may implement in a run, and what each is (for the refusal).
SINGLE_OWNER = {
    "actor_loss": "the actor loss on the workers",
    "update_actor": "the actor update",
}
HOOK_WHAT = {
    **SINGLE_OWNER,
    "transform_outcome": "the outcome rewards",
    "keep_rows": "the rows kept in the loss",
    "transform_advantages": "the advantages",
    "after_advantages": "the per-row fields of the update",
    "before_update": "the update's extra_info",
    "after_update": "the work after the update",
}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: register a :class:`Method` subclass under ``name`` (verl's ``register_adv_est``
    pattern); a user's own package may register its methods too, or be named by class path."""

    def decorate(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register_method({name!r}) decorates a Method subclass, not {cls!r}.")
        if name in METHOD_REGISTRY and METHOD_REGISTRY[name] is not cls:
            raise ValueError(f"method {name!r} is already registered ({METHOD_REGISTRY[name].__qualname__}).")
        cls.name = name
        METHOD_REGISTRY[name] = cls
        return cls

    return decorate


@dataclass
class StepBatch:
    """What the advantage step hands to a method's hooks; tensors on the CPU, one row per environment step.

    ``rows`` (`agent_rl.rows.step_rows.StepRows`: outcome, penalty, group, trajectory, turn ``(rows,)``) is
    updated in place of the old one after each ``transform_outcome``; ``real (rows,)`` marks environment
    steps (not verl's padding); ``mask (rows, T)`` the response tokens in the loss (after the filters);
    ``entropy (rows, T)`` the old policy's token entropy when a method ``needs_entropy`` (else None);
    ``responses (rows, T_r)`` token ids when a method ``needs_responses``; ``extra`` each row's
    ``extra_fields``; ``step`` the training step (1-based); ``metrics`` the step's metrics, to add to.

    With ``agent.rows=trajectory`` the batch's rows are whole episodes, and a step here is one turn segment of
    one (``segments``, `agent_rl.rows.segments`): a method sees the same step rows in both layouts.
    ``to_rows``, ``per_row`` and ``on_steps`` move values between the steps and the batch's own rows
    (identities in the step layout); a method that keeps per-row state of the batch (SPEAR's replay) uses
    ``per_row``.
    """

    rows: StepRows
    extra: list[dict[str, Any]]
    real: torch.Tensor
    mask: torch.Tensor
    entropy: torch.Tensor | None
    responses: torch.Tensor | None
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    segments: Segments | None = None
    num_rows: int | None = None  # the batch's own rows (the trajectories, with segments)

    @classmethod
    def build(
        cls,
        extra: list[dict[str, Any]],
        uids: list[str],
        real: torch.Tensor,
        mask: torch.Tensor,
        entropy: torch.Tensor | None,
        responses: torch.Tensor | None,
        step: int,
        metrics: dict[str, float],
    ) -> StepBatch:
        """From the batch's rows: step rows as they are, trajectory rows cut into their turn segments."""
        if not any(e.get("rows") == "trajectory" for e in extra):
            return cls(
                StepRows.from_fields(extra, uids, real), extra, real, mask, entropy, responses, step, metrics
            )
        turns = [int(e.get("num_steps", 0)) if r else 0 for e, r in zip(extra, real.tolist(), strict=True)]
        seg = segments.cut(segments.token_turns(extra, mask.shape[1]), mask, turns)
        seg_extra = segments.segment_extras(extra, seg)
        seg_real = real[seg.row]
        return cls(
            rows=StepRows.from_fields(seg_extra, [uids[r] for r in seg.row.tolist()], seg_real),
            extra=seg_extra,
            real=seg_real,
            mask=seg.mask,
            entropy=None if entropy is None else segments.expand(entropy, seg),
            responses=None if responses is None else segments.expand(responses, seg),
            step=step,
            metrics=metrics,
            segments=seg,
            num_rows=len(extra),
        )

    def to_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Per-token values of the steps ``(steps, T)`` on the batch's rows ``(rows, T)``."""
        return x if self.segments is None else segments.collapse(x, self.segments, self.num_rows)

    def per_row(self, x: torch.Tensor) -> torch.Tensor:
        """A per-step value ``(steps,)`` per batch row ``(rows,)``: the token-weighted mean of its steps."""
        return x if self.segments is None else segments.collapse_rows(x, self.segments, self.num_rows)

    def on_steps(self, x: torch.Tensor) -> torch.Tensor:
        """A per-row tensor ``(rows, ...)`` on the steps ``(steps, ...)``."""
        return x if self.segments is None else segments.expand(x, self.segments)


class Method:
    """Base class of a method: every hook does nothing; override the ones the method needs.

    ``config`` is the run's whole resolved config (``config.method`` holds the method keys); a method is
    built once per run, in the trainer's process, after verl's workers exist.
    """

    name: ClassVar[str] = ""
    needs_entropy: ClassVar[bool] = False  # the old policy's token entropy in the advantage step
    needs_responses: ClassVar[bool] = False  # the response token ids in the advantage step
    # hooks this method claims whole (it defines the quantity rather than adjusting it): two methods that
    # both claim one of them are refused; a method that merely implements the hook chains with either
    exclusive: ClassVar[tuple[str, ...]] = ()
    state_format: ClassVar[str] = "json"  # "json": method_state.json; "torch": method_state.pt

    def __init__(self, config: Any) -> None:
        self.config = config
        self.cfg = config.method

    # ---- before Ray ----------------------------------------------------------------------------------
    @classmethod
    def check(cls, config: Any) -> str | None:
        """A one-sentence refusal of ``config`` (ending with a period), or None."""
        return None

    # ---- on the workers --------------------------------------------------------------------------------
    def actor_loss(self, actor_config: Any) -> Callable | None:
        """A loss ``fn(config, model_output, data, dp_group)`` in place of verl's ``ppo_loss`` (see
        `agent_rl.methods.losses`), bound to ``actor_config`` (verl's ``ActorConfig``), or None."""
        return None

    # ---- the advantage step ------------------------------------------------------------------------------
    def transform_outcome(self, rows: StepRows, batch: StepBatch) -> StepRows:
        return rows

    def keep_rows(self, batch: StepBatch) -> torch.Tensor:
        """``(rows,)`` bool: rows whose tokens stay in the loss."""
        return torch.ones(len(batch.real), dtype=torch.bool)

    def transform_advantages(self, advantages: torch.Tensor, batch: StepBatch) -> torch.Tensor:
        """``(rows, T) -> (rows, T)``; tokens outside ``batch.mask`` are ignored."""
        return advantages

    def after_advantages(self, advantages: torch.Tensor, batch: StepBatch) -> dict[str, torch.Tensor]:
        """Per-row ``(rows,)`` or per-token ``(rows, T)`` fields for the actor workers' loss (field names must
        be the method's own). With trajectory rows the trainer moves them onto the batch's rows
        (``per_row``: the token-weighted mean; per-token fields: each token its step's value)."""
        return {}

    # ---- the actor update --------------------------------------------------------------------------------
    def before_update(self, trainer: Any, batch: Any, metrics: dict[str, float]) -> None:
        """``batch`` is verl's ``KVBatchMeta``; ``batch.extra_info`` reaches every micro-batch's loss;
        ``trainer`` is the `agent_rl.training.trainer.AgentTrainer` (``global_steps``,
        ``total_training_steps``)."""

    def update_actor(self, trainer: Any, batch: Any, metrics: dict, update: Callable[[Any], Any]) -> Any:
        """The actor update: ``update(batch)`` is the trainer's (verl's, with ``algo.mini_batch_rows``);
        ``trainer`` is the `agent_rl.training.trainer.AgentTrainer` (its worker group, step, config)."""
        return update(batch)

    def after_update(self, trainer: Any, batch: Any, metrics: dict[str, float]) -> None:
        pass

    # ---- checkpoints -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Top-level keys must be the method's own: all methods' states share one file per format."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """``state`` holds every method's keys of this format (read yours)."""


def implements(cls: type[Method], hook: str) -> bool:
    """``cls`` overrides ``hook`` of :class:`Method`."""
    return getattr(cls, hook) is not getattr(Method, hook)


def method_class(spec: str) -> type[Method]:
    """A registered name (agent_rl's own, or one a user registered) or a class path, ``pkg.module.Class``
    (or ``pkg.module:Class``)."""
    if spec in METHOD_REGISTRY:
        return METHOD_REGISTRY[spec]
    path = BUILTIN.get(spec, spec)
    module_name, sep, attr = path.rpartition(":") if ":" in path else path.rpartition(".")
    if not sep or not module_name:
        valid = ", ".join(sorted({*BUILTIN, *METHOD_REGISTRY}))
        raise ValueError(
            f"unknown method {spec!r}; valid: {valid}, or a class path such as my_package.module.MyMethod."
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(
            f"method class {path} does not import ({err}); install its package or put it on PYTHONPATH."
        ) from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ValueError(f"{path} is not a subclass of agent_rl.methods.api.Method.")
    return cls


def method_specs(method_cfg: Any) -> list[tuple[str, str]]:
    """``(name, class spec)`` of each method the ``method`` config node asks for, in order."""
    use = dict(method_cfg.get("use") or {})
    specs = [(str(name), str(spec if spec else name)) for name, spec in use.items()]
    target = method_cfg.get("_target_")
    if target:
        specs.append((str(target).replace(":", ".").rsplit(".", 1)[-1], str(target)))
    if method_cfg.get("dr_bot_filters", False) and "dr_bot" not in use:
        specs.append(("dr_bot", "dr_bot"))
    return specs


def method_label(use: Any, target: Any = None) -> str:
    """``method.name``: the chosen methods joined by ``+`` (``empg+epo``), ``none`` for none; the class
    name of a ``_target_`` (no import: the label is resolved when Hydra composes the config)."""
    names = [str(n) for n in dict(use or {})]
    if target:
        names.append(str(target).replace(":", ".").rsplit(".", 1)[-1])
    return "+".join(names) or "none"


def method_classes(config: Any) -> list[type[Method]]:
    """The run's method classes, in order; a ValueError names an unknown or broken one."""
    classes = []
    for name, spec in method_specs(config.method):
        cls = method_class(spec)
        if not cls.name:
            cls.name = name
        classes.append(cls)
    return classes


def conflicts(classes: list[type[Method]]) -> str | None:
    """One sentence naming the first two methods that claim one hook only one can own, or None."""
    for i, a in enumerate(classes):
        for b in classes[i + 1 :]:
            if a is b:
                return f"method {a.name} is listed twice; list each method once."
            for hook in HOOK_WHAT:
                if not (implements(a, hook) and implements(b, hook)):
                    continue
                if hook in SINGLE_OWNER or (hook in a.exclusive and hook in b.exclusive):
                    return (
                        f"method {a.name} and method {b.name} both claim {HOOK_WHAT[hook]} ({hook}), which "
                        f"one method of a run can own; drop one of them."
                    )
    return None


def check_methods(config: Any) -> list[type[Method]]:
    """Before Ray: the classes import, no two claim one hook, each accepts the config; else a ValueError
    with one sentence."""
    classes = method_classes(config)
    refusal = conflicts(classes)
    if refusal:
        raise ValueError(refusal)
    for cls in classes:
        refusal = cls.check(config)
        if refusal:
            raise ValueError(refusal)
    return classes


def build_methods(config: Any) -> list[Method]:
    """The run's method objects (in the trainer)."""
    return [cls(config) for cls in check_methods(config)]


def stats(name: str, x: torch.Tensor) -> dict[str, float]:
    """``<name>/mean``, ``/std``, ``/min``, ``/max`` of ``x`` (nothing for an empty tensor)."""
    if x.numel() == 0:
        return {}
    return {
        f"{name}/mean": float(x.mean()),
        f"{name}/std": float(x.std(unbiased=False)),
        f"{name}/min": float(x.min()),
        f"{name}/max": float(x.max()),
    }
