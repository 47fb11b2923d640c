"""The WebShop purchase reward (``engine/goal.py: get_reward``), term by term.

    reward = r_type * (n_attr + n_option + [price <= price_upper]) / (|goal attrs| + |goal options| + 1)

- attributes: a goal attribute counts when ``token_set_ratio`` with one of the product's attributes
  is > 85, or else when it is a substring of the product's title, features or description;
- options: a goal option counts when ``token_set_ratio`` with one of the chosen option values is
  > 85, both sides passed through ``normalize_color``. For synthetic goals (options as a dict)
  WebShop compares each chosen value with the ``(name, value)`` pair itself, which the fuzzy
  matcher reads as ``"name value"``; this is kept, so buying "large" matches a goal "size: x-large";
- r_type: 1.0 when the query matches, or two ``product_category`` levels are shared, or the title
  noun overlap is > 0.2; else 0.5; then 0.1 when the overlap is < 0.1 and 0.0 when it is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agent_rl.envs.webshop.catalog import Product
from agent_rl.envs.webshop.fuzz import COLOR_SET, normalize_color, token_set_ratio
from agent_rl.envs.webshop.goals import Goal

MATCH_THRESHOLD = 85


def type_reward(product: Product, goal: Goal, nouns: Callable[[str], Sequence[str]]) -> dict[str, Any]:
    """Whether the purchased product is the same kind of product as the goal's."""
    query_match = product.query == goal.query
    bought_cats = {x.strip() for x in product.product_category.split("›")}
    goal_cats = {x.strip() for x in goal.product_category.split("›")}
    category_match = len(bought_cats & goal_cats) >= 2
    bought_nouns, goal_nouns = nouns(product.title), nouns(goal.name)
    if not goal_nouns:
        title_score = 0.2
    else:
        title_score = len(set(bought_nouns) & set(goal_nouns)) / len(goal_nouns)
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {
        "r_type": r_type,
        "query_match": query_match,
        "category_match": category_match,
        "title_score": title_score,
    }


def attribute_matches(product: Product, goal_attributes: Sequence[str]) -> int:
    """How many goal attributes the product has (fuzzy in its attributes, else a text substring)."""
    title = product.title.lower()
    bullets = " ".join(product.bullets).lower()
    description = product.description.lower()
    n = 0
    for g in goal_attributes:
        if any(token_set_ratio(p, g) > MATCH_THRESHOLD for p in product.attributes):
            n += 1
        elif g in title or g in bullets or g in description:
            n += 1
    return n


def _goal_option_keys(goal_options: dict[str, str] | Sequence[str]) -> list[str]:
    """Goal options as WebShop's ``normalize_color`` + ``token_set_ratio`` see them.

    A dict's items are ``(name, value)`` tuples: ``normalize_color`` on a tuple only finds a colour
    equal to one element, and the matcher reads the tuple's text, i.e. ``"name value"``.
    """
    if isinstance(goal_options, dict):
        keys = []
        for name, value in goal_options.items():
            color = next((c for c in COLOR_SET if c in (name, value)), None)
            keys.append(color if color is not None else f"{name} {value}")
        return keys
    return [normalize_color(o) for o in goal_options]


def option_matches(chosen: Sequence[str], goal_options: dict[str, str] | Sequence[str]) -> int:
    """How many goal options are among the chosen option values."""
    chosen_norm = [normalize_color(o) for o in chosen]
    return sum(
        any(token_set_ratio(c, g) > MATCH_THRESHOLD for c in chosen_norm)
        for g in _goal_option_keys(goal_options)
    )


def get_reward(
    product: Product,
    goal: Goal,
    price: float,
    chosen_options: dict[str, str],
    nouns: Callable[[str], Sequence[str]],
) -> tuple[float, dict[str, Any]]:
    """The purchase reward in [0, 1] and its parts (WebShop's ``verbose`` info)."""
    r_type = type_reward(product, goal, nouns)
    r_price = price <= goal.price_upper
    n_attr = attribute_matches(product, goal.attributes)
    n_opt = option_matches(list(chosen_options.values()), goal.goal_options)
    n_goal_opts = len(goal.goal_options)
    denom = len(goal.attributes) + n_goal_opts + 1
    reward = (n_attr + n_opt + int(r_price)) / denom * r_type["r_type"]
    info: dict[str, Any] = dict(r_type)
    info.update(
        r_att=n_attr / len(goal.attributes) if goal.attributes else 0.0,
        w_att=len(goal.attributes) / denom,
        r_price=r_price,
        w_price=1 / denom,
    )
    if n_goal_opts:
        info.update(r_option=n_opt / n_goal_opts, w_option=n_goal_opts / denom)
    return reward, info
