"""An environment from the user's own package (agent_rl names it nowhere): a corridor of rooms, for the e2e
test that trains on it (tests/e2e/test_environments.py) and the environment API's tests.

The agent stands in room 0 of a corridor of ``rooms`` rooms; a key lies in one room. Three task types:

- ``reach``: go to the last room;
- ``fetch``: take the key and bring it back to room 0;
- ``unlock``: take the key and open the door at the end of the corridor.

Actions: ``go left``, ``go right``, ``take key``, ``open door``, ``look`` (the admissible ones are listed
every turn). Task ``i`` of a split is deterministic: its type is ``TYPES[i % 3]`` and its key's room is
seeded by the split and ``i``. Reward 1 on success; the episode ends on success or after ``max_steps``
actions.
"""

from __future__ import annotations

import random
from typing import Any

from agent_rl.envs.api import AnswerFormat, Environment
from agent_rl.envs.text import CHOOSE_ADMISSIBLE, THINK_ACT, clip, from_templates

TYPES = ("reach", "fetch", "unlock")
GOALS = {
    "reach": "go to the last room of the corridor",
    "fetch": "take the key and bring it back to the first room",
    "unlock": "take the key and open the door at the end of the corridor",
}
SIZES = {"train": 60, "test": 12}
FIRST = "A corridor game. Your task is to: {task_description}\nYou see: {current_observation}\n"
LATER = (
    "A corridor game. Your task is to: {task_description}\nYour last {history_length} of {step_count} "
    "step(s): {action_history}\nStep {current_step}, you see: {current_observation}\n"
)
TAIL = "Admissible actions: [{admissible_actions}].\n" + THINK_ACT + CHOOSE_ADMISSIBLE


class Corridor(Environment):
    """The corridor game (module docstring); ``rooms`` is its constructor argument (``env.env_kwargs``)."""

    name = "corridor"
    title = "Corridor"
    splits = tuple(SIZES)
    answer = AnswerFormat(fallback_chars=0, lowercase=True)
    ram_per_env_gb = 0.2

    def __init__(self, rooms: int = 4, max_steps: int = 8) -> None:
        self.rooms, self.max_steps = int(rooms), int(max_steps)
        self.state: dict[str, Any] = {}

    @classmethod
    def tasks(cls, split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        if split not in SIZES:
            raise ValueError(f"unknown corridor split {split!r}; valid: {', '.join(SIZES)}")
        return [({"split": split, "task_id": i}, TYPES[i % len(TYPES)]) for i in range(SIZES[split])]

    @classmethod
    def prompt(
        cls,
        task,
        step,
        history,
        observation,
        admissible_actions,
        history_length,
        *,
        max_entry_chars=4000,
        max_action_chars=256,
    ):
        actions = ", ".join(admissible_actions or ())
        return from_templates(
            FIRST + TAIL,
            LATER + TAIL,
            task,
            step,
            history,
            clip(observation, max_entry_chars),
            actions,
            history_length,
            max_entry_chars,
            max_action_chars,
        )

    def reset(self, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        split, task_id = spec.get("split", "train"), int(spec["task_id"])
        if split not in SIZES or not 0 <= task_id < SIZES[split]:
            raise ValueError(f"no corridor task {task_id} in split {split!r}")
        kind = TYPES[task_id % len(TYPES)]
        key = random.Random(f"{split}-{task_id}").randrange(1, self.rooms)
        self.state = {"kind": kind, "room": 0, "key": key, "held": False, "open": False, "steps": 0}
        return self._observation(), self._info(won=False)

    def step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        s, text = self.state, " ".join(str(action).lower().split())
        s["steps"] += 1
        if text == "go left" and s["room"] > 0:
            s["room"] -= 1
        elif text == "go right" and s["room"] < self.rooms - 1:
            s["room"] += 1
        elif text == "take key" and s["room"] == s["key"] and not s["held"]:
            s["held"] = True
        elif text == "open door" and s["held"] and s["room"] == self.rooms - 1:
            s["open"] = True
        won = {
            "reach": s["room"] == self.rooms - 1,
            "fetch": s["held"] and s["room"] == 0,
            "unlock": s["open"],
        }[s["kind"]]
        done = won or s["steps"] >= self.max_steps
        return self._observation(), float(won), done, self._info(won=won)

    def _observation(self) -> str:
        s = self.state
        key = " A key lies here." if s["room"] == s["key"] and not s["held"] else ""
        door = " A door is at the end." if s["room"] == self.rooms - 1 else ""
        return f"room {s['room']} of {self.rooms}.{key}{door}" + (" You hold the key." if s["held"] else "")

    def _info(self, won: bool) -> dict[str, Any]:
        s = self.state
        actions = (
            ["look"]
            + (["go left"] if s["room"] > 0 else [])
            + (["go right"] if s["room"] < self.rooms - 1 else [])
        )
        if s["room"] == s["key"] and not s["held"]:
            actions.append("take key")
        if s["held"] and s["room"] == self.rooms - 1:
            actions.append("open door")
        return {
            "task": GOALS[s["kind"]],
            "task_type": s["kind"],
            "admissible_actions": actions,
            "won": bool(won),
            "score": 1.0 if won else 0.0,
        }
