"""Per-step prompts for ALFWorld, ScienceWorld and WebShop, as verl-agent / EPO build them.

Pure Python, no verl import. ``build_prompt(env_name, task, step, history, observation,
admissible_actions, history_length)`` returns the chat messages ``[{"role": "user", "content": ...}]``
of one step; each step is its own sample (verl-agent's step-independent layout, ``methods.md`` §1.1).

Inputs:

- ``task``: the task description (``info["task"]`` of our envs).
- ``step``: steps already taken in this episode (0 on the first turn); the prompt says "you have
  already taken {step} step(s)" and "you are now at step {step + 1}".
- ``history``: the (observation, action) pairs of the steps taken so far, oldest first, where each
  observation is the one the action answered; either the whole episode or only its tail (at most
  ``step`` pairs). The last ``history_length`` pairs are shown, numbered by their step.
- ``observation``: the current observation; ``admissible_actions``: the env's action list (for
  ScienceWorld the action *templates*, with ``objects`` given separately, see below).

Faithful to EPO's ``agent_system/environments/prompts/{alfworld,webshop,sciworld}.py`` and
``env_manager.py`` (``build_text_obs``), HEAD ``5b6fa98`` (verl-agent's, with EPO's ScienceWorld):

- Template text verbatim, including its typos ("observaitons" in ALFWorld), the non-breaking hyphen in
  "e\u2011commerce", trailing spaces and the leading/trailing newline of the content.
- The first step (``step == 0``), or ``history_length <= 0``, uses the no-history template. The
  ALFWorld no-history template has no task line (the first ALFWorld observation carries the task).
- History entries: ``[Observation {n}: '{obs}', Action {n}: '{action}']``, one per line;
  ScienceWorld additionally lists every earlier action as ``[Step {n}, Action {n}: '{action}']``
  and writes the recent ones as ``[Step {n}, Observation {n}: '{obs}', Action {n}: '{action}']``.
- ALFWorld: admissible actions quoted and joined by ``"\\n "``, with ``help`` removed.
- WebShop: each action quoted with a trailing comma, one per line; observations (current and
  history) are reformatted as EPO's ``format_obs`` does: the `` [SEP] `` parts after the
  instruction, each quoted (the raw text when the instruction is not found, so already formatted
  text passes through unchanged). A history prompt longer than 13,000 characters falls back to
  the no-history template (``max_prompt_chars``).
- ScienceWorld: the fixed list of 25 action descriptions, then EPO's available-actions string
  ``Valid_actions: [templates], OBJ needs to be replaced with one of the following objects:
  [objects]\\n example: <action>focus on door</action>`` (Python list reprs). Pass the env's
  current ``get_possible_actions()`` as ``admissible_actions`` and ``get_possible_objects()`` as
  ``objects``; the full list of valid action-object combinations (hundreds to thousands of
  entries) is deliberately not printed, as in EPO. The fixed part is ~2,500 characters.

Deviations:

- Character caps (EPO has none besides WebShop's fallback): the task, the current observation and
  every history observation are cut to ``max_entry_chars`` (default 4,000) characters, and every
  history action to ``max_action_chars`` (default 256), keeping the head and appending
  ``" ...[N chars truncated]"``. Observations of the three envs are normally far below the cap
  (ALFWorld/ScienceWorld rooms < 1,500 characters, WebShop pages < 3,000); ``None`` disables a cap.
  A capped entry changes only pathological prompts (e.g. a 1 MB action echoed in the history).
- ``max_prompt_chars`` generalises WebShop's 13,000-character fallback to any env (default: 13,000
  for WebShop, none elsewhere, as in EPO). EPO's rollout additionally left-truncates any prompt
  over min(max_prompt_length, 1536) tokens; that is the agent loop's business, not this module's.
- ScienceWorld numbering: EPO numbers the recent entries from ``len(buffer) - history_length``, so
  on the second step its only history entry is "Step 0"; here entries are numbered by their real
  step (1-based) in every env.
- ScienceWorld without ``objects``: the "OBJ needs to be replaced ..." clause is left out (EPO
  always has the object list).
- EPO's meta-thinking ScienceWorld variant (``<planning>``/``<explore>`` tags, ``meta_think``) is
  not implemented; it is off by default in EPO.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

DEFAULT_MAX_ENTRY_CHARS = 4000
DEFAULT_MAX_ACTION_CHARS = 256
# Above this many characters a history prompt falls back to the no-history template (EPO, WebShop).
DEFAULT_MAX_PROMPT_CHARS: dict[str, int | None] = {
    "alfworld": None,
    "scienceworld": None,
    "webshop": 13000,
    "frozenlake": None,
}
SEP = " [SEP] "

_THINK_ACT = (
    "You should first reason step-by-step about the current situation. This reasoning process MUST be "
    "enclosed within <think> </think> tags. \n"
)
_CHOOSE_ADMISSIBLE = (
    "Once you've finished your reasoning, you should choose an admissible action for current step and "
    "present it within <action> </action> tags.\n"
)

# --------------------------------------------------------------------------------------------- ALFWorld
ALFWORLD_TEMPLATE_NO_HIS = (
    "\nYou are an expert agent operating in the ALFRED Embodied Environment.\n"
    "Your current observation is: {current_observation}\n"
    "Your admissible actions of the current situation are: [{admissible_actions}].\n"
    "\n"
    "Now it's your turn to take an action.\n" + _THINK_ACT + _CHOOSE_ADMISSIBLE
)
ALFWORLD_TEMPLATE = (
    "\nYou are an expert agent operating in the ALFRED Embodied Environment. Your task is to: "
    "{task_description}\n"
    "Prior to this step, you have already taken {step_count} step(s). Below are the most recent "
    "{history_length} observaitons and the corresponding actions you took: {action_history}\n"
    "You are now at step {current_step} and your current observation is: {current_observation}\n"
    "Your admissible actions of the current situation are: [{admissible_actions}].\n"
    "\n"
    "Now it's your turn to take an action.\n" + _THINK_ACT + _CHOOSE_ADMISSIBLE
)

# ---------------------------------------------------------------------------------------------- WebShop
_WEBSHOP_TAIL = (
    "Your admissible actions of the current situation are: \n"
    "[\n"
    "{available_actions}\n"
    "].\n"
    "\n"
    "Now it's your turn to take one action for the current step.\n"
    "You should first reason step-by-step about the current situation, then think carefully which "
    "admissible action best advances the shopping goal. This reasoning process MUST be enclosed within "
    "<think> </think> tags. \n" + _CHOOSE_ADMISSIBLE
)
WEBSHOP_TEMPLATE_NO_HIS = (
    "\nYou are an expert autonomous agent operating in the WebShop e\u2011commerce environment. \n"
    "Your task is to: {task_description}.\n"
    "Your current observation is: {current_observation}.\n" + _WEBSHOP_TAIL
)
WEBSHOP_TEMPLATE = (
    "\nYou are an expert autonomous agent operating in the WebShop e\u2011commerce environment.\n"
    "Your task is to: {task_description}.\n"
    "Prior to this step, you have already taken {step_count} step(s). Below are the most recent "
    "{history_length} observations and the corresponding actions you took: {action_history}\n"
    "You are now at step {current_step} and your current observation is: {current_observation}.\n"
    + _WEBSHOP_TAIL
)

# ----------------------------------------------------------------------------------------- ScienceWorld
_SCIWORLD_INTRO = (
    "\nYou are an expert agent operating in the ScienceWorld environment, which is a text-based virtual "
    "environment centered around accomplishing tasks from the elementary science curriculum.\n"
    "Your current task is: {task_description}\n"
    "\n"
)
SCIWORLD_ACTION_DESCRIPTIONS = (
    ("open OBJ", "open a container"),
    ("close OBJ", "close a container"),
    ("activate OBJ", "activate a device"),
    ("deactivate OBJ", "deactivate a device"),
    ("connect OBJ to OBJ", "connect electrical components"),
    ("disconnect OBJ", "disconnect electrical components"),
    ("use OBJ [on OBJ]", "use a device/item"),
    ("look around", "describe the current room"),
    ("look at OBJ", "describe an object in detail"),
    ("look in OBJ", "describe a container's contents"),
    ("read OBJ", "read a note or book"),
    ("move OBJ to OBJ", "move an object to a container"),
    ("pick up OBJ", "move an object to the inventory"),
    ("put down OBJ", "drop an inventory item"),
    ("pour OBJ into OBJ", "pour a liquid into a container"),
    ("dunk OBJ into OBJ", "dunk a container into a liquid"),
    ("mix OBJ", "chemically mix a container"),
    ("go to LOC", "move to a new location"),
    ("eat OBJ", "eat a food"),
    ("flush OBJ", "flush a toilet"),
    ("focus on OBJ", "signal intent on a task object"),
    ("wait", "take no action for 10 iterations"),
    ("wait1", "take no action for 1 iteration"),
    ("task", "describe current task"),
    ("inventory", "list your inventory"),
)
# Braces doubled: the block is part of a str.format template.
_SCIWORLD_ACTIONS_BLOCK = (
    "Here are the actions you may take:\n[\n"
    + ",\n".join(f'{{{{"action": "{a}", "description": "{d}"}}}}' for a, d in SCIWORLD_ACTION_DESCRIPTIONS)
    + "\n]\n\nCurrent available actions:\n{available_actions}\n\n"
)
_SCIWORLD_CHOOSE = (
    "Once you've finished your reasoning, you should choose an appropriate action for the current step and "
    "present it within <action> </action> tags.\n"
)
SCIWORLD_TEMPLATE_NO_HIS = (
    _SCIWORLD_INTRO
    + "Your current observation is: {current_observation}\n"
    + _SCIWORLD_ACTIONS_BLOCK
    + "Now it's your turn to take an action.\n"
    + _THINK_ACT
    + _SCIWORLD_CHOOSE
)
SCIWORLD_TEMPLATE = (
    _SCIWORLD_INTRO
    + "Prior to this step, you have already taken {step_count} step(s). Below are the most recent "
    "{history_length} observations and the corresponding actions you took: {action_history}\n"
    "You are now at step {current_step} and your current observation is: {current_observation}\n"
    + _SCIWORLD_ACTIONS_BLOCK
    + "Now it's your turn to take an action. You should first reason step-by-step about the current "
    "situation. This reasoning process MUST be enclosed within <think> </think> tags.\n" + _SCIWORLD_CHOOSE
)


# -------------------------------------------------------------------------------------------- FrozenLake
# Ours (no paper trains on it): the grid and the actions in a few lines. Short on purpose (~50 tokens for
# a 3x3 map, against ~160 in ALFWorld's wording), so that the tiny model's learning check runs in minutes.
_FROZENLAKE_TAIL = (
    "Admissible actions: [{admissible_actions}].\n"
    "Reason inside <think> </think>, then give one action inside <action> </action>.\n"
)
FROZENLAKE_TEMPLATE_NO_HIS = (
    "FrozenLake. {task_description}\nCurrent observation:\n{current_observation}\n" + _FROZENLAKE_TAIL
)
FROZENLAKE_TEMPLATE = (
    "FrozenLake. {task_description}\n"
    "Your last {history_length} of {step_count} step(s): {action_history}\n"
    "Step {current_step}, current observation:\n{current_observation}\n" + _FROZENLAKE_TAIL
)


# ------------------------------------------------------------------------------------------- formatting
def clip(text: object, limit: int | None) -> str:
    """``str(text)`` cut to ``limit`` characters plus a ``" ...[N chars truncated]"`` marker."""
    text = text if isinstance(text, str) else str(text)
    if limit is None or len(text) <= limit:
        return text
    limit = max(0, limit)
    return f"{text[:limit]} ...[{len(text) - limit} chars truncated]"


def format_alfworld_actions(actions: Sequence[str] | None) -> str:
    """verl-agent: each action quoted, joined by ``"\\n "``, ``help`` removed."""
    return "\n ".join(f"'{a}'" for a in actions or () if a != "help")


def format_webshop_actions(actions: Sequence[str] | None) -> str:
    """verl-agent: each action quoted with a trailing comma, one per line."""
    return "\n".join(f"'{a}'," for a in actions or ())


def format_webshop_observation(observation: str, task: str) -> str:
    """EPO's ``format_obs``: the `` [SEP] `` parts after the instruction, each quoted.

    Returns the text unchanged when the instruction is not one of its parts (so formatting twice
    is harmless).
    """
    parts = observation.split(SEP)
    try:
        index = parts.index(task)
    except ValueError:
        return observation
    return SEP.join(f"'{p}'" for p in parts[index + 1 :])


def format_scienceworld_actions(templates: Sequence[str] | None, objects: Sequence[str] | None) -> str:
    """EPO's ``Valid_actions: [...], OBJ needs to be replaced with ... [...]`` string."""
    text = f"Valid_actions: {list(templates or ())}"
    if objects is not None:
        text += f", OBJ needs to be replaced with one of the following objects: {list(objects)}"
    return text + "\n example: <action>focus on door</action>"


def _recent(history: Sequence[tuple[str, str]], step: int, history_length: int) -> tuple[int, list]:
    """The last ``history_length`` pairs and the step number (1-based) of the first of them."""
    recent = list(history[-history_length:]) if history_length > 0 else []
    return step - len(recent) + 1, recent


def _pairs_history(recent: list, first: int, max_entry: int | None, max_action: int | None) -> str:
    return "".join(
        f"\n[Observation {n}: '{clip(obs, max_entry)}', Action {n}: '{clip(act, max_action)}']"
        for n, (obs, act) in enumerate(recent, start=first)
    ).strip()


def _from_templates(
    no_his_template: str,
    his_template: str,
    task: str,
    step: int,
    history: Sequence[tuple[str, str]],
    obs: str,
    actions: str,
    history_length: int,
    max_entry: int | None,
    max_action: int | None,
) -> tuple[str, str | None]:
    """Fill a (no-history, history) template pair whose history is ``[Observation n: .., Action n: ..]``
    pairs (ALFWorld's and FrozenLake's); a template uses the fields it names and ignores the others."""
    fields = {
        "task_description": clip(task, max_entry),
        "current_observation": obs,
        "admissible_actions": actions,
    }
    no_his = no_his_template.format(**fields)
    if step == 0 or history_length <= 0:
        return no_his, None
    first, recent = _recent(history, step, history_length)
    with_his = his_template.format(
        **fields,
        step_count=step,
        history_length=len(recent),
        action_history=_pairs_history(recent, first, max_entry, max_action),
        current_step=step + 1,
    )
    return no_his, with_his


# --------------------------------------------------------------------------------------------- builders
def alfworld_prompt(
    task: str,
    step: int,
    history: Sequence[tuple[str, str]],
    observation: str,
    admissible_actions: Sequence[str] | None,
    history_length: int,
    *,
    max_entry_chars: int | None = DEFAULT_MAX_ENTRY_CHARS,
    max_action_chars: int | None = DEFAULT_MAX_ACTION_CHARS,
) -> tuple[str, str | None]:
    """The no-history and (past the first step) the history content of one ALFWorld step."""
    return _from_templates(
        ALFWORLD_TEMPLATE_NO_HIS,
        ALFWORLD_TEMPLATE,
        task,
        step,
        history,
        clip(observation, max_entry_chars),
        format_alfworld_actions(admissible_actions),
        history_length,
        max_entry_chars,
        max_action_chars,
    )


def webshop_prompt(
    task: str,
    step: int,
    history: Sequence[tuple[str, str]],
    observation: str,
    admissible_actions: Sequence[str] | None,
    history_length: int,
    *,
    max_entry_chars: int | None = DEFAULT_MAX_ENTRY_CHARS,
    max_action_chars: int | None = DEFAULT_MAX_ACTION_CHARS,
) -> tuple[str, str | None]:
    """The no-history and (past the first step) the history content of one WebShop step."""
    task = task if isinstance(task, str) else str(task)
    actions = format_webshop_actions(admissible_actions)
    obs = clip(format_webshop_observation(str(observation), task), max_entry_chars)
    task_text = clip(task, max_entry_chars)
    no_his = WEBSHOP_TEMPLATE_NO_HIS.format(
        task_description=task_text, current_observation=obs, available_actions=actions
    )
    if step == 0 or history_length <= 0:
        return no_his, None
    first, recent = _recent(history, step, history_length)
    recent = [(format_webshop_observation(str(o), task), a) for o, a in recent]
    with_his = WEBSHOP_TEMPLATE.format(
        task_description=task_text,
        step_count=step,
        history_length=len(recent),
        action_history=_pairs_history(recent, first, max_entry_chars, max_action_chars),
        current_step=step + 1,
        current_observation=obs,
        available_actions=actions,
    )
    return no_his, with_his


def scienceworld_prompt(
    task: str,
    step: int,
    history: Sequence[tuple[str, str]],
    observation: str,
    admissible_actions: Sequence[str] | None,
    history_length: int,
    *,
    objects: Sequence[str] | None = None,
    max_entry_chars: int | None = DEFAULT_MAX_ENTRY_CHARS,
    max_action_chars: int | None = DEFAULT_MAX_ACTION_CHARS,
) -> tuple[str, str | None]:
    """The no-history and (past the first step) the history content of one ScienceWorld step."""
    actions = format_scienceworld_actions(admissible_actions, objects)
    obs = clip(observation, max_entry_chars)
    task_text = clip(task, max_entry_chars)
    no_his = SCIWORLD_TEMPLATE_NO_HIS.format(
        task_description=task_text, current_observation=obs, available_actions=actions
    )
    if step == 0 or history_length <= 0:
        return no_his, None
    first, recent = _recent(history, step, history_length)
    earlier = list(history[: len(history) - len(recent)])
    first_earlier = first - len(earlier)
    lines = [
        f"\n[Step {n}, Action {n}: '{clip(act, max_action_chars)}']"
        for n, (_, act) in enumerate(earlier, start=first_earlier)
    ]
    lines += [
        f"\n[Step {n}, Observation {n}: '{clip(o, max_entry_chars)}', Action {n}: "
        f"'{clip(a, max_action_chars)}']"
        for n, (o, a) in enumerate(recent, start=first)
    ]
    with_his = SCIWORLD_TEMPLATE.format(
        task_description=task_text,
        step_count=step,
        history_length=len(recent),
        action_history="".join(lines).strip(),
        current_step=step + 1,
        current_observation=obs,
        available_actions=actions,
    )
    return no_his, with_his


def frozenlake_prompt(
    task: str,
    step: int,
    history: Sequence[tuple[str, str]],
    observation: str,
    admissible_actions: Sequence[str] | None,
    history_length: int,
    *,
    max_entry_chars: int | None = DEFAULT_MAX_ENTRY_CHARS,
    max_action_chars: int | None = DEFAULT_MAX_ACTION_CHARS,
) -> tuple[str, str | None]:
    """The no-history and (past the first step) the history content of one FrozenLake step."""
    return _from_templates(
        FROZENLAKE_TEMPLATE_NO_HIS,
        FROZENLAKE_TEMPLATE,
        task,
        step,
        history,
        clip(observation, max_entry_chars),
        ", ".join(admissible_actions or ()),
        history_length,
        max_entry_chars,
        max_action_chars,
    )


PROMPT_BUILDERS: dict[str, Callable[..., tuple[str, str | None]]] = {
    "alfworld": alfworld_prompt,
    "scienceworld": scienceworld_prompt,
    "webshop": webshop_prompt,
    "frozenlake": frozenlake_prompt,
}
_ALIASES = {"sciworld": "scienceworld"}


def build_prompt(
    env_name: str,
    task: str,
    step: int,
    history: Sequence[tuple[str, str]],
    observation: str,
    admissible_actions: Sequence[str] | None,
    history_length: int = 2,
    *,
    objects: Sequence[str] | None = None,
    max_entry_chars: int | None = DEFAULT_MAX_ENTRY_CHARS,
    max_action_chars: int | None = DEFAULT_MAX_ACTION_CHARS,
    max_prompt_chars: int | None | Literal["default"] = "default",
) -> list[dict[str, str]]:
    """The chat messages of one step: ``[{"role": "user", "content": ...}]``.

    Args:
        env_name: ``alfworld``, ``scienceworld`` (alias ``sciworld``), ``webshop`` or ``frozenlake``.
        task: the task description.
        step: steps already taken (0 on the first turn); at least ``len(history)``.
        history: (observation, action) pairs of the steps taken so far, oldest first (whole
            episode or its tail).
        observation: the current observation.
        admissible_actions: the env's admissible actions (ScienceWorld: action templates).
        history_length: how many recent pairs to show; ``<= 0`` uses the no-history template.
        objects: ScienceWorld only, the objects that replace ``OBJ``.
        max_entry_chars / max_action_chars: per-entry character caps (None: no cap).
        max_prompt_chars: a history prompt longer than this falls back to the no-history template;
            ``"default"`` uses `DEFAULT_MAX_PROMPT_CHARS` (13,000 for WebShop), None never falls back.

    Raises:
        ValueError: unknown ``env_name`` (the message lists the valid ones), ``objects`` for an env
            other than ScienceWorld, a negative ``step`` or fewer steps than history pairs.
    """
    name = _ALIASES.get(env_name, env_name) if isinstance(env_name, str) else env_name
    if name not in PROMPT_BUILDERS:
        raise ValueError(f"unknown environment {env_name!r}; valid: {', '.join(sorted(PROMPT_BUILDERS))}")
    step = int(step)
    history = list(history or ())
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < len(history):
        raise ValueError(f"step={step} but history has {len(history)} (observation, action) pairs")
    kwargs: dict = {"max_entry_chars": max_entry_chars, "max_action_chars": max_action_chars}
    if objects is not None:
        if name != "scienceworld":
            raise ValueError(f"objects is a ScienceWorld argument, not one of {name!r}")
        kwargs["objects"] = objects
    no_his, with_his = PROMPT_BUILDERS[name](
        task, step, history, observation, admissible_actions, int(history_length), **kwargs
    )
    limit = DEFAULT_MAX_PROMPT_CHARS[name] if max_prompt_chars == "default" else max_prompt_chars
    content = no_his if with_his is None or (limit is not None and len(with_his) > limit) else with_his
    return [{"role": "user", "content": content}]
