"""BM25 product search with ``bm25s``, standing in for WebShop's pyserini (Lucene) index.

Each product is indexed as WebShop's ``convert_product_file_format.py`` builds its documents:
``lower(title + description + first feature + "name: v1, v2, and name: ...")``. Scoring is Lucene's
BM25 with pyserini's defaults (k1=0.9, b=0.4), text analysed as in ``analyzer``. A search returns
at most 50 products (WebShop's ``SEARCH_RETURN_N``), only those sharing a term with the query, best
first; ties keep catalog order, so results are deterministic.
"""

from __future__ import annotations

import bm25s
import numpy as np

from agent_rl.envs.webshop.analyzer import analyze
from agent_rl.envs.webshop.catalog import Product

SEARCH_RETURN_N = 50
K1, B = 0.9, 0.4


def document_text(p: Product) -> str:
    """The indexed text of a product, as WebShop's index builder writes it."""
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in p.options.items())
    first_bullet = p.bullets[0] if p.bullets else ""
    return " ".join([p.title, p.description, first_bullet, option_text]).lower()


class SearchEngine:
    """A BM25 index over a product list; ``search`` returns product indices."""

    def __init__(self, products: list[Product]):
        self.n_docs = len(products)
        self.retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
        corpus = [analyze(document_text(p)) for p in products]
        self.retriever.index(corpus, show_progress=False)

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[int]:
        """Indices of the top-``k`` products for ``query`` (score > 0), best first."""
        tokens = [t for t in analyze(query) if t in self.retriever.vocab_dict]
        if not tokens or self.n_docs == 0:
            return []
        scores = np.asarray(self.retriever.get_scores(tokens), dtype=np.float64)
        hits = np.flatnonzero(scores > 0)
        if hits.size > k:
            # Keep every document tied with the k-th score, then order them all stably.
            kth = np.partition(scores[hits], hits.size - k)[hits.size - k]
            hits = hits[scores[hits] >= kth]
        order = np.lexsort((hits, -scores[hits]))
        return [int(i) for i in hits[order][:k]]
