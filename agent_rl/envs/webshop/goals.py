"""Goals (shopping instructions) and their splits, following WebShop's ``engine/goal.py``.

Synthetic goals (the default, verl-agent's ``human_goals=False``): for each product with an instruction,
one goal per combination of its option values (option names sorted): ``"{instruction} with {name}:
{value}, and {name}: {value}, and price lower than {upper:.2f} dollars"``. Human goals: one per
crowd-sourced instruction that names at least one attribute, with its own options. The price upper
bound is drawn once per product (synthetic) or per instruction (human): two of the (up to) four
multiples of ten above the product's price, keeping the larger. Goals are then shuffled with
``random.seed(233)`` (``SimServer.__init__``), products in catalog order.

Splits (``split_range``), with ``num_test_goals`` = 500 by default:

- ``test`` = goals[0:500], ``train`` = goals[500:], as verl-agent (and EPO) use them: its
  ``WebshopMultiProcessEnv`` draws validation goals from ``range(500)`` and training goals from
  ``range(500, len(goals))``;
- ``eval`` (aliases ``dev``, ``valid``, ``val``) = goals[500:1500], WebShop's own dev range, which lies
  inside ``train`` (WebShop trained its IL/RL baselines on goals[1500:]);
- ``all`` = every goal.

Deviations:

- Price draws come from ``random.Random(seed)`` (the order of draws is upstream's: the ranged prices of
  all products, then one bound per product or instruction). WebShop used the unseeded global
  generator, so its goal texts varied between processes.
- The goal shuffle always uses WebShop's seed 233, as EPO does. verl-agent since 2025-06-29 (commit
  a64f4e0, "add seed controller for web") seeds it, and the price draws, with each worker's seed
  (``env.seed + group index`` for training, ``env.seed + 1000 + i`` for validation), so each of its
  groups sees its own shuffle and its ``range(500)`` is a different goal set per validation worker;
  a fixed table of goals per split, as here, cannot reproduce that.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from agent_rl.envs.webshop.catalog import Product

PRICE_RANGE = [10.0 * i for i in range(1, 100)]
NO_PRICE_LIMIT = 1_000_000
SHUFFLE_SEED = 233
NUM_TEST_GOALS = 500  # verl-agent / EPO: test goals range(500), train goals the rest
NUM_EVAL_GOALS = 1000  # WebShop's dev range: goals[500:1500]
SPLITS = ("test", "train", "eval", "all")
SPLIT_ALIASES = {"dev": "eval", "valid": "eval", "val": "eval"}


@dataclass(slots=True)
class Goal:
    """One task: buy ``asin`` (or an equivalent product) with these attributes, options and price."""

    asin: str
    category: str
    query: str
    name: str
    product_category: str
    instruction_text: str
    attributes: list[str]
    price_upper: float
    goal_options: dict[str, str] | list[str]
    weight: float = 1.0


def _price_upper(price: float, rng: random.Random) -> tuple[float, str]:
    candidates = [p for p in PRICE_RANGE if p > price][:4]
    if len(candidates) >= 2:
        _, upper = sorted(rng.sample(candidates, 2))
        return upper, f", and price lower than {upper:.2f} dollars"
    return NO_PRICE_LIMIT, ""


def synthetic_goals(products: list[Product], prices: dict[str, float], rng: random.Random) -> list[Goal]:
    """One goal per option combination of every product that has an instruction."""
    goals: list[Goal] = []
    counts: dict[str, int] = defaultdict(int)
    for p in products:
        if not p.instruction or not p.instruction_attributes:
            continue
        upper, price_text = _price_upper(prices[p.asin], rng)
        names = sorted(p.options)
        for combo in itertools.product(*(p.options[n] for n in names)):
            options = dict(zip(names, combo, strict=True))
            option_text = ", and ".join(f"{k}: {v}" for k, v in options.items())
            option_text = f" with {option_text}" if option_text else ""
            goals.append(
                Goal(
                    asin=p.asin,
                    category=p.category,
                    query=p.query,
                    name=p.title,
                    product_category=p.product_category,
                    instruction_text=f"{p.instruction}{option_text}{price_text}",
                    attributes=list(p.instruction_attributes),
                    price_upper=upper,
                    goal_options=options,
                )
            )
            for att in p.instruction_attributes:
                counts[att] += 1
    for g in goals:
        g.weight = sum(1.0 / counts[a] for a in g.attributes) / len(g.attributes)
    return goals


def human_goals(products: list[Product], prices: dict[str, float], rng: random.Random) -> list[Goal]:
    """One goal per human instruction that names at least one attribute."""
    goals = []
    for p in products:
        for ins in p.human_instructions:
            attributes = list(ins.get("instruction_attributes") or [])
            if not attributes:
                continue
            upper, price_text = _price_upper(prices[p.asin], rng)
            goals.append(
                Goal(
                    asin=p.asin,
                    category=p.category,
                    query=p.query,
                    name=p.title,
                    product_category=p.product_category,
                    instruction_text=str(ins.get("instruction", "")).strip(".") + price_text,
                    attributes=attributes,
                    price_upper=upper,
                    goal_options=list(ins.get("instruction_options") or []),
                )
            )
    return goals


def make_goals(
    products: list[Product], prices: dict[str, float], rng: random.Random, human: bool = False
) -> list[Goal]:
    """All goals in WebShop's order: generated, then shuffled with seed 233."""
    goals = (human_goals if human else synthetic_goals)(products, prices, rng)
    random.Random(SHUFFLE_SEED).shuffle(goals)
    return goals


def split_range(split: str, n_goals: int, num_test_goals: int = NUM_TEST_GOALS) -> range:
    """Absolute goal indices of ``split`` ("test", "train", "eval"/"dev" or "all"), see the docstring."""
    key = SPLIT_ALIASES.get(split, split)
    if key not in SPLITS:
        raise ValueError(f"unknown WebShop split {split!r}; valid: {', '.join([*SPLITS, *SPLIT_ALIASES])}")
    if num_test_goals < 0:
        raise ValueError(f"num_test_goals must be >= 0, got {num_test_goals}")
    t = min(num_test_goals, n_goals)
    bounds = {"test": (0, t), "train": (t, n_goals), "eval": (t, min(t + NUM_EVAL_GOALS, n_goals))}
    return range(*bounds.get(key, (0, n_goals)))


def goal_summary(goal: Goal) -> dict[str, Any]:
    """The goal as a plain dict (for logs and info)."""
    return {
        "asin": goal.asin,
        "instruction": goal.instruction_text,
        "attributes": list(goal.attributes),
        "options": goal.goal_options,
        "price_upper": goal.price_upper,
        "category": goal.category,
    }
