"""Products: the shipped catalog, WebShop's own data files, and seeded prices.

WebShop's data files (Google Drive, fetched by WebShop's ``setup.sh -d small|all`` and by our
``scripts/prepare_webshop.py``), in a folder given as ``data_dir`` or ``$WEBSHOP_DATA``:

- ``catalog="small"`` (the default): ``items_shuffle_1000.json`` (1,000 products) and
  ``items_ins_v2_1000.json``. This is what the papers trained on: verl-agent loads these two with
  ``env.webshop.use_small=True`` (its default; EPO vendors the same code), and they are WebShop's own
  defaults (``web_agent_site/utils.py``).
- ``catalog="full"``: ``items_shuffle.json`` (1.18M products) and ``items_ins_v2.json`` (verl-agent's
  ``use_small=False``, WebShop's ``setup.sh -d all``), for the benchmark at WebShop's full scale.
- Both need ``items_human_ins.json`` (the human instructions), which WebShop's ``load_products``
  always opens; a folder missing any of the three files is refused, naming the file.

Upstream (``web_agent_site/engine/engine.py: load_products``): raw items (``asin``, ``name``,
``query``, ``category``, ``product_category``, ``pricing`` such as ``"$45.99"`` or ``"$59.00 $79.00"``,
``full_description``, ``small_description``, ``customization_options``, ``images``...), skipping
asins that are ``nan``, longer than 10 characters or repeated; per-asin annotations from
``items_ins_v2*.json`` (``attributes``, ``instruction``, ``instruction_attributes``); human goals
from ``items_human_ins.json`` (asin -> list of ``{instruction, instruction_attributes,
instruction_options}``). ``build_products`` normalises both sources that way.

The shipped catalog (``data/catalog.json``, written by ``scripts/make_webshop_catalog.py``) stores
the raw items with their annotations inline and adds ``reviews`` and ``rating``.

Deviations: an asin missing from the annotation file gets ``["DUMMY_ATTR"]`` and no instruction
(upstream raises a KeyError for synthetic goals); an unparsable price piece is skipped (upstream
raises); ranged prices are drawn from a seeded generator (``draw_prices``; WebShop used the unseeded
global one, verl-agent seeds it with the worker's seed).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

BUILTIN_CATALOG = Path(__file__).parent / "data" / "catalog.json"

HUMAN_GOALS_FILE = "items_human_ins.json"
# catalog name -> (products file, annotations file); both catalogs also need HUMAN_GOALS_FILE.
CATALOGS = {
    "small": ("items_shuffle_1000.json", "items_ins_v2_1000.json"),
    "full": ("items_shuffle.json", "items_ins_v2.json"),
}
PREPARE_SCRIPT = "scripts/prepare_webshop.py"


@dataclass(slots=True)
class Product:
    """One product, with the fields WebShop's pages and reward read."""

    asin: str
    title: str
    query: str
    category: str
    product_category: str
    description: str
    bullets: list[str]
    options: dict[str, list[str]]
    attributes: list[str]
    pricing: list[float]
    price_tag: str
    rating: str = "N.A."
    reviews: list[dict[str, Any]] = field(default_factory=list)
    instruction: str | None = None
    instruction_attributes: list[str] | None = None
    human_instructions: list[dict[str, Any]] = field(default_factory=list)


def parse_pricing(pricing: Any) -> tuple[list[float], str]:
    """WebShop's price parsing: ``"$59.00 $79.00"`` -> ([59.0, 79.0], "$59.0 to $79.0")."""
    values: list[float] = []
    if isinstance(pricing, str):
        for piece in pricing.split("$")[1:]:
            digits = re.sub(r"[^\d.]", "", piece)
            try:
                values.append(float(Decimal(digits)))
            except InvalidOperation:
                continue
    elif isinstance(pricing, list | tuple):
        values = [float(v) for v in pricing]
    if not values:
        return [100.0], "$100.0"
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def parse_options(customization: Any) -> dict[str, list[str]]:
    """Option names and values lower-cased, '/' in values shown as ' | ', as WebShop does."""
    options: dict[str, list[str]] = {}
    if not isinstance(customization, dict):
        return options
    for name, contents in customization.items():
        if contents is None:
            continue
        values = []
        for content in contents:
            value = content.get("value", "") if isinstance(content, dict) else str(content)
            values.append(str(value).strip().replace("/", " | ").lower())
        options[str(name).lower()] = values
    return options


def build_products(
    raw_items: list[dict[str, Any]],
    annotations: dict[str, dict[str, Any]],
    human: dict[str, list[dict[str, Any]]] | None = None,
    num_products: int | None = None,
) -> list[Product]:
    """Normalise raw items as ``load_products`` does: skip bad or duplicate asins, parse fields."""
    if num_products is not None:
        raw_items = raw_items[:num_products]
    human = human or {}
    seen: set[str] = set()
    products = []
    for p in raw_items:
        asin = str(p.get("asin", ""))
        if not asin or asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        ann = annotations.get(asin, {})
        pricing, price_tag = parse_pricing(p.get("pricing"))
        bullets = p.get("small_description") or []
        if not isinstance(bullets, list):
            bullets = [bullets]
        reviews = []
        for r in p.get("reviews") or []:
            reviews.append(
                {
                    "title": str(r.get("title", "")),
                    "score": r.get("score", r.get("stars", "")),
                    "body": str(r.get("body", r.get("review", ""))),
                }
            )
        products.append(
            Product(
                asin=asin,
                title=str(p.get("name") or ""),
                query=str(p.get("query") or "").lower().strip(),
                category=str(p.get("category") or ""),
                product_category=str(p.get("product_category") or ""),
                description=str(p.get("full_description") or ""),
                bullets=[str(b) for b in bullets],
                options=parse_options(p.get("customization_options")),
                attributes=list(ann["attributes"]) if "attributes" in ann else ["DUMMY_ATTR"],
                pricing=pricing,
                price_tag=price_tag,
                rating=str(p.get("rating", "N.A.")),
                reviews=reviews,
                instruction=ann.get("instruction"),
                instruction_attributes=ann.get("instruction_attributes"),
                human_instructions=list(human.get(asin, [])),
            )
        )
    return products


def data_files(data_dir: str | Path, catalog: str = "small") -> tuple[Path, Path, Path]:
    """The products, annotations and human-goals files of ``catalog`` in ``data_dir``; all must exist."""
    if catalog not in CATALOGS:
        raise ValueError(f"unknown WebShop catalog {catalog!r}; valid: {', '.join(CATALOGS)}")
    data_dir = Path(data_dir)
    get = f"python {PREPARE_SCRIPT}{' --full' if catalog == 'full' else ''} {data_dir}"
    if not data_dir.is_dir():
        raise FileNotFoundError(f"WebShop data folder {data_dir} does not exist; download it with `{get}`")
    paths = tuple(data_dir / name for name in (*CATALOGS[catalog], HUMAN_GOALS_FILE))
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"WebShop data folder {data_dir} has no {path.name} (needed by catalog={catalog!r}); "
                f"download it with `{get}`"
            )
    return paths


def load_original(
    data_dir: str | Path, catalog: str = "small", num_products: int | None = None, human_goals: bool = False
) -> list[Product]:
    """Load WebShop's own files of ``catalog`` ("small" or "full", see the module docstring)."""
    products_path, annotations_path, human_path = data_files(data_dir, catalog)
    with open(products_path) as f:
        raw = json.load(f)
    with open(annotations_path) as f:
        annotations = json.load(f)
    human = None
    if human_goals:
        with open(human_path) as f:
            human = json.load(f)
    return build_products(raw, annotations, human, num_products)


def load_builtin(path: str | Path = BUILTIN_CATALOG, num_products: int | None = None) -> list[Product]:
    """Load the shipped catalog (raw items with their annotations inline)."""
    with open(path) as f:
        raw = json.load(f)["products"]
    annotations = {
        p["asin"]: {k: p[k] for k in ("attributes", "instruction", "instruction_attributes") if k in p}
        for p in raw
    }
    return build_products(raw, annotations, None, num_products)


def draw_prices(products: list[Product], rng: random.Random) -> dict[str, float]:
    """A price per product: the single price, or uniform in a ranged price (seeded, unlike WebShop)."""
    prices = {}
    for p in products:
        prices[p.asin] = p.pricing[0] if len(p.pricing) == 1 else rng.uniform(*p.pricing[:2])
    return prices
