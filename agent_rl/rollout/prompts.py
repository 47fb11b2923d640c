"""Per-step prompts: the chat messages of one turn, from the environment's own templates.

Pure Python, no verl import. ``build_prompt(env_name, task, step, history, observation,
admissible_actions, history_length)`` returns the chat messages ``[{"role": "user", "content": ...}]``
of one step; each step is its own sample (verl-agent's step-independent layout, ``methods.md`` §1.1). The
text comes from the environment's class (`agent_rl.envs.api.Environment.prompt`: the built-in ones are
verl-agent's and EPO's templates, verbatim, each in its environment's module); this module checks the
arguments and picks between the history text and the no-history one.

Inputs:

- ``task``: the task description (``info["task"]`` of our envs).
- ``step``: steps already taken in this episode (0 on the first turn); the prompt says "you have
  already taken {step} step(s)" and "you are now at step {step + 1}".
- ``history``: the (observation, action) pairs of the steps taken so far, oldest first, where each
  observation is the one the action answered; either the whole episode or only its tail (at most
  ``step`` pairs). The last ``history_length`` pairs are shown, numbered by their step.
- ``observation``: the current observation; ``admissible_actions``: what the environment's
  ``turn_inputs`` gives (the admissible actions; ScienceWorld's action templates, with its ``objects``
  as a further keyword argument).

The first step (``step == 0``), or ``history_length <= 0``, uses the no-history text. A history text longer
than ``max_prompt_chars`` falls back to the no-history one (default: the environment's ``max_prompt_chars``,
EPO's 13,000 characters for WebShop, none elsewhere). Character caps: `agent_rl.envs.text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from agent_rl.envs.api import env_class, env_names, prompt_arguments
from agent_rl.envs.text import DEFAULT_MAX_ACTION_CHARS, DEFAULT_MAX_ENTRY_CHARS


def build_prompt(
    env_name: str,
    task: str,
    step: int,
    history: Sequence[tuple[str, str]],
    observation: str,
    admissible_actions: Sequence[str] | None,
    history_length: int = 2,
    *,
    max_entry_chars: int | None = DEFAULT_MAX_ENTRY_CHARS,
    max_action_chars: int | None = DEFAULT_MAX_ACTION_CHARS,
    max_prompt_chars: int | None | Literal["default"] = "default",
    **extras: Any,
) -> list[dict[str, str]]:
    """The chat messages of one step: ``[{"role": "user", "content": ...}]``.

    Args:
        env_name: an environment's name or class path (`agent_rl.envs.api.env_class`).
        task: the task description.
        step: steps already taken (0 on the first turn); at least ``len(history)``.
        history: (observation, action) pairs of the steps taken so far, oldest first (whole
            episode or its tail).
        observation: the current observation.
        admissible_actions: the env's admissible actions (ScienceWorld: action templates).
        history_length: how many recent pairs to show; ``<= 0`` uses the no-history template.
        extras: further arguments of the environment's prompt (its ``turn_inputs``), e.g. ScienceWorld's
            ``objects`` (the objects that replace ``OBJ``).
        max_entry_chars / max_action_chars: per-entry character caps (None: no cap).
        max_prompt_chars: a history prompt longer than this falls back to the no-history template;
            ``"default"`` uses the environment's ``max_prompt_chars``, None never falls back.

    Raises:
        ValueError: unknown ``env_name`` (the message lists the valid ones), an extra argument the
            environment's prompt does not take (e.g. ``objects`` outside ScienceWorld), a negative
            ``step`` or fewer steps than history pairs.
    """
    cls = env_class(env_name)
    if not cls.multi_turn:
        raise ValueError(f"{cls.name} is single-turn: verl's agent loop builds its prompt")
    step = int(step)
    history = list(history or ())
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < len(history):
        raise ValueError(f"step={step} but history has {len(history)} (observation, action) pairs")
    kwargs: dict = {"max_entry_chars": max_entry_chars, "max_action_chars": max_action_chars}
    for key, value in extras.items():
        if key not in prompt_arguments(cls):
            takers = [env_class(n).title for n in env_names() if key in prompt_arguments(env_class(n))]
            owner = f"{', '.join(takers)}'s prompt" if takers else "no environment's prompt"
            raise ValueError(f"{key} is an argument of {owner}, not of {cls.name!r}'s")
        kwargs[key] = value
    no_his, with_his = cls.prompt(
        task, step, history, observation, admissible_actions, int(history_length), **kwargs
    )
    limit = cls.max_prompt_chars if max_prompt_chars == "default" else max_prompt_chars
    content = no_his if with_his is None or (limit is not None and len(with_his) > limit) else with_his
    return [{"role": "user", "content": content}]
