"""Text analysis for the search index, close to Lucene's English analyzer that pyserini used.

WebShop indexed its products with pyserini (Lucene): standard tokenizer, lower case, English
possessive removal, Lucene's English stop words and the Porter stemmer. ``analyze`` does the same
with a regular-expression tokenizer and a pure-Python Porter stemmer (the algorithm of Lucene's
``PorterStemmer``), so no stemming package is needed.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET.
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[a-z]+(?:'[a-z]+)*")
_VOWELS = frozenset("aeiou")


def _is_cons(word: str, i: int) -> bool:
    ch = word[i]
    if ch in _VOWELS:
        return False
    if ch == "y":
        return i == 0 or not _is_cons(word, i - 1)
    return True


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in ``stem``."""
    m, prev_vowel = 0, False
    for i in range(len(stem)):
        cons = _is_cons(stem, i)
        if cons and prev_vowel:
            m += 1
        prev_vowel = not cons
    return m


def _has_vowel(stem: str) -> bool:
    return any(not _is_cons(stem, i) for i in range(len(stem)))


def _double_cons(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _is_cons(word, len(word) - 1)


def _cvc(word: str) -> bool:
    n = len(word)
    return (
        n >= 3
        and _is_cons(word, n - 1)
        and not _is_cons(word, n - 2)
        and _is_cons(word, n - 3)
        and word[-1] not in "wxy"
    )


_STEP2 = (
    ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
    ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"),
    ("ization", "ize"), ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"),
    ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
    ("logi", "log"),
)  # fmt: skip
_STEP3 = (
    ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""),
    ("ness", ""),
)  # fmt: skip
_STEP4 = tuple(
    (suf, "")
    for suf in "al ance ence er ic able ible ant ement ment ent ion ou ism ate iti ous ive ize".split()
)


def _longest_suffix(word: str, table: tuple[tuple[str, str], ...]) -> tuple[str, str] | None:
    """The longest (suffix, replacement) of ``table`` that ``word`` ends with (Porter's rule)."""
    hits = [item for item in table if word.endswith(item[0])]
    return max(hits, key=lambda item: len(item[0])) if hits else None


@lru_cache(maxsize=200_000)
def porter_stem(word: str) -> str:
    """Stem one lower-case word with the Porter (1980) algorithm, as Lucene's PorterStemmer does."""
    if len(word) <= 2:
        return word
    w = word
    # Step 1a: plurals.
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    # Step 1b: -eed, -ed, -ing.
    if w.endswith("eed"):
        if _measure(w[:-3]) > 0:
            w = w[:-1]
    else:
        for suf in ("ed", "ing"):
            if w.endswith(suf) and _has_vowel(w[: -len(suf)]):
                w = w[: -len(suf)]
                if w.endswith(("at", "bl", "iz")):
                    w += "e"
                elif _double_cons(w) and w[-1] not in "lsz":
                    w = w[:-1]
                elif _measure(w) == 1 and _cvc(w):
                    w += "e"
                break
    # Step 1c: y -> i.
    if w.endswith("y") and _has_vowel(w[:-1]):
        w = w[:-1] + "i"
    # Steps 2 and 3: double and single suffixes, when m(stem) > 0.
    for table in (_STEP2, _STEP3):
        hit = _longest_suffix(w, table)
        if hit is not None and _measure(w[: -len(hit[0])]) > 0:
            w = w[: -len(hit[0])] + hit[1]
    # Step 4: remove a suffix when m(stem) > 1 ("ion" only after s or t).
    hit = _longest_suffix(w, _STEP4)
    if hit is not None:
        suf, stem = hit[0], w[: -len(hit[0])]
        if _measure(stem) > 1 and (suf != "ion" or stem.endswith(("s", "t"))):
            w = stem
    # Step 5: final -e and -ll.
    if w.endswith("e"):
        m = _measure(w[:-1])
        if m > 1 or (m == 1 and not _cvc(w[:-1])):
            w = w[:-1]
    if w.endswith("ll") and _measure(w) > 1:
        w = w[:-1]
    return w


def tokenize(text: str) -> list[str]:
    """Lower-case word and number tokens, with English possessives ('s) removed."""
    tokens = []
    for tok in _TOKEN.findall(text.lower().replace("\u2019", "'")):
        if tok.endswith("'s"):
            tok = tok[:-2]
        if tok:
            tokens.append(tok)
    return tokens


def analyze(text: str) -> list[str]:
    """Tokens of ``text`` as the index sees them: tokenized, stop words dropped, Porter-stemmed."""
    return [porter_stem(t) for t in tokenize(text) if t not in STOP_WORDS]
