"""``WebShopEnv``: a WebShop session as an `agent_rl.envs.api.Environment`.

``reset({"name": "webshop", "split": "train", "goal_idx": 17})`` starts goal 17 of the train split
(``goal_idx`` counts within the split; ``info["goal_index"]`` is the absolute index). ``step`` takes
``search[<query>]`` or ``click[<clickable>]``; anything else, or a click on something not on the
page (or on ``search``, a no-op upstream), leaves the page as it is with reward 0, as upstream's
``WebAgentTextEnv.step`` does; ``invalid_action_feedback=True`` appends a one-line reason instead.

``info["admissible_actions"]`` is what verl-agent's ``format_avail_actions`` builds from upstream's
``get_available_actions``: ``search[<your query>]`` where the page has a search bar, then
``click[x]`` for every clickable (lower-cased button texts, product asins, option values) in page
order; on the search page that is ``search[<your query>]``, ``click[search]`` (its Search button;
no other page has one).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent_rl.envs.api import AnswerFormat, Environment, Info, register_env
from agent_rl.envs.text import (
    CHOOSE_ADMISSIBLE,
    DEFAULT_MAX_ACTION_CHARS,
    DEFAULT_MAX_ENTRY_CHARS,
    clip,
    pairs_history,
    recent,
)
from agent_rl.envs.webshop.engine import SEP, Session, parse_action
from agent_rl.envs.webshop.goals import NUM_TEST_GOALS, goal_summary
from agent_rl.envs.webshop.world import World, load_world, resolve_data_dir

SEARCH_ACTION = "search[<your query>]"


def split_sizes(
    data_dir: str | os.PathLike | None = None,
    human_goals: bool = False,
    seed: int = 0,
    *,
    catalog: str = "small",
    num_test_goals: int = NUM_TEST_GOALS,
) -> dict[str, int]:
    """Number of goals in each split, for building dataset rows."""
    world = load_world(resolve_data_dir(data_dir), human_goals, seed, None, "heuristic", catalog)
    return {name: len(world.split(name, num_test_goals)) for name in ("train", "eval", "test", "all")}


# ------------------------------------------------------------------------------------------------- prompt
# verl-agent's / EPO's (agent_system/environments/prompts/webshop.py), verbatim, the non-breaking hyphen in
# "e\u2011commerce" included: each admissible action quoted with a trailing comma, one per line;
# observations (current and history) reformatted as EPO's ``format_obs`` does. A history prompt longer than
# 13,000 characters falls back to the no-history template (``WebShopEnv.max_prompt_chars``).
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
    "<think> </think> tags. \n" + CHOOSE_ADMISSIBLE
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
    first, pairs = recent(history, step, history_length)
    pairs = [(format_webshop_observation(str(o), task), a) for o, a in pairs]
    with_his = WEBSHOP_TEMPLATE.format(
        task_description=task_text,
        step_count=step,
        history_length=len(pairs),
        action_history=pairs_history(pairs, first, max_entry_chars, max_action_chars),
        current_step=step + 1,
        current_observation=obs,
        available_actions=actions,
    )
    return no_his, with_his


@register_env("webshop")
class WebShopEnv(Environment):
    """WebShop in text mode on the shipped catalog, or on WebShop's own data files.

    Args:
        data_dir: folder with WebShop's data files (``catalog`` says which); ``None`` reads
            ``$WEBSHOP_DATA`` and falls back to the shipped catalog; ``"builtin"`` always uses the
            shipped catalog.
        catalog: ``"small"`` (``items_shuffle_1000.json`` + ``items_ins_v2_1000.json``, verl-agent's
            ``use_small=True``, the papers' setting) or ``"full"`` (``items_shuffle.json`` +
            ``items_ins_v2.json``); both also need ``items_human_ins.json``.
        human_goals: use the human instructions instead of the synthetic goals (original data only).
        seed: seed of the ranged-price and price-bound draws (part of the task definition).
        num_products: keep only the first N products, like WebShop's ``num_products``.
        num_test_goals: goals[0:N] are the test split, goals[N:] the train split (verl-agent: 500).
        show_attrs: add the ``Attributes`` sub-page (WebShop's ``show_attrs``).
        max_steps: end the episode (reward 0) after this many steps; ``None``: no limit here.
        invalid_action_feedback: append a one-line reason when an action does nothing (upstream
            returns the page unchanged, the default).
        noun_extractor: ``"auto"`` (spaCy where its English pipeline is installed, else the
            heuristic), ``"spacy"`` or ``"heuristic"``, for the type reward (see ``nouns``).
    """

    title = "WebShop"
    splits = ("train", "eval", "test", "all")
    checks_task_counts = True  # task ids index the goals of the catalog found under WEBSHOP_DATA
    answer = AnswerFormat(fallback_chars=20, lowercase=True)  # verl-agent's webshop_projection: [-20:]
    max_prompt_chars = 13000  # EPO: a longer history prompt falls back to the no-history template
    ram_per_env_gb = 0.4
    data_variables = ("WEBSHOP_DATA",)
    reports_score = True  # the papers report WebShop's 0-1 purchase reward x 100 beside success

    @classmethod
    def tasks(cls, split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        sizes = split_sizes(
            env_kwargs.get("data_dir"),
            env_kwargs.get("human_goals", False),
            env_kwargs.get("seed", 0),
            catalog=env_kwargs.get("catalog", "small"),
            num_test_goals=env_kwargs.get("num_test_goals", NUM_TEST_GOALS),
        )
        if split not in sizes:
            raise ValueError(f"unknown WebShop split {split!r}; valid: {', '.join(sizes)}")
        return [({"split": split, "goal_idx": i}, "webshop") for i in range(sizes[split])]

    def task_count(self, split: str) -> int | None:
        return len(self.world.split(split, self.num_test_goals))

    prompt = staticmethod(turn_prompt)  # the module's templates, above

    @classmethod
    def check(cls, config: Any) -> str | None:
        """A WEBSHOP_DATA folder must hold the chosen catalog's files."""
        if not os.environ.get("WEBSHOP_DATA"):
            return None
        from agent_rl.envs.webshop.catalog import CATALOGS, HUMAN_GOALS_FILE

        catalog = str((config.env.get("env_kwargs") or {}).get("catalog", "small"))
        folder = Path(os.environ["WEBSHOP_DATA"]).expanduser()
        missing = [f for f in (*CATALOGS.get(catalog, ()), HUMAN_GOALS_FILE) if not (folder / f).is_file()]
        if not missing:
            return None
        full = " --full" if catalog == "full" else ""
        return (
            f"WEBSHOP_DATA={folder} lacks {', '.join(missing)} (catalog={catalog}); fetch them with "
            f"`python scripts/prepare_webshop.py {folder}{full}` on a connected machine, or unset "
            f"WEBSHOP_DATA to use the shipped catalog."
        )

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        *,
        catalog: str = "small",
        human_goals: bool = False,
        seed: int = 0,
        num_products: int | None = None,
        num_test_goals: int = NUM_TEST_GOALS,
        show_attrs: bool = False,
        max_steps: int | None = None,
        invalid_action_feedback: bool = False,
        noun_extractor: str = "auto",
    ):
        self.world: World = load_world(
            resolve_data_dir(data_dir), human_goals, seed, num_products, noun_extractor, catalog
        )
        self.num_test_goals = num_test_goals
        self.show_attrs = show_attrs
        self.max_steps = max_steps
        self.invalid_action_feedback = invalid_action_feedback
        self.session: Session | None = None
        self.goal_index = -1
        self.steps = 0
        self.done = False

    # ----- the simulator -----------------------------------------------------------------------------
    def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        """Start the goal ``spec["goal_idx"]`` of ``spec["split"]`` (default "train")."""
        if spec.get("name", self.name) != self.name:
            raise ValueError(f"spec is for {spec.get('name')!r}, not webshop")
        split = spec.get("split", "train")
        indices = self.world.split(split, self.num_test_goals)
        goal_idx = int(spec["goal_idx"])
        if not 0 <= goal_idx < len(indices):
            raise IndexError(f"goal_idx {goal_idx} out of range for split {split!r} ({len(indices)} goals)")
        self.goal_index = indices[goal_idx]
        self.session = Session(self.world, self.world.goals[self.goal_index], self.show_attrs)
        self.steps, self.done = 0, False
        return self.session.page.text, self._info(valid=True)

    def step(self, action: str) -> tuple[str, float, bool, Info]:
        """Apply ``search[...]`` or ``click[...]``; never raises on a malformed action."""
        if self.session is None:
            raise RuntimeError("call reset(spec) before step()")
        if self.done:
            return self.session.page.text, 0.0, True, self._info(valid=False, message="The episode is over.")
        self.steps += 1
        name, arg = parse_action(str(action).strip())
        page = self.session.page
        reward, message = 0.0, ""
        if name == "search" and arg:
            self.session.search(arg)
        elif name == "click" and arg is not None and arg != "search" and arg in page.clickables:
            self.done = self.session.click(arg)
            reward = self.session.reward if self.done else 0.0
        elif name == "click" and arg == "search":
            message = "click[search] does nothing; use search[<query>]."
        elif name in ("search", "click"):
            message = f"Invalid action: '{arg}' is not a clickable of this page." if arg else "Empty action."
        else:
            message = "Invalid action: use search[<query>] or click[<clickable>]."
        truncated = False
        if not self.done and self.max_steps is not None and self.steps >= self.max_steps:
            self.done = truncated = True
        obs = self.session.page.text
        if message and self.invalid_action_feedback:
            obs = f"{obs}{SEP}{message}"
        info = self._info(valid=not message, message=message)
        info["truncated"] = truncated
        return obs, reward, self.done, info

    # ----- helpers -----------------------------------------------------------------------------
    def admissible_actions(self) -> list[str]:
        """``search[<your query>]`` where there is a search bar, then ``click[x]`` for each clickable."""
        page = self.session.page
        actions = [SEARCH_ACTION] if page.has_search_bar else []
        return actions + [f"click[{c}]" for c in page.clickables]

    def _info(self, valid: bool, message: str = "") -> Info:
        s = self.session
        finished = s.kind == "done"
        info: Info = {
            "won": finished and s.reward == 1.0,
            "score": s.reward if finished else 0.0,
            "task": s.goal.instruction_text,
            "admissible_actions": self.admissible_actions(),
            "task_type": s.goal.category,
            "valid_action": valid,
            "page": s.kind,
            "goal_index": self.goal_index,
            "goal": goal_summary(s.goal),
        }
        if message:
            info["message"] = message
        if finished:
            info["purchased"] = {"asin": s.asin, "options": dict(s.options)}
            info["reward_info"] = dict(s.reward_info)
        return info
