"""The vector index by size: exact below a threshold, a trained IVF-SQ8 index above it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.settings import Settings
from rag.store.vectors import (
    Exclusion,
    VectorPolicy,
    describe,
    ids_of,
    is_exact,
    maybe_upgrade,
    merge_indexes,
    new_index,
    reconstruct_many,
    remove_ids,
    search,
    trained_size,
)
from rag.system import System

DIM = 64
POLICY = VectorPolicy(exact_max=5_000)


def clustered(n: int, seed: int, centres: int = 200) -> np.ndarray:
    """Unit vectors around random centres, like passages around topics."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, DIM))
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def queries_near(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = x[rng.choice(len(x), n, replace=False)] + 0.08 * rng.standard_normal((n, DIM))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def brute_top(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[set[int]]:
    scores = q @ x.T
    return [set(ids[np.argsort(-row)[:k]].tolist()) for row in scores]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x = clustered(20_000, seed=1)
    ids = np.arange(20_000, dtype=np.int64) * 3 + 7  # sparse ids, like rowids after deletions
    return x, ids


@pytest.fixture(scope="module")
def upgraded(data: tuple[np.ndarray, np.ndarray]) -> faiss.Index:
    x, ids = data
    flat = new_index(DIM)
    flat.add_with_ids(x, ids)
    ivf = maybe_upgrade(flat, POLICY)
    assert not is_exact(ivf)
    return ivf


def copy_index(index: faiss.Index) -> faiss.Index:
    return faiss.deserialize_index(faiss.serialize_index(index))


def test_small_index_stays_exact() -> None:
    flat = new_index(DIM)
    flat.add_with_ids(clustered(100, seed=2), np.arange(100, dtype=np.int64))
    assert maybe_upgrade(flat, POLICY) is flat
    assert describe(flat) == "flat"


def test_ann_recall_at_10_against_brute_force(
    data: tuple[np.ndarray, np.ndarray], upgraded: faiss.Index
) -> None:
    x, ids = data
    q = queries_near(x, 200, seed=3)
    truth = brute_top(x, ids, q, 10)
    found = [{i for i, _ in search(upgraded, row, 10)} for row in q]
    recall = np.mean([len(t & f) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95, (recall, describe(upgraded))


def test_upgrade_keeps_exact_matches(
    data: tuple[np.ndarray, np.ndarray], upgraded: faiss.Index
) -> None:
    """A stored vector as the query finds its own id first, before and after the upgrade."""
    x, ids = data
    rng = np.random.default_rng(4)
    for j in rng.choice(len(x), 50, replace=False):
        assert search(upgraded, x[j], 1)[0][0] == ids[j]


def test_ids_and_reconstruct_after_upgrade(
    data: tuple[np.ndarray, np.ndarray], upgraded: faiss.Index
) -> None:
    x, ids = data
    assert np.array_equal(np.sort(ids_of(upgraded)), ids)
    back = reconstruct_many(upgraded, ids[:100])
    # 8-bit codes: approximate, but close enough for MMR and re-use of unchanged passages.
    cosine = np.sum(back * x[:100], axis=1) / np.linalg.norm(back, axis=1)
    assert np.min(cosine) > 0.995
    assert back.dtype == np.float32 and back.shape == (100, DIM)


def test_add_remove_and_round_trip(
    data: tuple[np.ndarray, np.ndarray], upgraded: faiss.Index, tmp_path: Path
) -> None:
    x, ids = data
    index = copy_index(upgraded)
    new = clustered(300, seed=5)
    new_ids = np.arange(10**9, 10**9 + 300, dtype=np.int64)
    index.add_with_ids(new, new_ids)
    gone = ids[::7]
    assert remove_ids(index, gone) == len(gone)
    expected = np.sort(np.concatenate([np.setdiff1d(ids, gone), new_ids]))
    assert np.array_equal(np.sort(ids_of(index)), expected)
    assert search(index, new[10], 1)[0][0] == new_ids[10]
    hits = {i for i, _ in search(index, x[0], 50)}  # ids[0] is among the removed
    assert not hits & set(gone.tolist())

    path = tmp_path / "vectors.faiss"
    faiss.write_index(index, str(path))
    loaded = faiss.read_index(str(path))
    assert describe(loaded) == describe(index)
    assert np.array_equal(np.sort(ids_of(loaded)), expected)
    assert np.allclose(reconstruct_many(loaded, new_ids[:5]), reconstruct_many(index, new_ids[:5]))
    q = queries_near(x, 20, seed=6)
    for row in q:
        assert search(loaded, row, 10) == search(index, row, 10)


@pytest.mark.parametrize("size", [5, 3_000, 15_000])
def test_filtered_search_stays_inside_the_filter(
    data: tuple[np.ndarray, np.ndarray], upgraded: faiss.Index, size: int
) -> None:
    """Small filters are scored exactly; large ones probe more lists; both return only allowed
    ids, and as many as asked for."""
    x, ids = data
    rng = np.random.default_rng(size)
    allowed = rng.choice(ids, size, replace=False)
    for row in queries_near(x, 5, seed=7):
        hits = search(upgraded, row, 10, allowed)
        assert len(hits) == min(10, size)
        assert {i for i, _ in hits} <= set(allowed.tolist())
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
    if size <= 3_000:  # exact over the allowed ids: the best allowed vector comes first
        mask = np.isin(ids, allowed)
        q = queries_near(x, 1, seed=8)[0]
        best = ids[mask][np.argmax(x[mask] @ q)]
        assert search(upgraded, q, 1, allowed)[0][0] == best
    assert search(upgraded, x[0], 10, np.zeros(0, np.int64)) == []


def test_retrain_on_growth_and_back_to_exact_on_shrink(
    data: tuple[np.ndarray, np.ndarray], upgraded: faiss.Index
) -> None:
    x, ids = data
    index = copy_index(upgraded)
    before = trained_size(index)
    assert maybe_upgrade(index, POLICY) is index  # nothing changed
    grown = dataclasses.replace(POLICY, retrain_growth=1.5)
    extra = clustered(int(before * 0.6), seed=9)
    index.add_with_ids(extra, np.arange(10**8, 10**8 + len(extra), dtype=np.int64))
    retrained = maybe_upgrade(index, grown)
    assert retrained is not index and trained_size(retrained) > before
    assert np.array_equal(np.sort(ids_of(retrained)), np.sort(ids_of(index)))

    remove_ids(index, ids_of(index)[POLICY.exact_max // 4 :])
    flat = maybe_upgrade(index, POLICY)
    assert is_exact(flat) and flat.ntotal == POLICY.exact_max // 4
    kept = ids_of(flat)
    assert np.allclose(reconstruct_many(flat, kept[:10]), reconstruct_many(index, kept[:10]))


def test_search_excluding_deleted_ids(
    data: tuple[np.ndarray, np.ndarray], upgraded: faiss.Index
) -> None:
    x, ids = data
    flat = new_index(DIM)
    flat.add_with_ids(x[:2000], ids[:2000])
    for index in (flat, upgraded):
        q = queries_near(x[:2000], 5, seed=4)
        for row in q:
            top = [i for i, _ in search(index, row, 10)]
            gone = Exclusion(np.array(sorted(top[:4]), np.int64))
            kept = search(index, row, 10, excluded=gone)
            assert not set(top[:4]) & {i for i, _ in kept}
            assert [i for i, _ in kept][:6] == top[4:]  # the rest keep their order
        assert search(index, q[0], 5, excluded=Exclusion(np.zeros(0, np.int64))) == search(
            index, q[0], 5
        )


def test_merging_keeps_a_trained_ivf_until_it_has_outgrown_it(
    data: tuple[np.ndarray, np.ndarray], upgraded: faiss.Index
) -> None:
    x, ids = data
    extra = clustered(23_000, seed=1)[20_000:]  # new passages on the same topics
    extra_ids = np.arange(10**7, 10**7 + 3000, dtype=np.int64)
    small = new_index(DIM)
    small.add_with_ids(extra, extra_ids)
    keep_big = ids[::2]  # half of the big part's passages were deleted
    merged = merge_indexes(
        [(copy_index(upgraded), keep_big), (small, extra_ids[:2000])], DIM, POLICY
    )
    assert not is_exact(merged) and trained_size(merged) == trained_size(upgraded)
    assert describe(merged) == describe(upgraded)  # same lists, same nprobe: not retrained
    want = np.sort(np.concatenate([keep_big, extra_ids[:2000]]))
    assert np.array_equal(np.sort(ids_of(merged)), want)
    # Codes of the kept passages are the same bytes: reconstructions equal exactly.
    assert np.array_equal(
        reconstruct_many(merged, keep_big[:50]), reconstruct_many(upgraded, keep_big[:50])
    )
    np.testing.assert_allclose(reconstruct_many(merged, extra_ids[:5]), extra[:5], atol=0.02)
    q = queries_near(extra[:2000], 50, seed=12)
    truth = brute_top(extra[:2000], extra_ids[:2000], q, 1)
    assert (
        sum(
            bool({i for i, _ in search(merged, row, 10)} & t)
            for row, t in zip(q, truth, strict=True)
        )
        >= 45
    )
    # Grown past retrain_growth times its training size: trained again on everything.
    grown = dataclasses.replace(POLICY, retrain_growth=1.05)
    retrained = merge_indexes([(copy_index(upgraded), ids), (small, extra_ids)], DIM, grown)
    assert trained_size(retrained) > trained_size(upgraded)
    assert retrained.ntotal == len(ids) + len(extra_ids)
    # Shrunk to the exact threshold or below: exact again, vectors as stored.
    flat = merge_indexes([(copy_index(upgraded), ids[:100]), (small, extra_ids[:10])], DIM, POLICY)
    assert is_exact(flat) and flat.ntotal == 110
    assert np.array_equal(reconstruct_many(flat, ids[:3]), reconstruct_many(upgraded, ids[:3]))


def test_system_upgrades_at_commit_and_snapshot_verifies(
    tmp_path: Path, corpus_dir: Path, hash_embedder: object
) -> None:
    """End to end: a low threshold turns the committed index into IVF; search, delete and
    verification work on it."""
    settings = Settings(index_dir=tmp_path / "index", vector_exact_max=4)
    system = System(settings, embedder=hash_embedder)
    system.ingest([corpus_dir])
    reader = system.reader()
    assert not is_exact(reader._view.states[0].seg.vectors)  # type: ignore[attr-defined]
    assert system.store.check() == []
    hits = system.search("the", k=3)
    assert hits
    first = hits[0]
    assert reader.vectors_for([reader.passage_ids(first.article.id)[0]]).shape == (
        1,
        hash_embedder.dimension,  # type: ignore[attr-defined]
    )
    (corpus_dir / "new_story.txt").write_text(
        "Kestrel nesting survey\n\nVolunteers counted kestrel nests along the estuary this spring. "
        "The survey found more nests than last year near the old mill.",
        encoding="utf-8",
    )
    system.ingest([corpus_dir])
    assert system.store.check() == []
    assert system.search("kestrel nests estuary", k=1)[0].article.title.startswith("Kestrel")
    system.delete([first.article.source])
    assert system.store.check() == []
    assert all(h.article.id != first.article.id for h in system.search("the", k=5))
