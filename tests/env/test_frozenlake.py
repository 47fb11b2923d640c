"""FrozenLake (gymnasium's FrozenLake-v1) as a text environment: maps, rendering, moves, holes, the goal,
invalid actions, and what the agent loop and the task tables make of it."""

from __future__ import annotations

import json

import pytest

from agent_rl.envs import frozenlake
from agent_rl.envs.api import make_env
from agent_rl.envs.frozenlake import FrozenLakeEnv
from agent_rl.rollout.parsing import parse_action
from agent_rl.rollout.prompts import build_prompt
from agent_rl.training.data import env_rows

pytestmark = pytest.mark.env
HAND = {"desc": ["SFF", "FHF", "FFG"]}


def play(env, *actions):
    out = None
    for action in actions:
        out = env.step(action)
    return out


def test_registered_and_built_with_its_config():
    env = make_env("frozenlake", size=3, p=0.9, is_slippery=False, max_steps=5)
    assert isinstance(env, FrozenLakeEnv) and (env.size, env.p, env.max_steps) == (3, 0.9, 5)


def test_rendering_marks_player_ice_holes_and_goal():
    env = FrozenLakeEnv()
    observation, info = env.reset(HAND)
    assert observation == "P _ _\n_ O _\n_ _ G"
    assert info["task_type"] == "3x3" and info["admissible_actions"] == ["up", "down", "left", "right"]
    assert "G" in info["task"] and "O" in info["task"]


def test_actions_move_the_player_and_walls_stop_it():
    env = FrozenLakeEnv()
    env.reset(HAND)
    observation, reward, done, info = env.step("right")
    assert observation == "_ P _\n_ O _\n_ _ G" and (reward, done) == (0.0, False)
    observation, *_ = env.step("up")  # into the wall: stays
    assert observation == "_ P _\n_ O _\n_ _ G"
    observation, *_ = env.step("  LEFT ")  # case and spaces ignored
    assert observation == "P _ _\n_ O _\n_ _ G"
    assert info["invalid_actions"] == 0


def test_a_hole_ends_the_episode_without_reward():
    env = FrozenLakeEnv()
    env.reset(HAND)
    observation, reward, done, info = play(env, "right", "down")
    assert observation == "_ _ _\n_ X _\n_ _ G"
    assert (reward, done, info["won"], info["truncated"]) == (0.0, True, False, False)
    assert env.step("down")[2] is True  # over stays over


def test_the_goal_wins():
    env = FrozenLakeEnv()
    env.reset(HAND)
    observation, reward, done, info = play(env, "down", "down", "right", "right")
    assert observation.endswith("_ _ √")
    assert (reward, done, info["won"], info["score"], info["steps"]) == (1.0, True, True, 1.0, 4)


def test_invalid_actions_leave_the_state_and_are_counted():
    env = FrozenLakeEnv(max_steps=3)
    start, _ = env.reset(HAND)
    for i, action in enumerate(["jump", "", "go to countertop 1" * 20], start=1):
        observation, reward, done, info = env.step(action)
        assert observation.startswith("Invalid action") and observation.endswith(start)
        assert reward == 0.0 and info["invalid_actions"] == i
    assert done and info["truncated"] and not info["won"]  # invalid steps count toward max_steps


def test_the_parser_penalises_what_the_env_rejects():
    assert parse_action("<think>go</think><action>Down</action>", "frozenlake").valid
    parsed = parse_action("<think>go</think><action>jump</action>", "frozenlake")
    assert (parsed.valid, parsed.reason, parsed.action) == (False, "unknown_action", "jump")
    assert parse_action("down", "frozenlake").action == ""  # no tags: an empty (invalid) action


def test_seeds_give_identical_maps_and_splits_differ():
    a, b = FrozenLakeEnv(size=4), FrozenLakeEnv(size=4)
    for task in range(5):
        spec = {"split": "train", "task_id": task}
        assert a.reset(spec)[1]["map"] == b.reset(spec)[1]["map"]
    train = {tuple(a.reset({"split": "train", "task_id": t})[1]["map"]) for t in range(20)}
    test = {tuple(a.reset({"split": "test", "task_id": t})[1]["map"]) for t in range(20)}
    assert len(train) > 10 and len(test) > 10  # different maps per task
    info = a.reset({"split": "test", "task_id": 2})[1]
    assert info["map_seed"] == frozenlake.TEST_SEED_OFFSET + 2
    assert info["map"][0][0] == "S" and info["map"][-1][-1] == "G"


def test_slippery_ice_is_reproducible_per_map():
    env = FrozenLakeEnv(size=4, is_slippery=True, max_steps=20)
    runs = []
    for _ in range(2):
        env.reset({"split": "train", "task_id": 7})
        runs.append([env.step(a)[0] for a in ["right", "down"] * 5])
    assert runs[0] == runs[1]


def test_bad_sizes_and_splits_are_refused_with_the_valid_ones():
    for size in (1, 17, "4", 2.5, True):
        with pytest.raises(ValueError, match="integer from 2 to 16"):
            FrozenLakeEnv(size=size)
    with pytest.raises(ValueError, match="valid: train, test"):
        FrozenLakeEnv().reset({"split": "valid_seen", "task_id": 0})


def test_task_tables_name_the_map_size_and_are_seeded():
    cfg = {"name": "frozenlake", "env_kwargs": {"size": 3}}
    rows = env_rows(cfg, "test", 8, seed=0)
    assert len(rows) == 8 and {r["data_source"] for r in rows} == {"frozenlake/3x3"}
    assert rows == env_rows(cfg, "test", 8, seed=0)
    spec = json.loads(rows[0]["env_spec"])
    assert spec["name"] == "frozenlake" and spec["split"] == "test"
    assert FrozenLakeEnv(size=3).reset(spec)[1]["task_type"] == "3x3"


def test_the_prompt_shows_the_grid_and_the_actions():
    env = FrozenLakeEnv()
    observation, info = env.reset(HAND)
    content = build_prompt("frozenlake", info["task"], 0, [], observation, info["admissible_actions"], 0)
    text = content[0]["content"]
    assert "P _ _\n_ O _\n_ _ G" in text and "[up, down, left, right]" in text and "<action>" in text
    later = build_prompt("frozenlake", info["task"], 1, [(observation, "right")], observation, [], 2)
    assert "Action 1: 'right'" in later[0]["content"]


@pytest.mark.parametrize("algo", ["grpo", "dapo"])
def test_the_laptop_recipe_composes_for_every_method(algo):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from agent_rl.cli import train

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(train.CONF_DIR), version_base=None):
        for method in train.group_options("method"):
            cfg = compose("config", overrides=[f"experiment=laptop/frozenlake-{algo}", f"method={method}"])
            assert (cfg.env.name, cfg.algo.name, cfg.model.lesson) == ("frozenlake", algo, "frozenlake")
            assert cfg.run_name == f"laptop-frozenlake-{algo}-{cfg.method.name}-s0"
            assert cfg.model.build == "tiny_qwen2"  # built at launch, with the lesson
    GlobalHydra.instance().clear()
