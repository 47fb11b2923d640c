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

from agent_rl.envs.webshop.catalog import (
    BUILTIN_CATALOG,
    CATALOGS,
    Product,
    draw_prices,
    load_builtin,
    load_original,
)
from agent_rl.envs.webshop.goals import NUM_TEST_GOALS, Goal, make_goals, split_range
from agent_rl.envs.webshop.nouns import get_extractor, resolve_extractor
from agent_rl.envs.webshop.search import SearchEngine

DATA_ENV_VAR = "WEBSHOP_DATA"
BUILTIN = "builtin"


@dataclass(frozen=True)
class World:
    """Products, their drawn prices, the search engine, the shuffled goal list and the noun extractor."""

    source: str
    products: list[Product]
    by_asin: dict[str, Product]
    prices: dict[str, float]
    engine: SearchEngine
    goals: list[Goal]
    nouns: Callable[[str], tuple[str, ...]]
    noun_extractor: str  # "spacy" or "heuristic"

    def split(self, name: str, num_test_goals: int = NUM_TEST_GOALS) -> range:
        """Absolute goal indices of a split."""
        return split_range(name, len(self.goals), num_test_goals)


def resolve_data_dir(data_dir: str | os.PathLike | None) -> str:
    """``None`` -> ``$WEBSHOP_DATA`` if set, else the shipped catalog; ``"builtin"`` -> shipped."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV_VAR) or BUILTIN
    data_dir = str(data_dir)
    return data_dir if data_dir == BUILTIN else str(Path(data_dir).expanduser().resolve())


def load_world(
    data_dir: str = BUILTIN,
    human_goals: bool = False,
    seed: int = 0,
    num_products: int | None = None,
    noun_extractor: str = "auto",
    catalog: str = "small",
) -> World:
    """Load (once per process and argument set) the products, prices, index and goals.

    ``seed`` drives the ranged-price and price-bound draws; the goal shuffle always uses 233.
    ``catalog`` ("small" or "full") picks WebShop's files; the shipped catalog has only one.
    """
    if catalog not in CATALOGS:
        raise ValueError(f"unknown WebShop catalog {catalog!r}; valid: {', '.join(CATALOGS)}")
    return _load_world(data_dir, human_goals, seed, num_products, resolve_extractor(noun_extractor), catalog)


@lru_cache(maxsize=4)
def _load_world(
    data_dir: str, human_goals: bool, seed: int, num_products: int | None, noun_extractor: str, catalog: str
) -> World:
    if data_dir == BUILTIN:
        if human_goals:
            raise ValueError("the shipped catalog has synthetic goals only; human goals need WebShop's data")
        if catalog != "small":
            raise ValueError(
                f"catalog={catalog!r} needs WebShop's data files: set $WEBSHOP_DATA (or data_dir) to a "
                "folder made by `python scripts/prepare_webshop.py --full`"
            )
        products = load_builtin(BUILTIN_CATALOG, num_products)
        source = str(BUILTIN_CATALOG)
    else:
        products = load_original(data_dir, catalog, num_products, human_goals)
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
        noun_extractor=noun_extractor,
    )
