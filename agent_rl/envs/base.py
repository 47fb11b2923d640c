"""The one interface every text environment implements.

A `spec` is a plain dict taken from a dataset row (for example
``{"name": "alfworld", "split": "train", "task_id": 12}``). The same spec always
yields the same initial state, so every member of a GRPO group starts alike.

``reset(spec) -> (observation, info)``; ``info`` holds at least
``task`` (the task description), ``admissible_actions`` (list[str]) and ``task_type``.

``step(action) -> (observation, reward, done, info)``; ``info`` holds at least
``won`` (bool: the task was completed), ``score`` (the simulator's own progress
measure, normalised to [0, 1]) and ``admissible_actions``.
"""

from __future__ import annotations

import abc
from typing import Any

Info = dict[str, Any]


class TextEnv(abc.ABC):
    """A text environment: reset from a spec, step with a free-text action."""

    name: str = ""

    @abc.abstractmethod
    def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        """Start the episode described by ``spec``; return the first observation and info."""

    @abc.abstractmethod
    def step(self, action: str) -> tuple[str, float, bool, Info]:
        """Apply a free-text action. Never raises on a malformed action."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release simulator resources (JVM, files)."""
