"""ScienceWorld on the real simulator (JVM): gold paths win, failures and limits do not, resets repeat."""

from __future__ import annotations

import random
import string

import psutil
import pytest

from agent_rl.envs.scienceworld import TASK_NAMES, ScienceWorldEnv, epo_split, variations

pytestmark = pytest.mark.env


@pytest.fixture(scope="module")
def env():
    env = ScienceWorldEnv()
    yield env
    env.close()


def play(env, spec, actions):
    obs, info = env.reset(spec)
    reward, done = 0.0, False
    for action in actions:
        obs, reward, done, info = env.step(action)
        if done:
            break
    return obs, reward, done, info


@pytest.mark.parametrize(
    "spec",
    [
        {"task": "find-non-living-thing", "variation": 0},
        {"task": "power-component", "variation": 0},  # electrical task: "easy" keeps connect actions
    ],
)
def test_gold_path_wins(env, spec):
    gold = env.gold_actions(spec)
    _, reward, done, info = play(env, spec, gold)
    assert done and info["won"] and reward == 1.0
    assert info["score"] == 1.0 and info["raw_score"] == 100


def test_failure_is_done_not_won(env):
    _, reward, done, info = play(env, {"task": "boil", "variation": 0}, ["focus on door to kitchen"])
    assert done and not info["won"] and info["failed"] and reward == 0.0
    assert info["raw_score"] < 0 and info["score"] == 0.0


def test_move_limit_with_partial_score_is_not_a_win(env):
    """EPO's quirk (done and score > 0 counted as won) must not happen here."""
    env.env_step_limit = 10
    try:
        spec = {"task": "boil", "variation": 0}
        _, reward, done, info = play(env, spec, env.gold_actions(spec))
        assert done and info["truncated"] and 0 < info["raw_score"] < 100
        assert not info["won"] and reward == 0.0
    finally:
        env.env_step_limit = 100


def test_another_jvm_replays_the_same_episode_and_close_ends_it(env):
    """GRPO group members run on different JVMs: same spec and actions, same observations."""
    other = ScienceWorldEnv(jvm_heap_mb=128)
    pid = other.jvm_pid
    try:
        spec = {"task": "find-animal", "variation": 40}
        mine, theirs = env.reset(spec), other.reset(spec)
        assert mine == theirs
        for action in mine[1]["admissible_actions"][:5]:
            assert env.step(action) == other.step(action)
    finally:
        other.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_max_steps_truncates(env):
    env.max_steps = 3
    try:
        _, _, done, info = play(env, {"task": "find-animal", "variation": 1}, ["look around"] * 5)
        assert done and info["truncated"] and info["steps"] == 3 and not info["won"]
    finally:
        env.max_steps = None


def test_two_resets_from_one_spec_are_identical(env):
    spec = {"task": "boil", "variation": 3}
    first = env.reset(spec)
    env.step("look at stove")
    env.reset({"task": "melt", "variation": 1})
    second = env.reset(spec)
    assert first == second
    assert first[1]["task"].startswith("Your task is to boil")


def test_fifty_random_and_garbage_actions_never_raise(env):
    rng = random.Random(0)
    junk = [
        "",
        " ",
        "\n",
        "\x00",
        "é漢字🙂",
        "focus on",
        "pour x in y",
        "teleport to",
        "connect",
        "reset task",
        "{}",
        "'\"\\",
        "a" * 3000,
    ]
    obs, info = env.reset({"task": "chemistry-mix", "variation": 2})
    for i in range(50):
        if i % 3 == 0:
            action = rng.choice(info["admissible_actions"])
        elif i % 3 == 1:
            action = rng.choice(junk)
        else:
            action = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 80)))
        obs, reward, done, info = env.step(action)
        assert isinstance(obs, str) and isinstance(done, bool) and reward in (0.0, 1.0)
        if done:
            obs, info = env.reset({"task": "chemistry-mix", "variation": 2})


def test_task_names_and_epo_splits(env):
    assert list(env.sim.get_task_names()) == list(TASK_NAMES)
    # Sizes of EPO's variations_idx/L*_idx.json files.
    sizes = {(lv, part): len(epo_split(lv, part)) for lv in ("L0", "L1", "L2") for part in ("train", "test")}
    assert sizes == {
        ("L0", "train"): 3322,
        ("L0", "test"): 1661,
        ("L1", "train"): 3322,
        ("L1", "test"): 1684,
        ("L2", "train"): 2242,
        ("L2", "test"): 549,
    }
    total = sum(len(variations(t, s)) for t in TASK_NAMES for s in ("train", "dev", "test"))
    assert total == 7207
