"""How much of a question's key terms a piece of text holds, each term weighted by its idf.

The sentence boost of retrieval, the extractive answerer's sentence score and its coverage check
all ask this one question, so they share one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from rag.text.tokens import tokenize

__all__ = ["Idf", "term_weights", "weighted_share"]

Idf = Callable[[Sequence[str]], list[float]]


def term_weights(text: str, idf: Idf | None = None) -> dict[str, float]:
    """The distinct BM25 terms of ``text`` (sorted), each with its idf (1.0 each without ``idf``)."""
    terms = sorted(set(tokenize(text)))
    weights = idf(terms) if idf is not None else [1.0] * len(terms)
    return dict(zip(terms, weights, strict=True))


def weighted_share(weights: dict[str, float], found: Collection[str]) -> float:
    """The idf-weighted share of ``weights``' terms that are in ``found`` (0 when there are none)."""
    total = sum(weights.values())
    if not total:
        return 0.0
    return sum(w for t, w in weights.items() if t in found) / total
