"""FrozenLake (gymnasium's ``FrozenLake-v1``) as a multi-turn text environment.

The learning check of agent_rl: a grid world small enough that the tiny model can learn it on a laptop
CPU in minutes, with the same sparse reward and the same per-step layout as the real environments.

- Maps: gymnasium's ``generate_random_map(size, p, seed)`` (a path from S to G always exists), one map per
  task, seeded by the task: train task ``i`` uses seed ``i``, test task ``i`` seed ``TEST_SEED_OFFSET + i``,
  so a task id names the same map on every machine and the validation maps never appear in training.
  ``size`` (the side of the square grid), ``p`` (the probability that a cell is frozen) and ``is_slippery``
  are constructor arguments (``env.env_kwargs`` in the config).
- Observation: the grid as text, one row per line, as RAGEN renders its grid worlds: ``P`` the player,
  ``_`` frozen ice (the start cell too), ``O`` a hole, ``G`` the goal, ``X`` the player in a hole,
  ``√`` the player on the goal.
- Actions: ``up``, ``down``, ``left``, ``right`` (case and surrounding spaces ignored). Any other text is an
  invalid step: the state is unchanged, the observation says so, and the step is counted
  (``info["invalid_actions"]``); the agent loop's parser (`agent_rl.rollout.parsing`) marks the same step
  invalid, which costs ``env.invalid_action_penalty``.
- Reward: 1.0 on reaching the goal, else 0.0; the episode ends in a hole, on the goal, or after
  ``max_steps`` actions (``truncated``; invalid ones count).
- ``task_type`` is the map size (``"4x4"``), so validation reports success per map size
  (``val-aux/frozenlake/4x4/won/mean@1``).

A spec is ``{"split": "train", "task_id": 3}``, or ``{"desc": ["SFF", "FHF", "FFG"]}`` for a hand-written map.
With ``is_slippery`` the slips are drawn from a generator seeded by the map seed at every reset, so all
members of a GRPO group face the same slips for the same actions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from agent_rl.envs.api import AnswerFormat, Environment, Info, register_env
from agent_rl.envs.text import DEFAULT_MAX_ACTION_CHARS, DEFAULT_MAX_ENTRY_CHARS, clip, from_templates

SPLITS = {"train": 10_000, "test": 1_000}  # tasks per split: map seeds 0.. and TEST_SEED_OFFSET..
TEST_SEED_OFFSET = 1_000_000
ACTIONS = ("left", "down", "right", "up")  # gymnasium's action ids 0, 1, 2, 3
ADMISSIBLE = ("up", "down", "left", "right")  # as the prompt lists them
MIN_SIZE, MAX_SIZE = 2, 16
SYMBOLS = {"S": "_", "F": "_", "H": "O", "G": "G"}
TASK = "Reach the goal (G) without falling into a hole (O). You are P; _ is frozen ice."


def check_size(size: Any) -> int:
    """The map size as an int, or ValueError saying which sizes are valid."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"FrozenLake map size must be an integer from {MIN_SIZE} to {MAX_SIZE}, not {size!r}"
        )
    return size


def map_seed(split: str, task_id: int) -> int:
    """The seed of ``generate_random_map`` for a task."""
    if split not in SPLITS:
        raise ValueError(f"unknown FrozenLake split {split!r}; valid: {', '.join(SPLITS)}")
    return int(task_id) + (TEST_SEED_OFFSET if split == "test" else 0)


def make_map(size: int, p: float, seed: int) -> list[str]:
    """gymnasium's random map: rows of ``S`` (start, top left), ``F``, ``H``, ``G`` (goal, bottom right)."""
    from gymnasium.envs.toy_text.frozen_lake import generate_random_map

    return generate_random_map(size=check_size(size), p=p, seed=seed)


def split_specs(split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """One spec per task of a split (the first ``limit``)."""
    map_seed(split, 0)
    count = SPLITS[split] if limit is None else min(int(limit), SPLITS[split])
    return [{"name": "frozenlake", "split": split, "task_id": i} for i in range(count)]


def render(desc: Any, row: int, col: int) -> str:
    """The grid as text with the player at (row, col); ``desc`` holds rows of ``S/F/H/G`` (str, or gymnasium's
    byte arrays)."""
    lines = []
    for r, cells in enumerate(desc):
        out = []
        for c, cell in enumerate(cells):
            cell = cell.decode() if isinstance(cell, bytes) else str(cell)
            if (r, c) == (row, col):
                out.append({"H": "X", "G": "√"}.get(cell, "P"))
            else:
                out.append(SYMBOLS[cell])
        lines.append(" ".join(out))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- prompt
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


def turn_prompt(
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
    return from_templates(
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


# Short thoughts in the tiny model's format lesson: the action is one token of the answer, and a token-mean
# loss gives it a larger share of the gradient in a short answer.
LESSON_THOUGHTS = ("Go.", "Move on.", "Avoid holes.", "To the goal.", "Try this.")


@register_env("frozenlake")
class FrozenLakeEnv(Environment):
    """One FrozenLake map at a time, played through gymnasium's ``FrozenLake-v1``.

    ``info``: ``task``, ``task_type`` (``"<size>x<size>"``), ``admissible_actions``, ``won``, ``score``
    (1.0 once won), ``steps``, ``invalid_actions``, ``truncated``, ``map`` (the rows of the map),
    ``map_seed`` (None for a hand-written map).

    Args:
        size: side of the square map, 2 to 16 (a ValueError names the range otherwise).
        p: probability that a generated cell is frozen (gymnasium's default 0.8).
        is_slippery: gymnasium's slippery ice (the move goes sideways with probability 2/3).
        max_steps: actions per episode, invalid ones included, before it is cut.
    """

    title = "FrozenLake"
    splits = tuple(SPLITS)
    # verl-agent's grid-world projections (Sokoban's): a fixed vocabulary, no tail sent without action tags
    answer = AnswerFormat(fallback_chars=0, lowercase=True, vocabulary=("up", "down", "left", "right"))
    ram_per_env_gb = 0.2

    @classmethod
    def tasks(cls, split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        size = check_size(env_kwargs.get("size", 4))
        return [({"split": split, "task_id": s["task_id"]}, f"{size}x{size}") for s in split_specs(split)]

    prompt = staticmethod(turn_prompt)  # the module's templates, above

    @classmethod
    def lesson_corpus(cls) -> list[str]:
        """The prompt's text and 200 grids, for the tiny model's ``frozenlake`` lesson (the default corpus
        leaves them out, so the default build is unchanged)."""
        rng = random.Random(0)
        out = [FROZENLAKE_TEMPLATE_NO_HIS, FROZENLAKE_TEMPLATE, TASK]
        out += [f"<think>I will go {a}.</think><action>{a}</action>" for a in ACTIONS]
        for seed in range(200):
            size = 3 + seed % 3
            grid = make_map(size, 0.8, seed)
            out.append(render(grid, rng.randrange(size), rng.randrange(size)))
        return out

    @classmethod
    def lesson_example(cls, rng: random.Random) -> tuple[list[dict[str, str]], str]:
        """A real first-step prompt (random map of side 3-5, random position), answered with a random
        direction."""
        size = rng.randint(3, 5)
        grid = make_map(size, 0.8, rng.randrange(10**6))
        observation = render(grid, rng.randrange(size), rng.randrange(size))
        content, _ = cls.prompt(TASK, 0, [], observation, ADMISSIBLE, 0)
        action = rng.choice(ADMISSIBLE)
        return [{"role": "user", "content": content}], (
            f"<think>{rng.choice(LESSON_THOUGHTS)}</think><action>{action}</action>"
        )

    def __init__(self, size: int = 4, p: float = 0.8, is_slippery: bool = False, max_steps: int = 10) -> None:
        self.size = check_size(size)
        self.p = float(p)
        self.is_slippery = bool(is_slippery)
        self.max_steps = int(max_steps)
        self._env = None
        self._desc: tuple[str, ...] | None = None
        self._done = True
        self._info: Info = {}

    def _load(self, desc: list[str]) -> None:
        import gymnasium

        if self._env is None or tuple(desc) != self._desc:
            if self._env is not None:
                self._env.close()
            # no TimeLimit: max_steps is ours, and counts invalid steps too
            self._env = gymnasium.make(
                "FrozenLake-v1", desc=list(desc), is_slippery=self.is_slippery, max_episode_steps=None
            ).unwrapped
            self._desc = tuple(desc)

    def _observation(self) -> str:
        row, col = divmod(int(self._env.s), int(self._env.ncol))
        return render(self._env.desc, row, col)

    def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        if spec.get("name", self.name) != self.name:
            raise ValueError(f"spec is for {spec.get('name')!r}, not {self.name}")
        if "desc" in spec:
            desc, seed = [str(r) for r in spec["desc"]], None
        else:
            seed = map_seed(spec.get("split", "train"), spec.get("task_id", 0))
            desc = make_map(self.size, self.p, seed)
        self._load(desc)
        self._env.reset(seed=seed if seed is not None else 0)
        self._done = False
        self._info = {
            "task": TASK,
            "task_type": f"{len(desc)}x{len(desc[0])}",
            "admissible_actions": list(ADMISSIBLE),
            "won": False,
            "score": 0.0,
            "steps": 0,
            "invalid_actions": 0,
            "truncated": False,
            "map": list(desc),
            "map_seed": seed,
        }
        return self._observation(), dict(self._info)

    def step(self, action: str) -> tuple[str, float, bool, Info]:
        if self._done:
            return "The episode is over.", 0.0, True, dict(self._info)
        text = " ".join(str(action).split()).lower()
        self._info["steps"] += 1
        if text in ACTIONS:
            _, reward, terminated, _, _ = self._env.step(ACTIONS.index(text))
            observation = self._observation()
        else:
            reward, terminated = 0.0, False
            self._info["invalid_actions"] += 1
            shown = text if len(text) <= 40 else text[:40] + "..."
            observation = (
                f"Invalid action '{shown}'; the admissible actions are up, down, left, right.\n"
                + self._observation()
            )
        won = bool(reward > 0)
        truncated = not terminated and self._info["steps"] >= self.max_steps
        self._done = bool(terminated) or truncated
        self._info.update(won=won, score=1.0 if won else 0.0, truncated=truncated)
        return observation, float(won), self._done, dict(self._info)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
        self._env, self._desc, self._done = None, None, True
