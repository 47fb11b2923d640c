"""A loaded WebShop world: products, prices, search index and goals, shared by a process's envs.

``load_world`` is memoised on its arguments, so all environments of one process (for example one
pool actor) share one copy of the catalog and one index; only the per-episode session state is
per environment. Everything here is read-only after loading.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from agent_rl.envs.webshop.catalog import BUILTIN_CATALOG, Product, draw_prices, load_builtin, load_original
from agent_rl.envs.webshop.goals import Goal, make_goals, split_range
from agent_rl.envs.webshop.nouns import get_extractor
from agent_rl.envs.webshop.search import SearchEngine

DATA_ENV_VAR = "WEBSHOP_DATA"
BUILTIN = "builtin"


@dataclass(frozen=True)
class World:
    """Products, their drawn prices, the search engine and the shuffled goal list."""

    source: str
    products: list[Product]
    by_asin: dict[str, Product]
    prices: dict[str, float]
    engine: SearchEngine
    goals: list[Goal]
    nouns: Callable[[str], tuple[str, ...]]

    def split(self, name: str) -> range:
        """Absolute goal indices of a split."""
        return split_range(name, len(self.goals))


def resolve_data_dir(data_dir: str | os.PathLike | None) -> str:
    """``None`` -> ``$WEBSHOP_DATA`` if set, else the shipped catalog; ``"builtin"`` -> shipped."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV_VAR) or BUILTIN
    data_dir = str(data_dir)
    return data_dir if data_dir == BUILTIN else str(Path(data_dir).expanduser().resolve())


@lru_cache(maxsize=4)
def load_world(
    data_dir: str = BUILTIN,
    human_goals: bool = False,
    seed: int = 0,
    num_products: int | None = None,
    noun_extractor: str = "heuristic",
) -> World:
    """Load (once per process and argument set) the products, prices, index and goals.

    ``seed`` drives the ranged-price and price-bound draws; the goal shuffle always uses 233.
    """
    if data_dir == BUILTIN:
        if human_goals:
            raise ValueError("the shipped catalog has synthetic goals only; human goals need WebShop's data")
        products = load_builtin(BUILTIN_CATALOG, num_products)
        source = str(BUILTIN_CATALOG)
    else:
        products = load_original(data_dir, num_products, human_goals)
        source = data_dir
    rng = random.Random(seed)
    prices = draw_prices(products, rng)
    goals = make_goals(products, prices, rng, human=human_goals)
    return World(
        source=source,
        products=products,
        by_asin={p.asin: p for p in products},
        prices=prices,
        engine=SearchEngine(products),
        goals=goals,
        nouns=get_extractor(noun_extractor),
    )
