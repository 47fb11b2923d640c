"""Tool calls as an answer format (Hermes, the format of Qwen2.5's chat template).

The model answers with text and any number of ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``
blocks, or with its final answer ``<answer>…</answer>``. `parse_tool_turn` turns that text into a
`ToolTurn`: the well-formed calls (at most ``max_calls``), one error message per malformed call (bad JSON,
unknown tool, arguments off the tool's JSON schema, calls over the cap), and the final answer if any. It
never raises on the model's text: the answer is hostile input.

verl has its own Hermes parser (``verl.experimental.agent_loop.tool_parser.HermesToolParser``); it works on
token ids and logs and drops malformed calls, while the model here must be told what was wrong with each
call, so this one works on the decoded text and keeps the errors.

Choices worth knowing:

- A block is the text from ``<tool_call>`` to the next ``</tool_call>``; a ``<tool_call>`` with no end tag
  is a malformed call (``unclosed_tool_call``) and takes the rest of the text with it. Generation that
  stops on ``</tool_call>`` must keep the stop string in the output.
- ``"arguments"`` may be a JSON object or a string holding one (some models double-encode it).
- JSON that Python accepts but JSON does not (``NaN``, ``Infinity``, numbers that overflow a float) and
  values nested deeper than `MAX_DEPTH` are malformed: later code re-encodes the arguments.
- A turn with both calls and an answer keeps both; the environment decides what it means.
- ``content`` is the text with the tool-call blocks removed, stripped (the chat template puts the newline
  back when it renders the calls after the content). ``answer`` is the text between the last
  ``</answer>`` outside the calls and the last ``<answer>`` before it, stripped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

CALL_START, CALL_END = "<tool_call>", "</tool_call>"
MAX_DEPTH = 64  # deepest nesting accepted in a call's JSON
MAX_DIGITS = 100  # longest integer accepted in a call's JSON (Python's own limit is 4300 digits)
MAX_MESSAGE = 300  # longest error message sent back to the model (characters)

# The values of ToolTurn.reason.
BAD_JSON = "bad_json"
UNKNOWN_TOOL = "unknown_tool"
BAD_ARGUMENTS = "bad_arguments"
TOO_MANY_CALLS = "too_many_calls"
UNCLOSED_TOOL_CALL = "unclosed_tool_call"
NO_CALL_OR_ANSWER = "no_call_or_answer"
REASONS = (BAD_JSON, UNKNOWN_TOOL, BAD_ARGUMENTS, TOO_MANY_CALLS, UNCLOSED_TOOL_CALL, NO_CALL_OR_ANSWER)


@dataclass(frozen=True)
class ToolCall:
    """One well-formed call: a declared tool and arguments that satisfy its schema."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolTurn:
    """One model turn of a tool environment, parsed."""

    calls: tuple[ToolCall, ...] = ()
    errors: tuple[str, ...] = ()  # one message per malformed call, sent back to the model as a tool message
    answer: str | None = None  # the final answer's text (None: the turn gave none)
    content: str = ""  # the text outside the tool calls
    reason: str = ""  # why the turn is invalid ("" when valid)

    @property
    def valid(self) -> bool:
        """A turn is valid when it has no malformed call and does something (a call or an answer)."""
        return not self.errors and (bool(self.calls) or self.answer is not None)


class _Malformed(Exception):
    """A call that cannot be run: its reason (one of REASONS) and the message for the model."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


def tool_names(tools: Sequence[dict]) -> list[str]:
    """The names of OpenAI function schemas ``{"type": "function", "function": {"name": …}}``, in order."""
    return [tool["function"]["name"] for tool in tools]


def parse_tool_turn(text: str, tools: Sequence[dict], max_calls: int, answer_tag: str = "answer") -> ToolTurn:
    """Parse one model turn: its Hermes tool calls (checked against ``tools``), errors and final answer.

    ``tools`` are OpenAI function schemas; the first ``max_calls`` blocks are parsed, the rest are not run
    and one error says so. ``answer`` is the text inside the last ``<answer_tag>…</answer_tag>`` outside
    the tool calls. Never raises on ``text``; raises ValueError on a tool whose ``parameters`` is not a
    valid JSON schema (a configuration error, not the model's).
    """
    if max_calls < 0:
        raise ValueError(f"max_calls must be >= 0, got {max_calls}")
    by_name = {tool["function"]["name"]: tool["function"] for tool in tools}
    blocks, content = _split_blocks(text)
    calls: list[ToolCall] = []
    errors: list[tuple[str, str]] = []  # (reason, message)
    for index, (body, closed) in enumerate(blocks[:max_calls], start=1):
        try:
            calls.append(_parse_call(body, closed, by_name))
        except _Malformed as bad:
            errors.append((bad.reason, _short(f"tool call {index}: {bad.message}")))
    if len(blocks) > max_calls:
        errors.append((TOO_MANY_CALLS, _too_many(len(blocks), max_calls)))
    answer = _last_tagged(content, answer_tag)
    return ToolTurn(
        calls=tuple(calls),
        errors=tuple(message for _, message in errors),
        answer=answer,
        content=content.strip(),
        reason=_turn_reason(errors, calls, answer),
    )


def render_tool_errors(turn: ToolTurn) -> list[dict[str, str]]:
    """The turn's errors as tool messages (``{"role": "tool", "content": …}``), one per malformed call."""
    return [{"role": "tool", "content": message} for message in turn.errors]


def _split_blocks(text: str) -> tuple[list[tuple[str, bool]], str]:
    """The tool-call blocks of ``text`` as (body, closed) and the text outside them. An unclosed
    ``<tool_call>`` runs to the end of the text."""
    blocks: list[tuple[str, bool]] = []
    outside: list[str] = []
    position = 0
    while (start := text.find(CALL_START, position)) != -1:
        outside.append(text[position:start])
        body_start = start + len(CALL_START)
        end = text.find(CALL_END, body_start)
        if end == -1:
            blocks.append((text[body_start:], False))
            return blocks, "".join(outside)
        blocks.append((text[body_start:end], True))
        position = end + len(CALL_END)
    outside.append(text[position:])
    return blocks, "".join(outside)


def _parse_call(body: str, closed: bool, by_name: dict[str, dict]) -> ToolCall:
    """One block's call, or _Malformed saying why it cannot run."""
    if not closed:
        raise _Malformed(UNCLOSED_TOOL_CALL, f"{CALL_START} is not closed by {CALL_END}")
    call = _decode(body, BAD_JSON, "invalid JSON")
    if not isinstance(call, dict):
        raise _Malformed(BAD_JSON, f'expected {{"name": …, "arguments": {{…}}}}, got {_json_type(call)}')
    name = call.get("name")
    if not isinstance(name, str):
        raise _Malformed(BAD_JSON, f'"name" must be a string naming a tool; available: {_listing(by_name)}')
    if name not in by_name:
        raise _Malformed(UNKNOWN_TOOL, f"unknown tool {_quote(name)}; available: {_listing(by_name)}")
    arguments = _arguments(call)
    _check_schema(name, arguments, by_name[name].get("parameters") or {"type": "object"})
    return ToolCall(name=name, arguments=arguments)


def _arguments(call: dict) -> dict[str, Any]:
    """The call's arguments: a JSON object, or a string that decodes to one."""
    if "arguments" not in call:
        raise _Malformed(BAD_ARGUMENTS, '"arguments" is missing (give {} for none)')
    arguments = call["arguments"]
    if isinstance(arguments, str):
        arguments = _decode(arguments, BAD_ARGUMENTS, '"arguments" is a string but not valid JSON')
    if not isinstance(arguments, dict):
        raise _Malformed(BAD_ARGUMENTS, f'"arguments" must be a JSON object, got {_json_type(arguments)}')
    return arguments


def _check_schema(name: str, arguments: dict, schema: dict) -> None:
    """Raise _Malformed(bad_arguments) with jsonschema's message when ``arguments`` is off ``schema``."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    except RecursionError:
        raise _Malformed(BAD_ARGUMENTS, "arguments nested too deeply") from None
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        at = f" (at {where})" if where else ""
        message = f"arguments of {_quote(name)} do not match its schema{at}: {error.message}"
        raise _Malformed(BAD_ARGUMENTS, message)


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str):
    """A jsonschema validator for a tool's parameters (checked once: a bad schema is a ValueError)."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as error:
        raise ValueError(f"tool parameters are not a valid JSON schema: {error.message}") from error
    return cls(schema)


def _decode(text: str, reason: str, what: str) -> Any:
    """Strict JSON (no NaN/Infinity, finite floats, integers of at most MAX_DIGITS digits, at most MAX_DEPTH
    deep), or _Malformed(reason)."""
    if not text.strip():
        raise _Malformed(reason, f"{what}: empty")
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_short_int
        )
    except json.JSONDecodeError as error:
        raise _Malformed(reason, f"{what}: {error.msg} at line {error.lineno} column {error.colno}") from None
    except ValueError as error:  # NaN/Infinity, an overflowing float, a too long integer
        raise _Malformed(reason, f"{what}: {error}") from None
    except RecursionError:
        raise _Malformed(reason, f"{what}: nested too deeply") from None
    if _depth_over(value, MAX_DEPTH):
        raise _Malformed(reason, f"{what}: nested deeper than {MAX_DEPTH} levels")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {_short(literal, 40)} is out of range")
    return value


def _short_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_DIGITS:
        raise ValueError(f"integer of {digits} digits is too long (at most {MAX_DIGITS})")
    return int(literal)


def _depth_over(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` deep in ``value`` (without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _last_tagged(text: str, tag: str) -> str | None:
    """The stripped text between the last ``</tag>`` of ``text`` and the last ``<tag>`` before it; None if
    there is none. (Two reverse searches: a regex would be quadratic on many unclosed tags.)"""
    end = text.rfind(f"</{tag}>")
    start = text.rfind(f"<{tag}>", 0, max(end, 0))
    if end == -1 or start == -1:
        return None
    return text[start + len(tag) + 2 : end].strip()


def _turn_reason(errors: list[tuple[str, str]], calls: list[ToolCall], answer: str | None) -> str:
    """The first error's reason; no_call_or_answer when the turn does nothing; "" when valid."""
    if errors:
        return errors[0][0]
    return "" if calls or answer is not None else NO_CALL_OR_ANSWER


def _too_many(count: int, max_calls: int) -> str:
    skipped = f"call {max_calls + 1}" if count == max_calls + 1 else f"calls {max_calls + 1}-{count}"
    return f"too many tool calls: {count} in one turn, at most {max_calls} are run; {skipped} not run"


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _listing(by_name: dict[str, dict]) -> str:
    return ", ".join(by_name) or "(no tools)"


def _quote(name: str) -> str:
    """A model-written name for a message: repr (escapes control characters and lone surrogates), short."""
    return _short(repr(name), 60)


def _short(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
