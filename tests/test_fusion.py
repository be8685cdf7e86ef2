"""Fusion and MMR on small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag.retrieval.fusion import convex, minmax, mmr, rrf


def test_rrf_sums_reciprocal_ranks() -> None:
    a = [(1, 0.9), (2, 0.8), (3, 0.7)]
    b = [(3, 5.0), (1, 4.0)]
    fused = dict(rrf([a, b], k=60))
    # id 1: rank 1 in a, rank 2 in b -> 1/61 + 1/62
    # id 2: rank 2 in a only         -> 1/62
    # id 3: rank 3 in a, rank 1 in b -> 1/63 + 1/61
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert [i for i, _ in rrf([a, b], k=60)] == [1, 3, 2]


def test_rrf_weights_can_flip_the_order() -> None:
    a = [(1, 0.9), (2, 0.8), (3, 0.7)]
    b = [(3, 5.0), (1, 4.0)]
    # id 1: 1/61 + 2/62 = 0.016393 + 0.032258 = 0.048651
    # id 3: 1/63 + 2/61 = 0.015873 + 0.032787 = 0.048660  -> 3 now beats 1
    fused = rrf([a, b], k=60, weights=[1.0, 2.0])
    assert [i for i, _ in fused] == [3, 1, 2]
    assert fused[0][1] == pytest.approx(1 / 63 + 2 / 61)


def test_rrf_ignores_scores_and_repeats() -> None:
    # Same positions, wildly different scores: same result. A repeated id counts once.
    x = rrf([[(7, 1e9), (8, -3.0)]], k=1)
    y = rrf([[(7, 0.1), (8, 0.0), (7, 0.0)]], k=1)
    assert x == y == [(7, 1 / 2), (8, 1 / 3)]


def test_rrf_ties_keep_better_rank_then_first_seen() -> None:
    # 5 and 6 both get 1/61 + 1/62; 5 has rank 1 somewhere and so does 6 -> first seen (5).
    fused = rrf([[(5, 1.0), (6, 0.5)], [(6, 1.0), (5, 0.5)]])
    assert [i for i, _ in fused] == [5, 6]
    assert fused[0][1] == pytest.approx(fused[1][1])


def test_rrf_bad_arguments() -> None:
    with pytest.raises(ValueError, match="weights"):
        rrf([[(1, 1.0)]], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="weights"):
        rrf([[(1, 1.0)]], weights=[-1.0])
    with pytest.raises(ValueError, match="k must"):
        rrf([[(1, 1.0)]], k=-1)
    assert rrf([]) == []


def test_minmax_edge_cases() -> None:
    assert minmax([]) == {}
    assert minmax([(4, -2.5)]) == {4: 1.0}
    assert minmax([(1, 0.3), (2, 0.3)]) == {1: 1.0, 2: 1.0}
    # (0.9, 0.7, 0.5): span 0.4 -> 1.0, 0.5, 0.0
    got = minmax([(1, 0.9), (2, 0.7), (3, 0.5)])
    assert got == pytest.approx({1: 1.0, 2: 0.5, 3: 0.0})


def test_convex_mixes_normalised_scores() -> None:
    dense = [(1, 0.9), (2, 0.7), (3, 0.5)]  # normalised: 1 -> 1.0, 2 -> 0.5, 3 -> 0.0
    lexical = [(3, 10.0), (4, 6.0), (1, 2.0)]  # normalised: 3 -> 1.0, 4 -> 0.5, 1 -> 0.0
    # w = 0.7: 1 = 0.7*1 + 0.3*0 = 0.70; 2 = 0.7*0.5 + 0 = 0.35 (missing from lexical);
    #          3 = 0.7*0 + 0.3*1 = 0.30; 4 = 0 + 0.3*0.5 = 0.15 (missing from dense)
    got = convex(dense, lexical, dense_weight=0.7)
    assert [i for i, _ in got] == [1, 2, 3, 4]
    assert [s for _, s in got] == pytest.approx([0.70, 0.35, 0.30, 0.15])


def test_convex_ties_keep_first_seen() -> None:
    dense = [(1, 0.9), (2, 0.7), (3, 0.5)]
    lexical = [(3, 10.0), (4, 6.0), (1, 2.0)]
    # w = 0.5: 1 = 0.5, 2 = 0.25, 3 = 0.5, 4 = 0.25 -> ties broken dense-first: 1, 3, 2, 4
    got = convex(dense, lexical, dense_weight=0.5)
    assert [i for i, _ in got] == [1, 3, 2, 4]
    assert [s for _, s in got] == pytest.approx([0.5, 0.5, 0.25, 0.25])


def test_convex_single_candidate_and_extreme_weights() -> None:
    # A single candidate normalises to 1.0.
    assert convex([(9, 0.2)], [], dense_weight=0.5) == [(9, 0.5)]
    # w = 1: only dense counts; lexical-only candidates come last with 0.
    got = convex([(1, 0.2), (2, 0.1)], [(3, 7.0)], dense_weight=1.0)
    assert got == [(1, 1.0), (2, 0.0), (3, 0.0)]
    got = convex([(1, 0.2), (2, 0.1)], [(3, 7.0)], dense_weight=0.0)
    assert got[0] == (3, 1.0)
    assert convex([], [], 0.5) == []


def test_convex_bad_arguments() -> None:
    with pytest.raises(ValueError, match="dense_weight"):
        convex([(1, 1.0)], [], dense_weight=1.5)
    with pytest.raises(ValueError, match="non-finite"):
        convex([(1, math.nan)], [], dense_weight=0.5)


def _two_dup_one_other() -> tuple[list[int], list[float], np.ndarray]:
    # 10 and 11 point the same way (cosine 1); 12 is orthogonal to both.
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # Relevance 0.9, 0.85, 0.5 rescales to 1.0, 0.875, 0.0.
    return [10, 11, 12], [0.9, 0.85, 0.5], vectors


def test_mmr_prefers_diversity_at_low_lambda() -> None:
    ids, rel, vectors = _two_dup_one_other()
    # First pick: most relevant, 10. Then at lambda 0.5:
    #   11: 0.5*0.875 - 0.5*1 = -0.0625;  12: 0.5*0 - 0.5*0 = 0.0  -> 12, then 11.
    assert mmr(ids, rel, vectors, k=3, lambda_=0.5) == [10, 12, 11]


def test_mmr_prefers_relevance_at_high_lambda() -> None:
    ids, rel, vectors = _two_dup_one_other()
    # lambda 0.7: 11: 0.7*0.875 - 0.3*1 = 0.3125;  12: 0 - 0 = 0.0  -> 11, then 12.
    assert mmr(ids, rel, vectors, k=3, lambda_=0.7) == [10, 11, 12]
    assert mmr(ids, rel, vectors, k=3, lambda_=1.0) == [10, 11, 12]


def test_mmr_k_bounds_and_ties() -> None:
    ids, rel, vectors = _two_dup_one_other()
    assert mmr(ids, rel, vectors, k=10, lambda_=0.5) == [10, 12, 11]
    assert mmr(ids, rel, vectors, k=1, lambda_=0.5) == [10]
    assert mmr(ids, rel, vectors, k=0, lambda_=0.5) == []
    assert mmr([], [], np.zeros((0, 2)), k=3, lambda_=0.5) == []
    # All relevance equal -> all rescale to 1; the first pick is the earliest candidate.
    assert mmr(ids, [0.4, 0.4, 0.4], vectors, k=2, lambda_=0.5) == [10, 12]


def test_mmr_bad_arguments() -> None:
    ids, rel, vectors = _two_dup_one_other()
    with pytest.raises(ValueError, match="relevance"):
        mmr(ids, rel[:2], vectors, k=2, lambda_=0.5)
    with pytest.raises(ValueError, match="vectors"):
        mmr(ids, rel, vectors[:2], k=2, lambda_=0.5)
    with pytest.raises(ValueError, match="lambda_"):
        mmr(ids, rel, vectors, k=2, lambda_=1.5)
