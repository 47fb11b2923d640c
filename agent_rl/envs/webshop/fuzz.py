"""Fuzzy string matching used by the WebShop reward, in pure Python.

WebShop scores attributes and options with ``thefuzz.fuzz.token_set_ratio(a, b) > 85`` and maps
colour options through ``normalize_color``. This module reproduces both exactly (thefuzz 0.20+,
which delegates to rapidfuzz): the same string preprocessing, the same token-set formula over the
normalised Indel similarity, and the same rounding to an integer. The strings compared are short
(attributes and option values), so a plain LCS dynamic programme is fast enough.
"""

from __future__ import annotations

import re

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

_NON_ALNUM = re.compile(r"[^0-9a-zA-Z]")


def normalize_color(text: str) -> str:
    """Return the first ``COLOR_SET`` entry that is a substring of ``text``, else ``text`` unchanged."""
    for color in COLOR_SET:
        if color in text:
            return color
    return text


def full_process(text: object) -> str:
    """thefuzz's default preprocessing: str(), drop non-ASCII, non-alphanumerics to spaces, lower, strip."""
    s = "".join(ch for ch in str(text) if ord(ch) < 128)
    return _NON_ALNUM.sub(" ", s).lower().strip()


def _lcs_len(a: str, b: str) -> int:
    """Length of the longest common subsequence of two strings."""
    if not a or not b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for ch in a:
        cur = [0]
        for j, bj in enumerate(b):
            cur.append(prev[j] + 1 if ch == bj else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _norm_from_distance(dist: int, lensum: int) -> float:
    return 100.0 if lensum == 0 else 100.0 - 100.0 * dist / lensum


def token_set_ratio(s1: object, s2: object) -> int:
    """``thefuzz.fuzz.token_set_ratio`` with its default ``force_ascii=True, full_process=True``."""
    a, b = full_process(s1), full_process(s2)
    tokens_a, tokens_b = set(a.split()), set(b.split())
    if not tokens_a or not tokens_b:
        return 0
    sect = tokens_a & tokens_b
    diff_ab, diff_ba = tokens_a - tokens_b, tokens_b - tokens_a
    if sect and (not diff_ab or not diff_ba):
        return 100
    ab = " ".join(sorted(diff_ab))
    ba = " ".join(sorted(diff_ba))
    sect_len = len(" ".join(sect))
    sep = 1 if sect_len else 0
    sect_ab_len = sect_len + sep + len(ab)
    sect_ba_len = sect_len + sep + len(ba)
    indel = len(ab) + len(ba) - 2 * _lcs_len(ab, ba)
    result = _norm_from_distance(indel, sect_ab_len + sect_ba_len)
    if sect_len:
        result = max(
            result,
            _norm_from_distance(sep + len(ab), sect_len + sect_ab_len),
            _norm_from_distance(sep + len(ba), sect_len + sect_ba_len),
        )
    return int(round(result))
