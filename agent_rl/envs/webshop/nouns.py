"""Nouns of a product title, for the type part of the WebShop reward.

WebShop compares the nouns (spaCy ``en_core_web_sm`` tags NOUN/PROPN) of the purchased product's
title with those of the goal product's title. That spaCy model cannot be installed here, so the
default extractor is a deterministic heuristic: title words that are not stop words, numbers, units
or common product adjectives. In product titles, which are mostly proper and common nouns, it keeps
what spaCy would tag as nouns in the large majority of cases. ``extractor="spacy"`` uses spaCy where
``en_core_web_sm`` is installed (it raises otherwise), for users who have the original setup.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from agent_rl.envs.webshop.fuzz import COLOR_SET

_WORD = re.compile(r"[A-Za-z][A-Za-z\-]*")

_FUNCTION_WORDS = frozenset(
    """a an and are as at be but by for from if in into is it its no not of off on or per so such than
    that the their then there these they this to up was will with without you your our we all any both
    each every more most other some only own same very can just over under out about after before
    ideal perfect great best also""".split()
)
_UNITS = frozenset(
    "oz fl ml mm cm in inch inches ft feet lb lbs kg mah ct pcs pc count gb tb mb hz w v x xl xxl".split()
)
# Adjectives and participles that are frequent in product titles.
_ADJECTIVES = frozenset(
    """new premium professional portable wireless waterproof water-resistant lightweight adjustable durable
    soft natural organic classic modern vintage small large medium big mini extra long short wide slim
    thick thin heavy light high low fast quick easy comfortable comfy breathable stretchy warm cool hot
    cold fresh dry wet clean pure healthy gluten-free sugar-free non-slip non-gmo vegan raw sweet
    unsweetened spicy smooth rich dark bright strong compact foldable rechargeable universal fine
    compatible ergonomic sturdy solid stylish elegant cute casual formal slim-fit regular loose fitted
    wooden stainless leak-proof scratch-resistant shockproof padded quilted cushioned
    upholstered reclining swivel folding stackable removable washable reusable disposable sensitive
    daily everyday outdoor indoor athletic casual unscented scented fragrance-free alcohol-free
    oil-free paraben-free sulfate-free cruelty-free hypoallergenic moisturizing hydrating nourishing
    anti-aging anti-frizz lasting long-lasting waterproof matte glossy shiny sheer full sparkling
    roasted ground whole instant decaf caffeinated low-fat fat-free keto protein-rich assorted mixed
    original improved upgraded latest smart digital electric manual automatic noise-cancelling
    true fast-charging heavy-duty multi-purpose all-purpose multipurpose handmade imported""".split()
) | frozenset(COLOR_SET)


def _is_noun_like(word: str) -> bool:
    w = word.lower().strip("-")
    return len(w) >= 2 and w not in _FUNCTION_WORDS and w not in _UNITS and w not in _ADJECTIVES


def heuristic_nouns(title: str) -> list[str]:
    """Lower-case noun-like words of ``title`` in order (possessive 's dropped, duplicates kept)."""
    words = _WORD.findall(title.replace("\u2019", "'").replace("'s", ""))
    return [w.lower().strip("-") for w in words if _is_noun_like(w)]


@lru_cache(maxsize=1)
def _spacy_model():
    import spacy  # noqa: PLC0415 - optional dependency

    return spacy.load("en_core_web_sm")


def spacy_nouns(title: str) -> list[str]:
    """WebShop's own rule: spaCy tokens tagged NOUN or PROPN, lower-cased."""
    return [t.text.lower() for t in _spacy_model()(title) if t.pos_ in ("PNOUN", "NOUN", "PROPN")]


def get_extractor(name: str) -> Callable[[str], tuple[str, ...]]:
    """The noun extractor called ``name`` ("heuristic" or "spacy"), memoised per title."""
    if name == "heuristic":
        fn = heuristic_nouns
    elif name == "spacy":
        _spacy_model()  # fail now, not at the first purchase
        fn = spacy_nouns
    else:
        raise ValueError(f"unknown noun extractor {name!r}; use 'heuristic' or 'spacy'")

    @lru_cache(maxsize=100_000)
    def nouns(title: str) -> tuple[str, ...]:
        return tuple(fn(title))

    return nouns
