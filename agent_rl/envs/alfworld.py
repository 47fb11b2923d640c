"""ALFWorld (text, TextWorld PDDL engine) as an `agent_rl.envs.api.Environment`.

Games are ALFWorld ``game.tw-pddl`` files played by TextWorld's ``PddlEnv`` with
ALFWorld's own ``AlfredDemangler`` and ``AlfredInfos`` wrappers, exactly what
``AlfredTWEnv`` registers, minus the batched gym layer and the per-step expert.

Where the games come from (``data_dir``, first match wins):

* the ``data_dir`` argument;
* ``$ALFWORLD_DATA/json_2.1.1`` when it holds the downloaded game set
  (``scripts/prepare_alfworld.py``), with splits ``train``, ``valid_seen``,
  ``valid_unseen``;
* the six games shipped in ``agent_rl/envs/alfworld_games`` (one per task type).
  That folder has no split sub-folders, so every split name maps to all six.

A spec is ``{"split": "train", "task_id": 3}`` (index into the sorted game list of
the split) or ``{"game": "<path relative to data_dir, or absolute>"}``. Games are
listed in sorted path order, so a task id means the same game on every machine.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent_rl.envs.api import AnswerFormat, Environment, Info, register_env
from agent_rl.envs.text import (
    CHOOSE_ADMISSIBLE,
    DEFAULT_MAX_ACTION_CHARS,
    DEFAULT_MAX_ENTRY_CHARS,
    THINK_ACT,
    clip,
    from_templates,
)

SHIPPED_GAMES = Path(__file__).parent / "alfworld_games"
SPLITS = ("train", "valid_seen", "valid_unseen")
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
_TASK_PREFIX = "Your task is to: "
_SOLVABLE = re.compile(r'"solvable"\s*:\s*true')


def default_data_dir() -> Path:
    """``$ALFWORLD_DATA/json_2.1.1`` if it holds the game set, else the shipped games."""
    root = os.environ.get("ALFWORLD_DATA")
    if root:
        full = Path(root).expanduser() / "json_2.1.1"
        if any((full / split).is_dir() for split in SPLITS):
            return full
    return SHIPPED_GAMES


@lru_cache(maxsize=32)
def list_games(data_dir: str, split: str, task_types: tuple[str, ...] = TASK_TYPES) -> tuple[str, ...]:
    """Sorted solvable ``game.tw-pddl`` paths of a split, filtered as ``AlfredTWEnv`` does."""
    if split not in SPLITS:
        raise ValueError(f"unknown ALFWorld split {split!r}; valid: {', '.join(SPLITS)}")
    root = Path(data_dir)
    if (root / split).is_dir():
        root = root / split
    games = []
    for traj in sorted(root.rglob("traj_data.json")):
        game = traj.parent / "game.tw-pddl"
        if "movable" in str(traj.parent) or "Sliced" in str(traj.parent) or not game.exists():
            continue
        if json.loads(traj.read_text())["task_type"] not in task_types:
            continue
        if not _SOLVABLE.search(game.read_text()):  # cheaper than parsing thousands of large JSONs
            continue
        games.append(str(game))
    return tuple(games)


def split_specs(split: str, data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One spec per game of a split: ``{"name": "alfworld", "split": ..., "task_id": i}``."""
    games = list_games(str(data_dir or default_data_dir()), split)
    return [{"name": "alfworld", "split": split, "task_id": i} for i in range(len(games))]


def task_type_of(gamefile: str | Path) -> str:
    """ALFWorld task type of a game, from its ``traj_data.json``."""
    traj = Path(gamefile).parent / "traj_data.json"
    return json.loads(traj.read_text())["task_type"]


# ------------------------------------------------------------------------------------------------- prompt
# verl-agent's / EPO's (agent_system/environments/prompts/alfworld.py), verbatim, typos ("observaitons")
# included. The no-history template has no task line: the first observation carries the task. Admissible
# actions are quoted and joined by "\n ", with "help" removed.
# --------------------------------------------------------------------------------------------- ALFWorld
ALFWORLD_TEMPLATE_NO_HIS = (
    "\nYou are an expert agent operating in the ALFRED Embodied Environment.\n"
    "Your current observation is: {current_observation}\n"
    "Your admissible actions of the current situation are: [{admissible_actions}].\n"
    "\n"
    "Now it's your turn to take an action.\n" + THINK_ACT + CHOOSE_ADMISSIBLE
)
ALFWORLD_TEMPLATE = (
    "\nYou are an expert agent operating in the ALFRED Embodied Environment. Your task is to: "
    "{task_description}\n"
    "Prior to this step, you have already taken {step_count} step(s). Below are the most recent "
    "{history_length} observaitons and the corresponding actions you took: {action_history}\n"
    "You are now at step {current_step} and your current observation is: {current_observation}\n"
    "Your admissible actions of the current situation are: [{admissible_actions}].\n"
    "\n"
    "Now it's your turn to take an action.\n" + THINK_ACT + CHOOSE_ADMISSIBLE
)


def format_alfworld_actions(actions: Sequence[str] | None) -> str:
    """verl-agent: each action quoted, joined by ``"\\n "``, ``help`` removed."""
    return "\n ".join(f"'{a}'" for a in actions or () if a != "help")


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
    """The no-history and (past the first step) the history content of one ALFWorld step."""
    return from_templates(
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


@register_env("alfworld")
class ALFWorldEnv(Environment):
    """One ALFWorld game at a time in the real TextWorld engine.

    The first observation is ALFWorld's intro (room description and "Your task is to: ...").
    Actions are matched to the admissible commands after lower-casing and collapsing spaces;
    anything else gives "Nothing happens." Reward is 1.0 on the winning step, else 0.0.
    ``info``: ``task``, ``task_type`` (ALFWorld's type name, e.g. ``pick_and_place_simple``),
    ``gamefile``, ``admissible_actions`` (as ALFWorld lists them, "help" included), ``won``,
    ``score`` (1.0 once won), ``steps``, ``truncated``.

    Args:
        data_dir: folder of games (see module docstring); default `default_data_dir()`.
        max_steps: actions per episode before it is cut (``done``, ``truncated``);
            ALFWorld's own default is 50.
        task_types: restrict the game lists to these ALFWorld task types.
    """

    title = "ALFWorld"
    splits = SPLITS
    checks_task_counts = True  # task ids index the games found under ALFWORLD_DATA
    answer = AnswerFormat(fallback_chars=30, lowercase=True)  # verl-agent's alfworld_projection: [-30:]
    ram_per_env_gb = 0.3
    data_variables = ("ALFWORLD_DATA",)
    paper_splits = {"iid": "valid_seen", "ood": "valid_unseen"}

    @classmethod
    def tasks(cls, split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        data_dir = env_kwargs.get("data_dir") or default_data_dir()
        games = list_games(str(data_dir), split, tuple(env_kwargs.get("task_types") or TASK_TYPES))
        return [({"split": split, "task_id": i}, task_type_of(g)) for i, g in enumerate(games)]

    def task_count(self, split: str) -> int | None:
        return len(self.games(split))

    prompt = staticmethod(turn_prompt)  # the module's templates, above

    @classmethod
    def check(cls, config: Any) -> str | None:
        """An ALFWORLD_DATA without the game set would silently fall back to the six shipped games."""
        chosen = os.environ.get("ALFWORLD_DATA")
        # importing alfworld writes its default, ~/.cache/alfworld (created empty), into ALFWORLD_DATA; that
        # one is not a folder the user chose, and without the game set it means the shipped games
        if not chosen or Path(chosen).expanduser() == Path("~/.cache/alfworld").expanduser():
            return None
        root = Path(chosen).expanduser() / "json_2.1.1"
        if any((root / split).is_dir() for split in SPLITS):
            return None
        return (
            f"ALFWORLD_DATA={chosen} holds no game set ({root}/<split> is missing); fetch it with "
            f"`python scripts/prepare_alfworld.py` on a connected machine, or unset ALFWORLD_DATA to play "
            f"the six shipped games."
        )

    def __init__(
        self,
        data_dir: str | Path | None = None,
        max_steps: int = 50,
        task_types: tuple[str, ...] | list[str] = TASK_TYPES,
    ) -> None:
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
        from textworld.envs import PddlEnv

        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.max_steps = max_steps
        self.task_types = tuple(task_types)
        infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
        self._env = AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))
        self._loaded: str | None = None
        self._steps = 0
        self._done = True
        self._info: Info = {}

    # -- specs -------------------------------------------------------------------------------
    def games(self, split: str = "train") -> tuple[str, ...]:
        """Game files of a split, in task-id order."""
        return list_games(str(self.data_dir), split, self.task_types)

    def resolve(self, spec: dict[str, Any]) -> str:
        """The game file a spec names."""
        if "game" in spec:
            game = Path(spec["game"])
            if not game.is_absolute():
                game = self.data_dir / game
            if game.is_dir():
                game = game / "game.tw-pddl"
            return str(game)
        games = self.games(spec.get("split", "train"))
        if not games:
            raise ValueError(f"no ALFWorld games for split {spec.get('split', 'train')!r} in {self.data_dir}")
        return games[int(spec.get("task_id", 0)) % len(games)]

    # -- episode -----------------------------------------------------------------------------
    def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        if spec.get("name", self.name) != self.name:
            raise ValueError(f"spec is for {spec.get('name')!r}, not {self.name}")
        gamefile = self.resolve(spec)
        if gamefile != self._loaded:
            self._env.load(gamefile)
            self._loaded = gamefile
        state = self._env.reset()
        self._steps = 0
        self._done = False
        obs = state["feedback"]
        task = obs.split(_TASK_PREFIX, 1)[1].strip() if _TASK_PREFIX in obs else ""
        self._info = {
            "task": task,
            "task_type": task_type_of(gamefile),
            "gamefile": gamefile,
            "admissible_actions": list(state["admissible_commands"]),
            "won": False,
            "score": 0.0,
            "steps": 0,
            "truncated": False,
        }
        return obs, dict(self._info)

    def step(self, action: str) -> tuple[str, float, bool, Info]:
        if self._done:
            return "The episode is over.", 0.0, True, dict(self._info)
        # PddlEnv matches the exact command text; anything else is "Nothing happens."
        action = " ".join(str(action).split()).lower()
        state, _, _ = self._env.step(action)
        self._steps += 1
        won = bool(state["won"])
        truncated = not won and self._steps >= self.max_steps
        self._done = won or truncated
        self._info.update(
            admissible_actions=list(state["admissible_commands"]),
            won=won,
            score=1.0 if won else 0.0,
            truncated=truncated,
            steps=self._steps,
        )
        return state["feedback"], float(won), self._done, dict(self._info)

    def close(self) -> None:
        self._loaded = None
        self._done = True
