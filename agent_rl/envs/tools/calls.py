"""Tool calls as an answer format (Hermes, the format of Qwen2.5's chat template).

The model answers with text and any number of ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``
blocks, or with its final answer ``<answer>…</answer>``. `parse_tool_turn` turns that text into a
`ToolTurn`: the well-formed calls (at most ``max_calls``), one error message per malformed call (bad JSON,
unknown tool, arguments off the tool's JSON schema, calls over the cap), and the final answer if any. It
never raises on the model's text: the answer is hostile input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
