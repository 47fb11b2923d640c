"""ALFWorld on the real TextWorld engine: every shipped game is won by its expert plan."""

from __future__ import annotations

import json
import random
import shutil
import string
from pathlib import Path

import pytest

from agent_rl.envs.alfworld import (
    SHIPPED_GAMES,
    TASK_TYPES,
    ALFWorldEnv,
    default_data_dir,
    list_games,
    split_specs,
)
from agent_rl.envs.alfworld_games.author import SCENES, problem_pddl

pytestmark = pytest.mark.env

SHIPPED = sorted(str(p) for p in SHIPPED_GAMES.rglob("game.tw-pddl"))


@pytest.fixture(scope="module")
def env():
    return ALFWorldEnv(data_dir=SHIPPED_GAMES)


def test_one_shipped_game_per_task_type(env):
    games = env.games("train")
    assert len(games) == 6 and list(games) == SHIPPED
    types = sorted(json.loads((Path(g).parent / "traj_data.json").read_text())["task_type"] for g in games)
    assert types == sorted(TASK_TYPES)
    assert env.games("valid_unseen") == games  # the shipped folder has no split sub-folders
    assert split_specs("train", SHIPPED_GAMES)[5] == {"name": "alfworld", "split": "train", "task_id": 5}


@pytest.mark.parametrize("task_id", range(6))
def test_expert_plan_wins(env, task_id):
    gamefile = env.games("train")[task_id]
    plan = json.loads(Path(gamefile).read_text())["walkthrough"]
    obs, info = env.reset({"split": "train", "task_id": task_id})
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-") and info["task"]
    assert info["task_type"] in TASK_TYPES and info["admissible_actions"]
    for i, action in enumerate(plan):
        assert action in info["admissible_actions"]
        obs, reward, done, info = env.step(action)
        assert done == (i == len(plan) - 1)
    assert info["won"] and reward == 1.0 and info["score"] == 1.0


def test_shipped_problems_match_their_authoring_code():
    for scene in SCENES:
        game = json.loads((SHIPPED_GAMES / scene.dirname / "game.tw-pddl").read_text())
        assert game["pddl_problem"] == problem_pddl(scene) and game["solvable"] is True


def test_two_resets_from_one_spec_are_identical(env):
    spec = {"split": "train", "task_id": 4}
    first = env.reset(spec)
    env.step(first[1]["admissible_actions"][0])
    env.reset({"split": "train", "task_id": 1})
    assert env.reset(spec) == first


def test_max_steps_truncates():
    env = ALFWorldEnv(data_dir=SHIPPED_GAMES, max_steps=3)
    env.reset({"task_id": 0})
    for _ in range(3):
        _, reward, done, info = env.step("look")
    assert done and info["truncated"] and not info["won"] and reward == 0.0
    assert env.step("look")[2]  # stays done


def test_fifty_random_and_garbage_actions_never_raise(env):
    rng = random.Random(0)
    junk = ["", " ", "\n", "\x00", "é漢字🙂", "go to", "take", "move mug 1 to", "help", "a" * 3000]
    obs, info = env.reset({"task_id": 2})
    for i in range(50):
        if i % 3 == 0:
            action = rng.choice(info["admissible_actions"])
        elif i % 3 == 1:
            action = rng.choice(junk)
        else:
            action = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 80)))
        obs, reward, done, info = env.step(action)
        assert isinstance(obs, str) and reward in (0.0, 1.0)
        if done:
            obs, info = env.reset({"task_id": 2})


def test_full_game_set_from_alfworld_data(tmp_path, monkeypatch):
    """With ``$ALFWORLD_DATA/json_2.1.1/<split>`` present, games come from there, per split."""
    root = tmp_path / "json_2.1.1"
    names = sorted(p.parent.parent.name for p in SHIPPED_GAMES.rglob("game.tw-pddl"))
    for split, picked in (("train", names[:4]), ("valid_seen", names[4:5]), ("valid_unseen", names[5:])):
        for name in picked:
            shutil.copytree(SHIPPED_GAMES / name, root / split / name)
    # A game ALFWorld would skip (unsolvable) must be skipped here too.
    bad = root / "train" / "zz_unsolvable" / "trial_T0"
    shutil.copytree(SHIPPED_GAMES / names[0] / "trial_T0", bad)
    game = json.loads((bad / "game.tw-pddl").read_text())
    (bad / "game.tw-pddl").write_text(json.dumps({**game, "solvable": False}))

    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    assert default_data_dir() == root
    env = ALFWorldEnv()
    assert [len(env.games(s)) for s in ("train", "valid_seen", "valid_unseen")] == [4, 1, 1]
    _, info = env.reset({"split": "valid_unseen", "task_id": 0})
    assert info["gamefile"].startswith(str(root / "valid_unseen"))
    with pytest.raises(ValueError, match="valid: train, valid_seen, valid_unseen"):
        list_games(str(root), "test")
