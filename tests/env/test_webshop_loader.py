"""WebShop's own data files (verl-agent's ``use_small=True`` set) on a fixture in their original format.

``fixtures/webshop_small`` holds ``items_shuffle_1000.json`` (scraped product records: six products, plus a
repeated asin, asin "nan" and an over-long asin that the loader must skip), ``items_ins_v2_1000.json``
(asin -> attributes / instruction) and ``items_human_ins.json`` (asin -> human instructions).
"""

from __future__ import annotations

import importlib.util
import io
import random
import shutil
from pathlib import Path

import pytest

from agent_rl.envs.webshop import WebShopEnv, split_sizes
from agent_rl.envs.webshop.catalog import draw_prices, load_original
from agent_rl.envs.webshop.goals import SHUFFLE_SEED, synthetic_goals

pytestmark = pytest.mark.env

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "webshop_small"
SMALL_FILES = ("items_shuffle_1000.json", "items_ins_v2_1000.json", "items_human_ins.json")
ASINS = ["B07TEA0001", "B08SHOE002", "B01GTEA003", "B09CHAI004", "B07MIC0005", "B00CAND006"]


def _copy(tmp_path: Path, names: dict[str, str]) -> Path:
    """A data folder with the fixture's files copied under new names (``{fixture name: new name}``)."""
    d = tmp_path / "webshop"
    d.mkdir()
    for src, dst in names.items():
        shutil.copy(FIXTURE / src, d / dst)
    return d


def test_products_load_from_the_original_format():
    env = WebShopEnv(FIXTURE)
    assert [p.asin for p in env.world.products] == ASINS  # repeated, "nan" and 12-character asins skipped
    scrub, shoes, tea, chair, mic, candle = env.world.products
    assert scrub.options == {"size": ["8 ounce", "12 ounce"], "scent": ["tea tree | mint", "lavender"]}
    assert scrub.bullets[0].startswith("NATURAL INGREDIENTS") and scrub.price_tag == "$14.99"
    assert shoes.pricing == [59.0, 79.0] and shoes.price_tag == "$59.0 to $79.0"
    assert 59.0 <= env.world.prices["B08SHOE002"] <= 79.0
    assert tea.bullets == ["Individually wrapped tea bags"] and tea.options == {}
    assert chair.pricing == [100.0] and chair.options == {}  # no price, options null
    assert mic.pricing == [1049.99] and mic.query == "computer microphones"
    assert candle.attributes == [] and candle.instruction is None  # annotated without an instruction
    assert env.world.noun_extractor in ("spacy", "heuristic")


def test_synthetic_goals_in_webshop_order():
    env = WebShopEnv(FIXTURE)
    # One goal per option combination: scrub 2 x 2, shoes 2 x 2, tea 1, chair 1, microphone 1, candle none.
    assert len(env.world.goals) == 11
    rng = random.Random(0)  # the env's seed: ranged prices first, then one price bound per product
    products = load_original(FIXTURE)
    expected = synthetic_goals(products, draw_prices(products, rng), rng)
    random.Random(SHUFFLE_SEED).shuffle(expected)
    assert [g.instruction_text for g in env.world.goals] == [g.instruction_text for g in expected]
    texts = {g.instruction_text for g in env.world.goals}
    assert any(
        t.startswith(
            "Find me scrubs & body treatments with tea tree, natural ingredients with scent: lavender, "
            "and size: 12 ounce, and price lower than"
        )
        for t in texts
    )
    assert "Find me noise cancelling computer microphones with color: black" in texts  # $1049.99: no bound


def test_human_goals():
    env = WebShopEnv(FIXTURE, human_goals=True)
    texts = sorted(g.instruction_text for g in env.world.goals)  # the one without attributes is skipped
    assert len(texts) == 3
    assert texts[0].startswith("i need red running shoes in size 10 that are lightweight, and price lower")
    assert texts[1].startswith("i want a tea tree body scrub in lavender, 12 ounce, and price lower than")
    assert texts[2] == "i'm looking for a noise cancelling usb microphone"


def test_split_boundary_defaults_to_500_and_is_a_parameter():
    # Default: test = goals[0:500] -- all 11 fixture goals --, train = goals[500:] (empty).
    assert split_sizes(FIXTURE) == {"train": 0, "eval": 0, "test": 11, "all": 11}
    env = WebShopEnv(FIXTURE)
    assert list(env.world.split("test")) == list(range(11))
    with pytest.raises(IndexError):
        env.reset({"name": "webshop", "split": "train", "goal_idx": 0})
    # Boundary 4: test = goals[0:4], train = goals[4:].
    assert split_sizes(FIXTURE, num_test_goals=4) == {"train": 7, "eval": 7, "test": 4, "all": 11}
    env = WebShopEnv(FIXTURE, num_test_goals=4)
    assert env.reset({"name": "webshop", "split": "test", "goal_idx": 3})[1]["goal_index"] == 3
    _, info = env.reset({"name": "webshop", "split": "train", "goal_idx": 0})
    assert info["goal_index"] == 4 and info["task"] == env.world.goals[4].instruction_text
    with pytest.raises(IndexError):
        env.reset({"name": "webshop", "split": "train", "goal_idx": 7})


def test_small_files_are_found_through_webshop_data(monkeypatch):
    monkeypatch.setenv("WEBSHOP_DATA", str(FIXTURE))
    assert [p.asin for p in WebShopEnv().world.products] == ASINS
    assert split_sizes()["all"] == 11


def test_full_catalog_is_a_named_option(tmp_path):
    full = _copy(
        tmp_path,
        {
            "items_shuffle_1000.json": "items_shuffle.json",
            "items_ins_v2_1000.json": "items_ins_v2.json",
            "items_human_ins.json": "items_human_ins.json",
        },
    )
    assert [p.asin for p in WebShopEnv(full, catalog="full").world.products] == ASINS
    with pytest.raises(FileNotFoundError, match="has no items_shuffle_1000.json"):
        WebShopEnv(full)  # the default is the small set, even where only the full one is present
    with pytest.raises(ValueError, match="catalog='full' needs WebShop's data files"):
        WebShopEnv("builtin", catalog="full")
    with pytest.raises(ValueError, match="unknown WebShop catalog 'medium'; valid: small, full"):
        WebShopEnv(FIXTURE, catalog="medium")


@pytest.mark.parametrize("missing", SMALL_FILES)
def test_a_missing_file_is_named_with_how_to_get_it(tmp_path, missing):
    d = _copy(tmp_path, {name: name for name in SMALL_FILES if name != missing})
    with pytest.raises(FileNotFoundError) as err:
        WebShopEnv(d)
    assert str(err.value) == (
        f"WebShop data folder {d} has no {missing} (needed by catalog='small'); "
        f"download it with `python scripts/prepare_webshop.py {d}`"
    )


def test_a_missing_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; download it with `python scripts/prepare"):
        WebShopEnv(tmp_path / "nowhere")


def _prepare_script():
    spec = importlib.util.spec_from_file_location("prepare_webshop", ROOT / "scripts/prepare_webshop.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_prepare_script_check_counts_without_downloading(tmp_path, monkeypatch, capsys):
    script = _prepare_script()

    def no_network(*args, **kwargs):
        raise AssertionError("--check must not download")

    monkeypatch.setattr(script.urllib.request, "urlopen", no_network)
    assert script.main(["--check", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    assert "small: 6 products (5 with a synthetic instruction)" in out
    assert "synthetic goals:     11 (test 11, train 0)" in out
    assert "human     goals:      3 (test 3, train 0)" in out
    assert f"export WEBSHOP_DATA={FIXTURE.resolve()}" in out

    partial = _copy(tmp_path, {"items_shuffle_1000.json": "items_shuffle_1000.json"})
    assert script.main(["--check", str(partial)]) == 1
    assert "has no items_ins_v2_1000.json" in capsys.readouterr().out
    assert script.main(["--check", "--full", str(FIXTURE)]) == 1  # no full catalog there
    assert "has no items_shuffle.json (needed by catalog='full')" in capsys.readouterr().out


class _FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, content_type: str):
        super().__init__(body)
        self.headers = {"Content-Type": content_type}


def test_prepare_script_fetches_the_setup_sh_files(tmp_path, monkeypatch):
    script = _prepare_script()
    assert script.needed(full=False) == list(SMALL_FILES)
    assert set(script.needed(full=True)) == set(SMALL_FILES) | {"items_shuffle.json", "items_ins_v2.json"}
    assert set(script.FILES) == set(script.needed(full=True))
    urls = []

    def fake_urlopen(url):
        urls.append(url)
        name = next(n for n, file_id in script.FILES.items() if file_id in url)
        return _FakeResponse((FIXTURE / name).read_bytes(), "application/json")

    monkeypatch.setattr(script.urllib.request, "urlopen", fake_urlopen)
    assert script.main([str(tmp_path)]) == 0  # downloads the three small files, then checks them
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SMALL_FILES)
    assert urls[0] == (
        "https://drive.usercontent.google.com/download?id=1EgHdxQ_YxqIQlvvq5iKlCrkEKR6-j0Ib"
        "&export=download&confirm=t"
    )
    assert script.main([str(tmp_path)]) == 0 and len(urls) == 3  # files already there are kept

    monkeypatch.setattr(script.urllib.request, "urlopen", lambda url: _FakeResponse(b"<html>", "text/html"))
    with pytest.raises(SystemExit, match="answered with a web page instead of items_shuffle_1000"):
        script.main([str(tmp_path / "other")])
    assert not any((tmp_path / "other").iterdir())
