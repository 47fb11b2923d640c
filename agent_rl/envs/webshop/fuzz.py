"""Fuzzy matching for the WebShop reward: thefuzz's ``token_set_ratio`` and WebShop's ``normalize_color``.

Upstream (``web_agent_site/engine/goal.py``) scores attributes and options with
``thefuzz.fuzz.token_set_ratio(a, b) > 85`` and maps options through ``normalize.normalize_color``.
thefuzz (0.20 and later) is a thin layer over rapidfuzz: its ``full_process`` (``str()``, drop the
characters 128-255, then rapidfuzz's ``default_process``: non-alphanumerics to spaces, lower case,
strip) and ``int(round(...))`` of rapidfuzz's ``token_set_ratio``; ``token_set_ratio`` here does
exactly that, so its results equal thefuzz's.

Deviations:

- WebShop and verl-agent pin ``thefuzz==0.19.0``, which computes the same token-set formula but with
  ``difflib.SequenceMatcher`` unless ``python-Levenshtein`` is installed (neither lists it); with it,
  0.19.0 equals this module. With difflib the scores differ (on 26% of the 25,425 pairs of distinct
  attribute strings of the shipped catalog), but the > 85 decision the reward takes differs on none
  of them, nor on any of its 28,103 (option value, goal option) pairs (checked against thefuzz 0.19.0
  and 0.22.1; this module equals 0.22.1 on all of them).
"""

from __future__ import annotations

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

# WebShop's `normalize.COLOR_SET`, in its original order (the first colour found wins).
COLOR_SET = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure",
    "banana", "beige", "black", "blue", "blush", "bordeaux", "bronze",
    "brown", "burgundy", "camel", "camo", "caramel", "champagne",
    "charcoal", "cheetah", "chestnut", "chocolate", "christmas", "coffee",
    "cognac", "copper", "coral", "cranberry", "cream", "crystal", "dark",
    "denim", "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite",
    "grape", "graphite", "grass", "gray", "green", "grey", "heather", "indigo",
    "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light", "lilac",
    "lime", "magenta", "maroon", "mauve", "merlot", "midnight", "mint", "mocha",
    "multicolor", "mushroom", "mustard", "natural", "navy", "nude", "olive",
    "orange", "peach", "pewter", "pink", "plum", "purple", "rainbow", "red",
    "rose", "royal", "rust", "sand", "sapphire", "seashell", "silver", "skull",
    "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal",
    "tiger", "turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow",
)  # fmt: skip

_LATIN1 = dict.fromkeys(range(128, 256))  # thefuzz's force_ascii: drop these characters


def normalize_color(text: str) -> str:
    """Return the first ``COLOR_SET`` entry that is a substring of ``text``, else ``text`` unchanged."""
    for color in COLOR_SET:
        if color in text:
            return color
    return text


def token_set_ratio(s1: object, s2: object) -> int:
    """``thefuzz.fuzz.token_set_ratio`` with its defaults ``force_ascii=True, full_process=True``."""
    a, b = str(s1).translate(_LATIN1), str(s2).translate(_LATIN1)
    return int(round(fuzz.token_set_ratio(a, b, processor=default_process)))
