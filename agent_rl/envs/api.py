r"""The environment API: one class per environment, registered by name, that declares everything the rest of
agent_rl needs to know about it. Nothing outside ``agent_rl/envs/`` names an environment: the task tables
(`agent_rl.training.data`), the prompts (`agent_rl.rollout.prompts`), the answer parser
(`agent_rl.rollout.parsing`), the pool of environment actors (`agent_rl.envs.pool`), the checks before Ray
starts (`agent_rl.cli.train`) and the tiny model's lessons (`agent_rl.models.tiny_model`) all ask the class.

=============================  ==========================================================================
part                           what it declares
=============================  ==========================================================================
``name``, ``title``            the registry name (``env.name``) and the display name ("ALFWorld")
``splits``                     the split names a config may choose (``env.train_split`` / ``val_split``)
``tasks(split, env_kwargs)``   classmethod: ``[(spec, task_type), ...]``, deterministic for a config; the
                               task tables hold one row per task, and ``reset(spec)`` starts it
``task_count(split)``          an actor's own count where task ids index data found at run time (ALFWorld's
                               games): the pool compares it with the driver's (``checks_task_counts``)
``prompt(...)``                classmethod: the no-history and the history text of one turn
``turn_inputs(info, last)``    classmethod: what of an ``info`` the prompt shows (admissible actions, ...)
``max_prompt_chars``           a history prompt longer than this falls back to the no-history one
``answer``                     `AnswerFormat`: ``<think>…</think><action>…</action>`` and its conventions
``ram_per_env_gb``             host RAM per actor (the planner: ``env.ram_per_env_gb``, else this)
``data_variables``             environment variables every Ray worker needs as the driver has them
``check(config)``              classmethod, in the driver before Ray starts: a one-sentence refusal or None
``paper_splits``,              the splits the papers call "iid" and "ood", and whether they report a score
``reports_score``              besides success (the paper-table builder, `agent_rl.report.table`)
``reset``, ``step``, ``close``  the simulator, inside a Ray actor (`agent_rl.envs.pool`)
``lesson_corpus``,             optional classmethods: text for the tiny model's tokenizer and one example of
``lesson_example(rng)``        the format lesson (``model.lesson=<env name>``)
``multi_turn``                 False for a single-turn task answered once (``arith``, a `SingleTurn`): its
                               ``table_rows``, verl's own agent loop and the reward function its yaml names
                               stand in for the simulator
=============================  ==========================================================================

Config: ``env=<name>`` picks a registered class (``conf/env/<name>.yaml`` holds its settings);
``env._target_=pkg.module.Class`` runs a class from the user's own package (importable in the Ray workers too:
installed, or on ``PYTHONPATH``), whose ``name`` becomes ``env.name``. docs/envs/new_env.md walks through
writing one.

``reset(spec) -> (observation, info)``; ``info`` holds at least ``task`` (the task description),
``admissible_actions`` (list[str]) and ``task_type``. ``step(action) -> (observation, reward, done, info)``;
``info`` holds at least ``won`` (bool) and ``score`` (the simulator's own progress measure in [0, 1]).
``step`` never raises on a malformed action: the model's answer is hostile input.
"""

from __future__ import annotations

import abc
import importlib
import inspect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

Info = dict[str, Any]
# agent_rl's own environments, name -> class path (imported on demand, so that naming one environment never
# imports another's simulator: the JVM bridge, TextWorld, the WebShop catalog).
BUILTIN = {
    "alfworld": "agent_rl.envs.alfworld.ALFWorldEnv",
    "scienceworld": "agent_rl.envs.scienceworld.ScienceWorldEnv",
    "webshop": "agent_rl.envs.webshop.env.WebShopEnv",
    "frozenlake": "agent_rl.envs.frozenlake.FrozenLakeEnv",
    "arith": "agent_rl.envs.arith.Arith",
    "math_python": "agent_rl.envs.math_python.MathPython",
}
ENV_REGISTRY: dict[str, type[Environment]] = {}
ALIASES = {"sciworld": "scienceworld"}  # verl-agent's and EPO's name


@dataclass(frozen=True, slots=True)
class AnswerFormat:
    """How the model's answer becomes an action: ``<think>…</think><action>…</action>`` (verl-agent's), with
    the environment's conventions (`agent_rl.rollout.parsing` applies them)."""

    fallback_chars: int  # characters of the answer's tail sent when the action tags are missing (0: none)
    lowercase: bool  # action tags matched in any case and the action lower-cased
    vocabulary: tuple[str, ...] | None = None  # the only valid actions (None: any text)


class Environment(abc.ABC):
    """Base class of an environment: the simulator (``reset``/``step``/``close``, abstract) and the
    class-level declarations the module docstring lists. A subclass is built with ``env.env_kwargs`` as
    keyword arguments, in a Ray actor; its classmethods run in the driver and the agent-loop workers."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ()
    checks_task_counts: ClassVar[bool] = False
    max_prompt_chars: ClassVar[int | None] = None
    answer: ClassVar[AnswerFormat] = AnswerFormat(fallback_chars=0, lowercase=False)
    ram_per_env_gb: ClassVar[float] = 0.3
    data_variables: ClassVar[tuple[str, ...]] = ()
    multi_turn: ClassVar[bool] = True
    paper_splits: ClassVar[dict[str, str]] = {}
    reports_score: ClassVar[bool] = False

    # -- tasks ------------------------------------------------------------------------------------------
    @classmethod
    def valid_splits(cls, env_kwargs: dict[str, Any]) -> tuple[str, ...]:
        """The splits a config may name (``splits`` unless the settings change them)."""
        return cls.splits

    @classmethod
    @abc.abstractmethod
    def tasks(cls, split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        """``[(spec, task_type), ...]`` of ``split`` with these settings; the same list on every call."""

    def task_count(self, split: str) -> int | None:
        """The tasks of ``split`` as this instance sees them (``checks_task_counts``), else None."""
        return None

    # -- the turn's prompt ------------------------------------------------------------------------------
    @classmethod
    def turn_inputs(cls, info: Info, last: dict[str, Any] | None) -> dict[str, Any]:
        """What of ``info`` (reset's, then each step's) the prompt shows, as keyword arguments of `prompt`;
        ``last`` is the previous turn's (None on the first). Default: the admissible actions."""
        return {"admissible_actions": list(info.get("admissible_actions") or [])}

    @classmethod
    @abc.abstractmethod
    def prompt(
        cls,
        task: str,
        step: int,
        history: Sequence[tuple[str, str]],
        observation: str,
        admissible_actions: Sequence[str] | None,
        history_length: int,
        *,
        max_entry_chars: int | None,
        max_action_chars: int | None,
    ) -> tuple[str, str | None]:
        """The no-history text of one turn and, past the first step with ``history_length > 0``, the text
        with the last ``history_length`` (observation, action) pairs (else None). `agent_rl.envs.text` has
        the shared pieces (caps, history lines, the think/action instructions)."""

    # -- resources and checks ----------------------------------------------------------------------------
    @classmethod
    def check(cls, config: Any) -> str | None:
        """In the driver before Ray starts: what this machine or config lacks, in one sentence, or None."""
        return None

    # -- the simulator ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        """Start the episode described by ``spec``; return the first observation and info."""

    @abc.abstractmethod
    def step(self, action: str) -> tuple[str, float, bool, Info]:
        """Apply a free-text action. Never raises on a malformed action."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release simulator resources (JVM, files)."""

    # -- the tiny model's format lesson (optional) -------------------------------------------------------
    @classmethod
    def lesson_corpus(cls) -> list[str] | None:
        """Text added to the tiny model's tokenizer corpus for ``model.lesson=<name>``; None: no lesson."""
        return None

    @classmethod
    def lesson_example(cls, rng: random.Random) -> tuple[list[dict[str, str]], str]:
        """One example of the format lesson: a turn's chat messages and the answer to teach."""
        raise NotImplementedError(f"{cls.__name__} has no tiny-model lesson")


class SingleTurn(Environment):
    """A task answered in one response and scored by a reward function (verl's single-turn agent loop): no
    simulator, no prompts of ours. Subclasses give the task table's rows and the reward function."""

    multi_turn = False

    @classmethod
    def tasks(cls, split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        return []

    @classmethod
    @abc.abstractmethod
    def table_rows(cls, env_cfg: dict[str, Any], which: str, seed: int) -> list[dict[str, Any]]:
        """verl's rows (``prompt``, ``reward_model``, ...) of the training (``which="train"``) or validation
        (``"val"``) table."""

    @classmethod
    def prompt(cls, *args: Any, **kwargs: Any) -> tuple[str, str | None]:
        raise TypeError(f"{cls.__name__} is single-turn: verl's agent loop builds its one prompt")

    def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        raise TypeError(f"{type(self).__name__} is single-turn: it has no simulator")

    def step(self, action: str) -> tuple[str, float, bool, Info]:
        raise TypeError(f"{type(self).__name__} is single-turn: it has no simulator")


class ToolEnvironment(Environment):
    """An environment whose model calls tools (`agent_rl.envs.tools`): the conversation is whole (every turn
    stays in the context), the tools reach the model through the chat template's ``tools=``, and the answer
    format is Hermes tool calls plus a final ``<answer>…</answer>`` (`agent_rl.envs.tools.calls`).

    - ``tools``: OpenAI function schemas (``{"type": "function", "function": {"name", "description",
      "parameters"}}``); ``counted_tool`` names the tool whose calls SPEAR's tool-call bonus counts;
    - ``messages(task, info)``: the conversation's first messages (system and user);
    - ``reset(spec) -> (observation, info)``: the observation is the task's text (``info["task"]``);
    - ``step(turn)`` takes a parsed `agent_rl.envs.tools.calls.ToolTurn` and returns ``(results, reward,
      done, info)`` with ``results`` one text per call of ``turn.calls``, in order; a turn with an answer
      ends the episode (``info["won"]``: the answer is right).
    The agent loop sends ``turn.errors`` back itself, as tool messages after the results.
    """

    tools: ClassVar[tuple[dict[str, Any], ...]] = ()
    counted_tool: ClassVar[str | None] = None

    @classmethod
    @abc.abstractmethod
    def messages(cls, task: str, info: Info) -> list[dict[str, str]]:
        """The first messages of the conversation (system, user) for the task ``task``."""

    @classmethod
    def prompt(
        cls,
        task: str,
        step: int,
        history,
        observation: str,
        admissible_actions,
        history_length: int,
        *,
        max_entry_chars: int | None = None,
        max_action_chars: int | None = None,
    ):
        raise TypeError(f"{cls.__name__} is a tool environment: its prompt is the conversation (messages)")

    @abc.abstractmethod
    def step(self, turn: Any) -> tuple[list[str], float, bool, Info]:  # type: ignore[override]
        """Run ``turn.calls`` (a `ToolTurn`); never raises on a malformed call."""


def register_env(name: str) -> Callable[[type[Environment]], type[Environment]]:
    """Class decorator: register an :class:`Environment` subclass under ``name`` (as ``register_method``
    does for methods); a user's own package may register its environments too, or be named by class path."""

    def decorate(cls: type[Environment]) -> type[Environment]:
        problem = missing_parts(cls)
        if problem:
            raise TypeError(f"@register_env({name!r}): {problem}")
        if name in ENV_REGISTRY and ENV_REGISTRY[name] is not cls:
            raise ValueError(
                f"environment {name!r} is already registered ({ENV_REGISTRY[name].__qualname__})."
            )
        cls.name = name
        ENV_REGISTRY[name] = cls
        return cls

    return decorate


def missing_parts(cls: Any) -> str | None:
    """Why ``cls`` is not a usable environment class (one sentence naming the part), or None."""
    if not (isinstance(cls, type) and issubclass(cls, Environment)):
        return f"{cls!r} is not an environment: subclass agent_rl.envs.api.Environment."
    if not cls.multi_turn:
        return (
            None
            if "table_rows" not in getattr(cls, "__abstractmethods__", ())
            else (f"{cls.__name__} lacks table_rows (the rows of its task tables).")
        )
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        return f"{cls.__name__} lacks {', '.join(missing)} (see agent_rl.envs.api.Environment)."
    if not cls.splits and cls.valid_splits.__func__ is Environment.valid_splits.__func__:
        return f"{cls.__name__} declares no splits (the split names a config may choose)."
    return None


def env_names() -> list[str]:
    """Every registered and built-in environment name, sorted."""
    return sorted({*BUILTIN, *ENV_REGISTRY})


def env_class(spec: str) -> type[Environment]:
    """The class for ``spec``: a registered or built-in name, or a class path (``pkg.module.Class`` or
    ``pkg.module:Class``). A ValueError lists the valid names, or says why a path is not an environment."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(
            f"an environment is a name or a class path, not {spec!r}; valid: {', '.join(env_names())}"
        )
    name = ALIASES.get(spec, spec)
    if name in ENV_REGISTRY:
        return ENV_REGISTRY[name]
    path = BUILTIN.get(name, spec)
    if path == spec and "." not in spec:
        raise ValueError(f"unknown environment {spec!r}; valid: {', '.join(env_names())}")
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"env._target_={spec} does not import here ({type(err).__name__}: {err}).") from None
    problem = missing_parts(cls)
    if problem:
        raise ValueError(f"env._target_={spec}: {problem}")
    if not cls.name:  # a user's class named by path only
        cls.name = cls.__name__.lower()
    ENV_REGISTRY.setdefault(name if path != spec else cls.name, cls)
    return cls


def env_spec(env_cfg: Any) -> str:
    """The class an ``env`` config node names: its ``_target_`` (a user's class) or its ``name``."""
    return str(env_cfg.get("_target_") or env_cfg.get("name"))


def make_env(spec: str, **kwargs: Any) -> Environment:
    """Build the environment ``spec`` names (`env_class`) with its constructor arguments."""
    return env_class(spec)(**kwargs)


def expected_task_counts(env_cfg: dict[str, Any]) -> dict[str, int] | None:
    """The driver's side of `Environment.task_count`: tasks per split (``train_split`` and ``val_split``) as
    the task tables index them, or None for an environment whose specs name the task itself."""
    cls = env_class(env_spec(env_cfg))
    if not cls.checks_task_counts:
        return None
    kwargs = dict(env_cfg.get("env_kwargs") or {})
    splits = {env_cfg[key] for key in ("train_split", "val_split") if env_cfg.get(key)}
    return {split: len(cls.tasks(split, kwargs)) for split in sorted(splits)}


def prompt_arguments(cls: type[Environment]) -> set[str]:
    """The keyword arguments ``cls.prompt`` takes besides the common ones (ScienceWorld's ``objects``)."""
    common = set(inspect.signature(Environment.prompt).parameters)
    return set(inspect.signature(cls.prompt).parameters) - common
