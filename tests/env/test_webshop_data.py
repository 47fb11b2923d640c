"""WebShop data: the loader for WebShop's own files, and the shipped catalog."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from agent_rl.envs.webshop import WebShopEnv
from agent_rl.envs.webshop.catalog import BUILTIN_CATALOG, load_builtin

pytestmark = pytest.mark.env

ROOT = Path(__file__).resolve().parents[2]

# Three products in WebShop's raw formats, plus a duplicate and an invalid asin that must be skipped.
ITEMS = [
    {
        "asin": "B000000001",
        "name": "Men's Lightweight Running Shoes with Rubber Sole",
        "query": "running shoes",
        "category": "fashion",
        "product_category": "Clothing, Shoes & Jewelry › Men › Shoes › Running",
        "pricing": "$59.00 $79.00",
        "full_description": "Breathable mesh running shoe.",
        "small_description": ["Rubber sole", "Lightweight mesh upper"],
        "images": ["img1.jpg"],
        "customization_options": {
            "Color": [{"value": "Black/White", "image": "a.jpg"}, {"value": "Red", "image": None}],
            "Size": [{"value": "9"}, {"value": "10"}],
        },
    },
    {
        "asin": "B000000002",
        "name": "Organic Green Tea Bags, 100 Count",
        "query": "green tea",
        "category": "food",
        "product_category": "Grocery & Gourmet Food › Beverages › Tea › Green",
        "pricing": "$12.49",
        "full_description": "Smooth organic green tea.",
        "small_description": "Individually wrapped",
        "images": [""],
        "customization_options": None,
    },
    {
        "asin": "B000000001",
        "name": "duplicate",
        "query": "x",
        "category": "x",
        "product_category": "x",
        "pricing": "",
        "full_description": "",
        "small_description": [],
        "images": [""],
        "customization_options": {},
    },
    {
        "asin": "nan",
        "name": "bad",
        "query": "x",
        "category": "x",
        "product_category": "x",
        "pricing": "$1.00",
        "full_description": "",
        "small_description": [],
        "images": [""],
        "customization_options": {},
    },
    {
        "asin": "B000000003",
        "name": "Wooden Office Chair",
        "query": "office chair",
        "category": "furniture",
        "product_category": "Home & Kitchen › Furniture › Office Chairs",
        "pricing": "",
        "full_description": "A chair.",
        "small_description": ["Solid wood"],
        "images": [""],
        "customization_options": {},
    },
]
ATTRS = {
    "B000000001": {
        "attributes": ["rubber sole", "lightweight"],
        "instruction": "i need lightweight running shoes",
        "instruction_attributes": ["lightweight", "rubber sole"],
    },
    "B000000002": {
        "attributes": ["organic"],
        "instruction": "i want organic green tea",
        "instruction_attributes": ["organic"],
    },
    "B000000003": {},
}
HUMAN = {
    "B000000001": [
        {
            "instruction": "i want red running shoes in size 10.",
            "instruction_attributes": ["lightweight"],
            "instruction_options": ["red", "10"],
        },
        {"instruction": "no attributes here", "instruction_attributes": [], "instruction_options": []},
    ],
    "B000000002": [
        {
            "instruction": "organic tea please",
            "instruction_attributes": ["organic"],
            "instruction_options": [],
        }
    ],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("webshop_data")
    (d / "items_shuffle_1000.json").write_text(json.dumps(ITEMS))
    (d / "items_ins_v2_1000.json").write_text(json.dumps(ATTRS))
    (d / "items_human_ins.json").write_text(json.dumps(HUMAN))
    return d


def test_original_format_loader_parses_like_webshop(data_dir):
    env = WebShopEnv(data_dir)
    products = env.world.products
    assert [p.asin for p in products] == ["B000000001", "B000000002", "B000000003"]
    shoes, tea, chair = products
    assert shoes.options == {"color": ["black | white", "red"], "size": ["9", "10"]}
    assert shoes.pricing == [59.0, 79.0] and shoes.price_tag == "$59.0 to $79.0"
    assert 59.0 <= env.world.prices["B000000001"] <= 79.0
    assert tea.bullets == ["Individually wrapped"] and tea.options == {} and tea.price_tag == "$12.49"
    assert chair.pricing == [100.0] and chair.attributes == ["DUMMY_ATTR"] and chair.rating == "N.A."
    # Synthetic goals: 2 x 2 option combinations for the shoes, 1 for the tea, none for the chair.
    texts = sorted(g.instruction_text for g in env.world.goals)
    assert len(texts) == 5
    assert any(
        t.startswith("i need lightweight running shoes with color: red, and size: 10, and price lower than")
        for t in texts
    )


def test_original_data_episode_and_human_goals(data_dir, monkeypatch):
    monkeypatch.setenv("WEBSHOP_DATA", str(data_dir))
    env = WebShopEnv(human_goals=True)  # found through $WEBSHOP_DATA
    assert len(env.world.goals) == 2  # the instruction without attributes is skipped, as in WebShop
    for i in range(2):
        obs, info = env.reset({"name": "webshop", "split": "all", "goal_idx": i})
        goal = env.world.goals[info["goal_index"]]
        if goal.asin == "B000000001":
            break
    assert goal.instruction_text.startswith("i want red running shoes in size 10, and price lower than")
    obs, _, _, info = env.step("search[lightweight running shoes]")
    assert "B000000001 [SEP] Men's Lightweight Running Shoes with Rubber Sole [SEP] $59.0 to $79.0" in obs
    env.step("click[b000000001]")
    env.step("click[red]")
    env.step("click[10]")
    obs, reward, done, info = env.step("click[buy now]")
    assert done and reward == 1.0 and info["won"]
    assert info["reward_info"]["r_option"] == 1.0


def test_shipped_catalog_is_what_the_script_writes(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_webshop_catalog", ROOT / "scripts/make_webshop_catalog.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    products = script.build()
    assert products == json.loads(BUILTIN_CATALOG.read_text(encoding="utf-8"))["products"]


def test_shipped_catalog_size_and_coverage():
    assert BUILTIN_CATALOG.stat().st_size < 2_000_000
    products = load_builtin()
    assert len(products) >= 300
    assert {p.category for p in products} == {"beauty", "electronics", "fashion", "food", "furniture"}
    assert all(p.reviews and p.bullets and p.description and p.attributes for p in products)
    assert sum(bool(p.options) for p in products) > 0.8 * len(products)
