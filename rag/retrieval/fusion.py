"""Combining rankings: reciprocal-rank fusion, a convex mix of normalised scores, and MMR.

A ranking is a list of ``(id, score)`` pairs, best first. All functions are pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["convex", "minmax", "mmr", "rrf"]

Ranking = Sequence[tuple[int, float]]


def _check_finite(ranking: Ranking, name: str) -> None:
    for doc_id, score in ranking:
        if not math.isfinite(score):
            raise ValueError(f"{name} has a non-finite score {score!r} for id {doc_id}")


def rrf(
    rankings: Sequence[Ranking], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: ``score(id) = sum_i w_i / (k + rank_i(id))``, ranks from 1.

    Scores of the input are ignored; only positions count. An id repeated within one ranking
    counts at its best position. Ties keep the id with the better best rank, then first seen.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"weights has {len(weights)} entries for {len(rankings)} rankings")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"weights must be finite and >= 0, got {list(weights)}")
    fused: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[int] = set()
        for rank, (doc_id, _) in enumerate(ranking, start=1):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (k + rank)
            best_rank[doc_id] = min(best_rank.get(doc_id, rank), rank)
    order = sorted(fused, key=lambda d: (-fused[d], best_rank[d]))  # stable: first seen wins
    return [(d, fused[d]) for d in order]


def minmax(ranking: Ranking) -> dict[int, float]:
    """Scores rescaled to [0, 1] over the listed candidates; one candidate or all equal -> 1.0.

    An id listed twice keeps its first (best-placed) score.
    """
    scores: dict[int, float] = {}
    for doc_id, score in ranking:
        scores.setdefault(doc_id, float(score))
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo <= 0.0:
        return dict.fromkeys(scores, 1.0)
    return {d: (s - lo) / (hi - lo) for d, s in scores.items()}


def convex(dense: Ranking, lexical: Ranking, dense_weight: float) -> list[tuple[int, float]]:
    """Mix ``w * dense + (1 - w) * lexical`` of min-max normalised scores, best first.

    Min-max over each list's own candidates (not z-scores): it needs no score model, keeps
    the mix in [0, 1] and works for BM25's unbounded scores and cosines alike. A candidate
    missing from a list gets 0 from it, as does the lowest-scored candidate of a list of two
    or more; both mean "weakest evidence from this retriever". Ties: first seen wins
    (dense list first, then lexical).
    """
    if not (math.isfinite(dense_weight) and 0.0 <= dense_weight <= 1.0):
        raise ValueError(f"dense_weight must be between 0 and 1, got {dense_weight!r}")
    _check_finite(dense, "dense")
    _check_finite(lexical, "lexical")
    d, lx = minmax(dense), minmax(lexical)
    ids = list(dict.fromkeys([*d, *lx]))
    mixed = {i: dense_weight * d.get(i, 0.0) + (1.0 - dense_weight) * lx.get(i, 0.0) for i in ids}
    # Stable sort keeps first-seen order on ties; rounding makes 0.25 and 0.2499999999 a tie.
    order = sorted(ids, key=lambda i: -round(mixed[i], 12))
    return [(i, mixed[i]) for i in order]


def mmr(
    candidates: Sequence[int],
    relevance: Sequence[float],
    vectors: np.ndarray,
    k: int,
    lambda_: float,
) -> list[int]:
    """Maximal marginal relevance: pick ``k`` candidates, each time the argmax of
    ``lambda_ * rel - (1 - lambda_) * max cosine to those already picked``.

    ``relevance`` is min-max rescaled to [0, 1] first (all equal -> 1); ``vectors`` are
    unit-length rows aligned with ``candidates``. The first pick is always the most relevant;
    ties go to the earlier candidate. Returns the picked ids in order.
    """
    n = len(candidates)
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(relevance) != n:
        raise ValueError(f"relevance has {len(relevance)} entries for {n} candidates")
    if vectors.ndim != 2 or vectors.shape[0] != n:
        raise ValueError(f"vectors must have one row per candidate, got shape {vectors.shape}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be between 0 and 1, got {lambda_!r}")
    if n == 0 or k == 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    if not np.all(np.isfinite(rel)):
        raise ValueError("relevance contains a non-finite value")
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones(n)

    sims = vectors @ vectors.T
    picked = [int(np.argmax(rel))]
    available = np.ones(n, dtype=bool)
    available[picked[0]] = False
    max_sim = sims[picked[0]].copy()
    while len(picked) < min(k, n):
        gain = lambda_ * rel - (1.0 - lambda_) * max_sim
        gain[~available] = -np.inf
        best = int(np.argmax(gain))  # argmax returns the first maximum: earlier candidate
        picked.append(best)
        available[best] = False
        np.maximum(max_sim, sims[best], out=max_sim)
    return [candidates[i] for i in picked]
