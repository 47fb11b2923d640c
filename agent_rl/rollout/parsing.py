"""Turn a model response into the action sent to the environment, the way verl-agent does.

Pure Python, no verl import. ``parse_action(text, env_name)`` never raises on any input text (any
string, ``None``, bytes, other objects) and runs in linear time: literal tag searches with
precompiled patterns, no backtracking regex over the response.

Faithful to verl-agent / EPO (``agent_system/environments/env_package/{alfworld,webshop,sciworld}/
projection.py``; ``methods.md`` §1.1, ``environments.md`` §4):

- ALFWorld and WebShop lower-case the whole response before looking for the action tags, so the
  action tags match in any case (``<ACTION>``) and the action is lower-cased; ScienceWorld keeps
  the case of the response (EPO's ``sciworld_projection`` does not lower-case), so its action tags
  must be lower-case. Think tags are case-sensitive everywhere, as in verl-agent. Each environment's
  class declares its conventions (``answer``: `agent_rl.envs.api.AnswerFormat`).
- The action is the text between the first ``<action>`` and the first ``</action>``, stripped of
  surrounding whitespace. Nested or repeated tags are not interpreted: for
  ``<action><action>x</action>`` the action is ``<action>x``, as in verl-agent.
- The step is invalid if the action tags are missing, if the ``<think>`` tags are missing, or if
  the response contains a Chinese character (verl-agent's range ``[\\u4e00-\\u9fff]``, CJK Unified
  Ideographs, checked on the raw response).
- Missing action tags: the environment receives the last 30 (ALFWorld) / 20 (WebShop,
  ScienceWorld) characters of the response (lower-cased where the env lower-cases), as verl-agent
  sends them. This is the default, for faithfulness: what the env receives changes the episode,
  since such a tail can itself be an executable command (``... click[buy now]`` on WebShop), which
  verl-agent executes while penalising the step as invalid. ``fallback_chars=0`` sends an empty
  action instead (a no-op in all three of our envs); another value sets the tail length.

Validity is decided by the first failing check, in this order (the ``reason`` field):
``not_a_string``, ``missing_action_tags``, ``misordered_action_tags``, ``empty_action``,
``missing_think_tags``, ``empty_think``, ``chinese_characters``, ``unknown_action``; a valid step has
reason ``ok``.

FrozenLake (not a verl-agent environment) follows verl-agent's grid-world projections (Sokoban's
``sokoban_projection``): the action must be one of a fixed vocabulary (``up``, ``down``, ``left``,
``right``), anything else is ``unknown_action``; without action tags it sends an empty action.

Deviations from verl-agent. The action sent to the environment is always verl-agent's (for
string input), and every deviation makes validity stricter, never more lenient: a step we call
valid is valid for verl-agent too (the tests check both on fuzzed input).

- The first ``</action>`` before the first ``<action>`` (``</action> ... <action>x</action>``):
  verl-agent slices between them, gets ``""`` and marks the step valid. We send the same ``""``
  but mark the step invalid (``misordered_action_tags``).
- An empty action (``<action>  </action>``) is invalid (``empty_action``); verl-agent sends ``""``
  and marks the step valid. We also send ``""``.
- ``<think>`` must come before a ``</think>`` and enclose some non-whitespace text; verl-agent
  only checks that both tags occur somewhere (``</think> <think>`` or ``<think></think>`` pass).
- Non-string input (``None``, numbers) gives an invalid empty action (``not_a_string``); bytes
  are decoded as UTF-8 with replacement. verl-agent would raise.
- Action tags are found with an ASCII-case-insensitive search on the response itself, and the
  tail fallback takes the last N characters and then lower-cases them; verl-agent lower-cases the
  whole response first. They differ only for the few characters whose lower case has a different
  length (e.g. ``İ``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent_rl.envs.api import AnswerFormat, env_class

OK = "ok"
NOT_A_STRING = "not_a_string"
MISSING_ACTION_TAGS = "missing_action_tags"
MISORDERED_ACTION_TAGS = "misordered_action_tags"
EMPTY_ACTION = "empty_action"
MISSING_THINK_TAGS = "missing_think_tags"
EMPTY_THINK = "empty_think"
CHINESE_CHARACTERS = "chinese_characters"
UNKNOWN_ACTION = "unknown_action"
REASONS = (
    OK,
    NOT_A_STRING,
    MISSING_ACTION_TAGS,
    MISORDERED_ACTION_TAGS,
    EMPTY_ACTION,
    MISSING_THINK_TAGS,
    EMPTY_THINK,
    CHINESE_CHARACTERS,
    UNKNOWN_ACTION,
)

_NOCASE = re.IGNORECASE | re.ASCII
_ACTION_OPEN = re.compile(re.escape("<action>"))
_ACTION_CLOSE = re.compile(re.escape("</action>"))
_ACTION_OPEN_NOCASE = re.compile(re.escape("<action>"), _NOCASE)
_ACTION_CLOSE_NOCASE = re.compile(re.escape("</action>"), _NOCASE)
_THINK_OPEN = re.compile(re.escape("<think>"))
_THINK_CLOSE = re.compile(re.escape("</think>"))
_NON_SPACE = re.compile(r"\S")
_CHINESE = re.compile("[\u4e00-\u9fff]")  # verl-agent's check, verbatim


@dataclass(frozen=True, slots=True)
class ParsedAction:
    """The action to send to the environment, whether the step is well-formed, and why not."""

    action: str
    valid: bool
    reason: str = OK


def env_parse_defaults(env_name: str) -> AnswerFormat:
    """The answer conventions of ``env_name`` (its class's ``answer``); ValueError listing the valid names
    if unknown."""
    return env_class(env_name).answer


def parse_action(
    text: object,
    env_name: str,
    *,
    fallback_chars: int | None = None,
    lowercase: bool | None = None,
) -> ParsedAction:
    """Parse one response into `ParsedAction`; never raises on ``text``.

    Args:
        text: the decoded model response.
        env_name: an environment's name or class path; selects its class's ``answer``
            (`agent_rl.envs.api.AnswerFormat`). An unknown name raises ValueError (a config error).
        fallback_chars: override the tail length sent when the action tags are missing; 0 sends
            an empty action.
        lowercase: override whether the response is lower-cased (action tags matched in any case,
            action lower-cased).
    """
    defaults = env_parse_defaults(env_name)
    tail = defaults.fallback_chars if fallback_chars is None else max(0, int(fallback_chars))
    lower = defaults.lowercase if lowercase is None else bool(lowercase)

    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return ParsedAction("", False, NOT_A_STRING)

    if lower:
        opener, closer = _ACTION_OPEN_NOCASE, _ACTION_CLOSE_NOCASE
    else:
        opener, closer = _ACTION_OPEN, _ACTION_CLOSE
    open_tag = opener.search(text)
    close_tag = closer.search(text) if open_tag else None
    if open_tag is None or close_tag is None:
        fallback = text[-tail:] if tail > 0 else ""
        return ParsedAction(fallback.lower() if lower else fallback, False, MISSING_ACTION_TAGS)
    if close_tag.start() < open_tag.end():
        return ParsedAction("", False, MISORDERED_ACTION_TAGS)

    action = text[open_tag.end() : close_tag.start()].strip()
    if lower:
        action = action.lower()
    if not action:
        return ParsedAction(action, False, EMPTY_ACTION)

    think_open = _THINK_OPEN.search(text)
    think_close = _THINK_CLOSE.search(text, think_open.end()) if think_open else None
    if think_open is None or think_close is None:
        return ParsedAction(action, False, MISSING_THINK_TAGS)
    if _NON_SPACE.search(text, think_open.end(), think_close.start()) is None:
        return ParsedAction(action, False, EMPTY_THINK)

    if _CHINESE.search(text) is not None:
        return ParsedAction(action, False, CHINESE_CHARACTERS)
    if defaults.vocabulary is not None and action not in defaults.vocabulary:
        return ParsedAction(action, False, UNKNOWN_ACTION)
    return ParsedAction(action, True, OK)
