"""WebShop reward pieces: fuzzy matching, colour normalisation, type/attribute/option terms, search."""

from __future__ import annotations

import pytest

from agent_rl.envs.webshop.analyzer import analyze, porter_stem
from agent_rl.envs.webshop.catalog import Product
from agent_rl.envs.webshop.fuzz import normalize_color, token_set_ratio
from agent_rl.envs.webshop.goals import Goal
from agent_rl.envs.webshop.nouns import heuristic_nouns
from agent_rl.envs.webshop.reward import attribute_matches, get_reward, option_matches, type_reward
from agent_rl.envs.webshop.search import SearchEngine

pytestmark = pytest.mark.env


def _product(**kw) -> Product:
    base = dict(
        asin="B000000001", title="Acme Men's Running Shoes Lightweight", query="men's running shoes",
        category="fashion", product_category="Clothing › Men › Shoes › Running", description="A shoe.",
        bullets=["RUBBER SOLE: grips."], options={"color": ["black", "red"], "size": ["10", "x-large"]},
        attributes=["lightweight", "rubber sole"], pricing=[45.0], price_tag="$45.0",
    )  # fmt: skip
    base.update(kw)
    return Product(**base)


def _goal(**kw) -> Goal:
    base = dict(
        asin="B000000001", category="fashion", query="men's running shoes", name="Acme Men's Running Shoes",
        product_category="Clothing › Men › Shoes › Running", instruction_text="i need shoes",
        attributes=["lightweight", "rubber sole", "arch support"], price_upper=50.0,
        goal_options={"color": "black", "size": "10"},
    )  # fmt: skip
    base.update(kw)
    return Goal(**base)


def test_token_set_ratio_matches_thefuzz_reference_values():
    # Values computed with thefuzz 0.22.1 (rapidfuzz 3.14).
    assert token_set_ratio("essential oil", "essential oils") == 96
    assert token_set_ratio("tea tree", "tea bag") == 60
    assert token_set_ratio("high waisted", "high waist") == 91
    assert token_set_ratio("rubber sole", "rubber") == 100
    assert token_set_ratio("slim fit", "relaxed fit") == 55
    assert token_set_ratio("Men's", "mens shoes") == 67
    assert token_set_ratio(("size", "x-large"), "large") == 100
    assert token_set_ratio("", "anything") == 0


def test_normalize_color_keeps_webshop_order_and_quirks():
    assert normalize_color("light blue") == "blue"
    assert normalize_color("rose gold") == "gold"
    assert normalize_color("grey wash") == "ash"  # WebShop's substring rule
    assert normalize_color("10") == "10"


def test_porter_stemmer_and_analyzer():
    expected = {
        "running": "run", "shoes": "shoe", "caresses": "caress", "ponies": "poni", "relational": "relat",
        "generalization": "gener", "hopping": "hop", "filing": "file", "happy": "happi",
        "conditional": "condit", "agreed": "agre", "sized": "size", "adjustable": "adjust",
    }  # fmt: skip
    assert {w: porter_stem(w) for w in expected} == expected
    assert analyze("The Men's Running-Shoes, with 2 laces") == ["men", "run", "shoe", "2", "lace"]


def test_type_reward_thresholds():
    nouns = heuristic_nouns
    assert type_reward(_product(), _goal(), nouns)["r_type"] == 1.0
    other = _product(title="Green Tea Bags", query="green tea", product_category="Grocery › Tea")
    assert type_reward(other, _goal(), nouns) == {
        "r_type": 0.0, "query_match": False, "category_match": False, "title_score": 0.0}  # fmt: skip
    # Shares one noun of four ("acme men running shoes"): 0.25 > 0.2, so type 1.0 even with other query.
    cousin = _product(title="Acme Kitchen Towels", query="towels", product_category="Home › Kitchen")
    info = type_reward(cousin, _goal(), nouns)
    assert info["title_score"] == pytest.approx(0.25) and info["r_type"] == 1.0
    far = _goal(name="Zeta Alpha Beta Gamma Delta Epsilon Eta Theta Iota Kappa Lambda Acme")
    assert type_reward(cousin, far, nouns)["r_type"] == 0.1  # overlap 1/12 < 0.1


def test_attribute_match_uses_fuzzy_attributes_then_text():
    p = _product(description="Built with arch support for long runs.")
    assert attribute_matches(p, ["lightweight", "rubber soles", "arch support", "waterproof"]) == 3


def test_option_match_webshop_semantics():
    assert option_matches(["black", "10"], {"color": "black", "size": "10"}) == 2
    assert option_matches(["red", "11"], {"color": "black", "size": "10"}) == 0
    assert option_matches(["large"], {"size": "x-large"}) == 1  # kept WebShop quirk ("size x-large")
    assert option_matches(["dark blue"], ["navy blue"]) == 1  # human goals: both normalise to "blue"


def test_get_reward_formula_and_price():
    product, goal = _product(), _goal()
    reward, info = get_reward(product, goal, 45.0, {"color": "black", "size": "10"}, heuristic_nouns)
    assert reward == pytest.approx((2 + 2 + 1) / (3 + 2 + 1))  # "arch support" is missing
    assert info["w_att"] == pytest.approx(3 / 6) and info["w_option"] == pytest.approx(2 / 6)
    over_budget, info = get_reward(product, goal, 55.0, {"color": "black", "size": "10"}, heuristic_nouns)
    assert over_budget == pytest.approx(4 / 6) and info["r_price"] is False


def test_search_ranks_exact_title_first():
    products = [
        _product(asin=f"B00000000{i}", title=t, description=d)
        for i, (t, d) in enumerate([("Red Running Shoes", "fast shoes"), ("Blue Office Chair", "a chair"),
                                    ("Green Tea Bags", "tea"), ("Running Socks", "socks for running")])
    ]  # fmt: skip
    engine = SearchEngine(products)
    assert engine.search("office chair")[0] == 1
    assert engine.search("zzz unknown") == [] and engine.search("the and") == []
    assert set(engine.search("running")) == {0, 3}  # only documents sharing a term
