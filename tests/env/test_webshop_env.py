"""WebShop environment: rewards for right/wrong purchases, determinism, robustness, navigation."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from agent_rl.envs.webshop import SEARCH_ACTION, WebShopEnv, split_sizes
from agent_rl.envs.webshop.reward import option_matches

pytestmark = pytest.mark.env


@pytest.fixture(scope="module")
def env() -> WebShopEnv:
    return WebShopEnv("builtin")


def _goal(env: WebShopEnv):
    return env.world.goals[env.goal_index]


def _open_product(env: WebShopEnv, asin: str, query: str) -> dict:
    """Search, page through the results until ``asin`` is listed, open it; return the item page info."""
    _, _, _, info = env.step(f"search[{query}]")
    for _ in range(5):
        if f"click[{asin.lower()}]" in info["admissible_actions"]:
            break
        _, _, _, info = env.step("click[next >]")
    obs, reward, done, info = env.step(f"click[{asin}]")
    assert info["valid_action"] and info["page"] == "item", obs
    return info


def _buy(env: WebShopEnv, options: list[str]) -> tuple[float, dict]:
    for value in options:
        _, _, _, info = env.step(f"click[{value}]")
        assert info["valid_action"], value
    obs, reward, done, info = env.step("click[buy now]")
    assert done and info["page"] == "done"
    assert obs.endswith(f"Your score (min 0.0, max 1.0) [SEP] {reward}")
    return reward, info


def _goal_with_options(env: WebShopEnv, split: str = "test") -> int:
    for i in range(len(env.world.split(split))):
        env.reset({"name": "webshop", "split": split, "goal_idx": i})
        if _goal(env).goal_options:
            return i
    raise AssertionError("no goal with options")


def test_right_product_with_right_options_scores_one(env):
    for goal_idx in range(5):
        obs, info = env.reset({"name": "webshop", "split": "test", "goal_idx": goal_idx})
        assert obs.startswith("WebShop [SEP] Instruction: [SEP] ")
        assert info["admissible_actions"] == [SEARCH_ACTION, "click[search]"]  # as verl-agent lists them
        goal = _goal(env)
        _open_product(env, goal.asin, f"{goal.query} {' '.join(goal.attributes)}")
        reward, info = _buy(env, list(goal.goal_options.values()))
        assert reward == 1.0 and info["won"] and info["score"] == 1.0
        assert info["purchased"]["asin"] == goal.asin


def test_wrong_options_score_less_and_wrong_product_less_again(env):
    spec = {"name": "webshop", "split": "test", "goal_idx": _goal_with_options(env)}
    env.reset(spec)
    goal = _goal(env)
    product = env.world.by_asin[goal.asin]

    _open_product(env, goal.asin, goal.name)
    right, _ = _buy(env, list(goal.goal_options.values()))

    wrong_values = []
    for name, wanted in goal.goal_options.items():
        others = [v for v in product.options[name] if option_matches([v], {name: wanted}) == 0]
        wrong_values.append(others[0])
    env.reset(spec)
    _open_product(env, goal.asin, goal.name)
    wrong_options, info = _buy(env, wrong_values)
    assert info["reward_info"]["r_option"] == 0.0 and not info["won"]

    other = next(p for p in env.world.products if p.category != goal.category)
    env.reset(spec)
    _open_product(env, other.asin, other.title)
    wrong_product, info = _buy(env, [vals[0] for vals in other.options.values()])
    assert not info["won"]

    assert right == 1.0
    assert 0.0 < wrong_options < right
    assert wrong_product < wrong_options


def test_reward_without_options_follows_formula(env):
    env.reset({"name": "webshop", "split": "test", "goal_idx": _goal_with_options(env)})
    goal = _goal(env)
    _open_product(env, goal.asin, goal.name)
    reward, info = _buy(env, [])  # right product, no option chosen
    n_att, n_opt = len(goal.attributes), len(goal.goal_options)
    assert reward == pytest.approx((n_att + 0 + 1) / (n_att + n_opt + 1))
    assert info["reward_info"]["r_type"] == 1.0 and info["reward_info"]["r_price"] is True


def test_same_spec_gives_identical_observations():
    spec = {"name": "webshop", "split": "train", "goal_idx": 17}
    a, b = WebShopEnv("builtin"), WebShopEnv("builtin")
    obs_a, info_a = a.reset(spec)
    obs_b, info_b = b.reset(spec)
    assert obs_a == obs_b and info_a == info_b
    assert a.reset(spec) == (obs_a, info_a)
    for action in ["search[organic green tea]", "click[next >]", "click[< prev]"]:
        assert a.step(action) == b.step(action)
    assert a.reset({**spec, "goal_idx": 18})[0] != obs_a


def test_fifty_random_and_garbage_actions_never_raise(env):
    rng = random.Random(0)
    garbage = [
        "", "   ", "click", "click[]", "search[]", "buy", "click[nonexistent]", "search", "[]", "]]][[[",
        "click[[b]]", "SEARCH[Shoes]", "Click[Buy Now]", "click[buy now", "\x00\n\t", "search[é中文]",
        "think: I should search", "<action>click[next >]</action>", "click[search]", "a" * 5000,
    ]  # fmt: skip
    env.reset({"name": "webshop", "split": "train", "goal_idx": 3})
    done = False
    for step in range(50):
        admissible = env.admissible_actions()
        if step % 2 == 0 and admissible:
            action = rng.choice(admissible).replace(
                "<your query>", rng.choice(["shoes", "tea", "chair", "x"])
            )
        else:
            action = rng.choice(garbage)
        obs, reward, done, info = env.step(action)
        assert isinstance(obs, str) and obs
        assert 0.0 <= reward <= 1.0
        assert {"won", "score", "task", "admissible_actions", "task_type"} <= info.keys()
        if not info["valid_action"]:
            assert reward == 0.0
        if done:
            env.reset({"name": "webshop", "split": "train", "goal_idx": step})


def test_invalid_action_returns_same_page_as_upstream():
    env = WebShopEnv("builtin")
    page, _ = env.reset({"name": "webshop", "split": "eval", "goal_idx": 0})
    for action in ("click[not a button]", "dance[wildly]", "click[search]"):  # click[search]: a no-op
        obs, reward, done, info = env.step(action)
        assert obs == page and reward == 0.0 and not done
        assert not info["valid_action"] and info["message"]
    loud = WebShopEnv("builtin", invalid_action_feedback=True)
    page, _ = loud.reset({"name": "webshop", "split": "eval", "goal_idx": 0})
    assert loud.step("click[not a button]")[0].startswith(page + " [SEP] Invalid action")
    assert loud.step("click[search]")[0] == page + " [SEP] click[search] does nothing; use search[<query>]."


def test_pagination_and_sub_pages(env):
    start, _ = env.reset({"name": "webshop", "split": "train", "goal_idx": 0})
    page1, _, _, info = env.step("search[black]")
    assert "Page 1 (Total results: 50)" in page1 and "< Prev" not in page1
    assert info["admissible_actions"][:2] == ["click[back to search]", "click[next >]"]
    assert "click[search]" not in info["admissible_actions"]  # only the search page has the button
    products1 = [a for a in info["admissible_actions"] if a.startswith("click[b0")]
    assert len(products1) == 10
    page2, _, _, info = env.step("click[next >]")
    assert "Page 2 (Total results: 50) [SEP] < Prev [SEP] Next >" in page2
    products2 = [a for a in info["admissible_actions"] if a.startswith("click[b0")]
    assert len(products2) == 10 and not set(products1) & set(products2)
    assert env.step("click[< prev]")[0] == page1
    for _ in range(5):
        last, _, _, info = env.step("click[next >]")
    assert "Page 6" in last and not [a for a in info["admissible_actions"] if a.startswith("click[b0")]

    env.step("search[black]")
    asin = products1[0][len("click[") : -1]
    item, _, _, info = env.step(f"click[{asin}]")
    product = env.world.by_asin[asin.upper()]
    assert product.title in item and f"Price: {product.price_tag}" in item
    assert item.endswith("Description [SEP] Features [SEP] Reviews [SEP] Buy Now")
    for name, values in product.options.items():
        assert f"{name} [SEP] {' [SEP] '.join(values)}" in item
    desc, _, _, info = env.step("click[description]")
    assert desc.endswith("Back to Search [SEP] < Prev [SEP] " + product.description)
    assert info["admissible_actions"] == ["click[back to search]", "click[< prev]"]
    assert env.step("click[< prev]")[0] == item
    feats = env.step("click[features]")[0]
    assert all(b in feats for b in product.bullets)
    env.step("click[< prev]")
    reviews = env.step("click[reviews]")[0]
    assert f'"{product.reviews[0]["title"]}"' in reviews and product.reviews[0]["body"] in reviews
    env.step("click[< prev]")
    assert env.step("click[< prev]")[0] == page1  # item -> its results page
    env.step(f"click[{asin}]")
    assert env.step("click[back to search]")[0] == start


def test_splits_and_specs(env):
    sizes = split_sizes("builtin")
    assert sizes["test"] == 500 and sizes["eval"] == 1000
    assert sizes["train"] == sizes["all"] - 500 > 2000  # verl-agent / EPO: train = goals[500:]
    assert set(env.world.split("test")).isdisjoint(env.world.split("train"))
    assert set(env.world.split("eval")) <= set(env.world.split("train"))  # WebShop's dev range
    _, info = env.reset({"name": "webshop", "split": "train", "goal_idx": 0})
    assert info["goal_index"] == 500 and info["task_type"] in {
        "beauty",
        "electronics",
        "fashion",
        "food",
        "furniture",
    }
    assert env.reset({"name": "webshop", "split": "dev", "goal_idx": 2})[1]["goal_index"] == 502
    with pytest.raises(IndexError):
        env.reset({"name": "webshop", "split": "test", "goal_idx": 500})
    with pytest.raises(ValueError):
        env.reset({"name": "webshop", "split": "nope", "goal_idx": 0})


def test_max_steps_truncates():
    env = WebShopEnv("builtin", max_steps=3)
    env.reset({"name": "webshop", "split": "test", "goal_idx": 1})
    assert not env.step("search[tea]")[2] and not env.step("click[next >]")[2]
    obs, reward, done, info = env.step("click[next >]")
    assert done and reward == 0.0 and info["truncated"] and not info["won"]
    assert env.step("click[next >]")[1:3] == (0.0, True)


def _world_digest(env: WebShopEnv) -> str:
    goals = [(g.instruction_text, g.price_upper, g.asin) for g in env.world.goals]
    return hashlib.sha256(repr((goals, sorted(env.world.prices.items()))).encode()).hexdigest()


def test_same_spec_same_observation_in_another_process():
    """Pool workers are separate processes: prices, goals and pages must not depend on the process."""
    code = (
        "from agent_rl.envs.webshop import WebShopEnv\n"
        "from tests.env.test_webshop_env import _world_digest\n"
        "env = WebShopEnv('builtin')\n"
        "print(_world_digest(env))\n"
        "for i in (0, 7, 123):\n"
        "    print(env.reset({'name': 'webshop', 'split': 'test', 'goal_idx': i})[0])\n"
        "print(env.step('search[dark chocolate]')[0])\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    env = WebShopEnv("builtin")
    here = [_world_digest(env)]
    here += [env.reset({"name": "webshop", "split": "test", "goal_idx": i})[0] for i in (0, 7, 123)]
    here.append(env.step("search[dark chocolate]")[0])
    assert proc.stdout.splitlines() == here
