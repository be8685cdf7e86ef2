"""The vector index by size: exact search for small collections, a trained IVF index for large ones.

Up to ``exact_max`` passages the index is ``IndexIDMap2(IndexFlatIP)``: exact, no training, and
fast enough (one query scans every vector). Above it, :func:`maybe_upgrade` (called at commit)
replaces it with an ``IndexIVFScalarQuantizer`` (8-bit codes of the residuals, inner product,
``nlist = NLIST_PER_SQRT * sqrt(N)`` lists) trained on a sample of the vectors it already holds.
The number of lists probed per query is tuned at training time so that the top 10 agree with exact
search on at least ``recall_target`` of a held-out sample, and stored in the index file.

Why IVF-SQ8 (see bench/bench_vectors.py for the figures): it supports everything the index is
used for -- ``add_with_ids`` after training, ``remove_ids`` (HNSW cannot remove), ``reconstruct``
by id (through a hash-table direct map), filtered search through an ``IDSelector``, and
``faiss.write_index`` / ``read_index`` -- at a quarter of the memory of float vectors.

Reconstructed vectors of an IVF-SQ8 index are approximate (8 bits per dimension; cosine to the
original about 0.9999). That is fine for MMR and for re-using the vector of an unchanged passage
at ingest: re-encoding a decoded vector with the same quantiser gives back the same codes, and a
retrain moves it by at most one quantisation step, far below what changes a ranking.

The size at training time is not stored separately: ``nlist`` records it
(``N_trained = (nlist / NLIST_PER_SQRT) ** 2``), so an index file is self-describing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from rag.settings import Settings

__all__ = [
    "Exclusion",
    "VectorPolicy",
    "describe",
    "ids_of",
    "is_exact",
    "maybe_upgrade",
    "merge_indexes",
    "new_index",
    "reconstruct_many",
    "remove_ids",
    "search",
]

NLIST_PER_SQRT = 4  # lists per sqrt(N); 4..16 is the usual range, 4 trains fastest on 2 cores
MIN_NLIST = 16
TRAIN_POINTS_PER_LIST = 48  # k-means sample per list (faiss warns below 39)
TRAIN_ITERATIONS = 12
TUNE_QUERIES = 256  # held-out vectors used to pick nprobe
TUNE_NOISE = 0.6  # queries are perturbed copies: questions sit farther from passages than copies
# Never fewer than 16 lists: the perturbed tuning queries are easier than real questions (at 250k
# passages nprobe=4 passed tuning but gave recall 0.94 on BBC titles), and 16 lists of an index
# sized 4*sqrt(N) cost well under a millisecond even at 1M passages.
NPROBE_STEPS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
# With a filter that keeps at most this many passages, score them exactly instead of probing.
EXACT_FILTER_MAX = 20_000
# One question is one query: faiss's OpenMP threads only add barrier waits, and when other
# processes keep the cores busy two threads made a 1k-passage search 60x slower (0.4 -> 25 ms)
# and a 100k flat one 2.5x slower (bench/bench_query.py). The OpenMP thread count is a per-thread
# setting, so searching threads use one and training restores the default for its own thread.
SEARCH_THREADS = 1
_TRAIN_THREADS = max(1, faiss.omp_get_max_threads())


@dataclass(frozen=True)
class VectorPolicy:
    """When the vector index changes type; built from Settings by the caller."""

    exact_max: int = 50_000  # above this many vectors: approximate (IVF-SQ8)
    retrain_growth: float = 4.0  # retrain when the index is this many times its training size
    recall_target: float = 0.95  # recall@10 against exact search that nprobe must reach
    seed: int = 1234

    @classmethod
    def from_settings(cls, settings: Settings) -> VectorPolicy:
        return cls(
            exact_max=settings.vector_exact_max,
            retrain_growth=settings.vector_retrain_growth,
            recall_target=settings.vector_recall_target,
        )


def new_index(dimension: int) -> faiss.Index:
    """An empty exact index; ids are int64 chunk rowids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def _ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def is_exact(index: faiss.Index) -> bool:
    return _ivf(index) is None


def describe(index: faiss.Index) -> str:
    """A short label such as ``flat`` or ``ivf2048-sq8 nprobe=24``."""
    ivf = _ivf(index)
    if ivf is None:
        return "flat"
    return f"ivf{ivf.nlist}-sq8 nprobe={ivf.nprobe}"


def ids_of(index: faiss.Index) -> np.ndarray:
    """Every id in the index (unsorted int64); raises ValueError for an index without ids."""
    id_map = getattr(index, "id_map", None)
    if id_map is not None:
        return faiss.vector_to_array(id_map).astype(np.int64)
    ivf = _ivf(index)
    if ivf is None:
        raise ValueError(f"{type(index).__name__} keeps no passage ids")
    inv = ivf.invlists
    parts = [np.zeros(0, np.int64)]
    for lst in range(ivf.nlist):
        n = inv.list_size(lst)
        if n:
            parts.append(faiss.rev_swig_ptr(inv.get_ids(lst), n).astype(np.int64))
    return np.concatenate(parts)


def reconstruct_many(index: faiss.Index, ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """The stored vectors of ``ids`` as float32 rows (approximate for IVF-SQ8)."""
    keys = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(keys) == 0:
        return np.zeros((0, index.d), np.float32)
    return np.asarray(index.reconstruct_batch(keys), dtype=np.float32)


def remove_ids(index: faiss.Index, ids: np.ndarray) -> int:
    """Remove ``ids``; an IVF index with a hash-table direct map needs an IDSelectorArray."""
    keys = np.ascontiguousarray(ids, dtype=np.int64)
    if len(keys) == 0:
        return 0
    return int(index.remove_ids(faiss.IDSelectorArray(len(keys), faiss.swig_ptr(keys))))


def _exact_subset(
    index: faiss.Index, q: np.ndarray, k: int, allowed: np.ndarray
) -> list[tuple[int, float]]:
    keys = np.unique(allowed.astype(np.int64))
    try:
        vecs = reconstruct_many(index, keys)
    except RuntimeError:  # some id is not in the index: drop the missing ones (slow path)
        keys = keys[_contains(index, keys)]
        vecs = reconstruct_many(index, keys)
    if len(keys) == 0:
        return []
    scores = vecs @ q
    top = np.argsort(-scores, kind="stable")[:k]
    return [(int(keys[i]), float(scores[i])) for i in top]


def _contains(index: faiss.Index, keys: np.ndarray) -> np.ndarray:
    """Mask of keys present in an IVF index (reconstruct of a missing id raises)."""
    present = np.ones(len(keys), bool)
    ivf = _ivf(index)
    if ivf is None:
        return present
    for j, key in enumerate(keys):
        try:
            ivf.direct_map.get(int(key))
        except RuntimeError:
            present[j] = False
    return present


class Exclusion:
    """A selector of every id but ``ids`` (a segment's deleted passages), built once per commit."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._batch = faiss.IDSelectorBatch(self.ids)  # kept alive: the selector points at it
        self.selector = faiss.IDSelectorNot(self._batch)


def search(
    index: faiss.Index,
    query: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    excluded: Exclusion | None = None,
) -> list[tuple[int, float]]:
    """Top ``k`` (id, inner product) for one query, optionally only among ``allowed`` ids (which
    then must not hold ``excluded`` ones) or among all ids but ``excluded``."""
    if index.ntotal == 0 or k <= 0:
        return []
    q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
    ivf = _ivf(index)
    params = None
    if allowed is None and excluded is not None and len(excluded.ids):
        params = (
            faiss.SearchParameters(sel=excluded.selector)
            if ivf is None
            else faiss.SearchParametersIVF(sel=excluded.selector, nprobe=ivf.nprobe)
        )
    if allowed is not None:
        if len(allowed) == 0:
            return []
        if ivf is not None and len(allowed) <= EXACT_FILTER_MAX:
            # A selective filter leaves most probed lists empty of allowed ids: score them all.
            return _exact_subset(index, q[0], k, allowed)
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if ivf is None:
            params = faiss.SearchParameters(sel=sel)
        else:
            # Probe more lists the more the filter discards, so k allowed ids are still found.
            share = min(1.0, len(allowed) / max(1, index.ntotal))
            nprobe = min(ivf.nlist, max(ivf.nprobe, math.ceil(ivf.nprobe / share)))
            params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
    k = min(k, index.ntotal)
    faiss.omp_set_num_threads(SEARCH_THREADS)
    scores, ids = index.search(q, k, params=params)
    hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
    if allowed is not None and ivf is not None and len(hits) < min(k, len(allowed)):
        return _exact_subset(index, q[0], k, allowed)
    return hits


# --- upgrade ----------------------------------------------------------------------------------


def trained_size(index: faiss.Index) -> int:
    """Number of vectors the IVF index was sized for (0 for an exact index)."""
    ivf = _ivf(index)
    return 0 if ivf is None else int((ivf.nlist / NLIST_PER_SQRT) ** 2)


def _all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    ids = ids_of(index)
    if is_exact(index) and isinstance(faiss.downcast_index(index.index), faiss.IndexFlat):
        # Rows of the flat storage are in the same order as id_map.
        flat = faiss.downcast_index(index.index)
        vecs = faiss.rev_swig_ptr(flat.get_xb(), index.ntotal * index.d)
        return ids, np.array(vecs, dtype=np.float32).reshape(index.ntotal, index.d)
    return ids, reconstruct_many(index, ids)


def _exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of the exact top ``k`` per query (unordered), in blocks (no copy of
    ``vectors``)."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(vectors), 65_536):
        scores = queries @ vectors[start : start + 65_536].T
        rows = np.arange(start, start + scores.shape[1], dtype=np.int64)
        best_s = np.hstack([best_s, scores])
        best_i = np.hstack([best_i, np.broadcast_to(rows, scores.shape)])
        keep = np.argpartition(-best_s, min(k, best_s.shape[1]) - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(best_s, keep, axis=1)
        best_i = np.take_along_axis(best_i, keep, axis=1)
    return best_i


def _tune_nprobe(
    ivf: faiss.IndexIVF, vectors: np.ndarray, ids: np.ndarray, policy: VectorPolicy
) -> int:
    """The smallest nprobe whose top 10 reach the recall target on perturbed sample queries,
    scored against exact inner-product search over all the vectors (with a small margin)."""
    rng = np.random.default_rng(policy.seed + 1)
    n = len(vectors)
    pick = rng.choice(n, size=min(TUNE_QUERIES, n), replace=False)
    noise = rng.standard_normal((len(pick), vectors.shape[1])).astype(np.float32)
    noise *= TUNE_NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
    queries = vectors[pick] + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = min(10, n)
    truth = ids[_exact_top(vectors, queries, k)]
    target = min(1.0, policy.recall_target + 0.015)  # margin: the sample is small
    for nprobe in NPROBE_STEPS:
        if nprobe >= ivf.nlist:
            break
        ivf.nprobe = nprobe
        _, found = ivf.search(queries, k)
        hit = sum(len(np.intersect1d(t, f)) for t, f in zip(truth, found, strict=True))
        if hit / truth.size >= target:
            return nprobe
    return ivf.nlist


def build_ivf(vectors: np.ndarray, ids: np.ndarray, policy: VectorPolicy) -> faiss.IndexIVF:
    """Train an IVF-SQ8 index on a sample of ``vectors`` and add them all under ``ids``."""
    n, d = vectors.shape
    faiss.omp_set_num_threads(_TRAIN_THREADS)
    # Not capped by n: trained_size() reads the training size back from nlist. Below ~40 points
    # per list (only tiny thresholds, as in tests) faiss warns but trains.
    nlist = min(n, max(MIN_NLIST, int(NLIST_PER_SQRT * math.sqrt(n))))
    quantizer = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFScalarQuantizer(
        quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    ivf.cp.niter = TRAIN_ITERATIONS
    ivf.cp.seed = policy.seed
    ivf.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
    rng = np.random.default_rng(policy.seed)
    sample = rng.choice(n, size=min(n, nlist * TRAIN_POINTS_PER_LIST), replace=False)
    ivf.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    ivf.add_with_ids(vectors, ids)
    ivf.nprobe = _tune_nprobe(ivf, vectors, ids, policy)
    return ivf


def maybe_upgrade(index: faiss.Index, policy: VectorPolicy) -> faiss.Index:
    """The index to commit: switched to IVF when it has outgrown exact search, retrained when it
    has grown ``retrain_growth`` times since training, back to exact when it has shrunk to half
    the threshold. Returns ``index`` itself when nothing needs to change."""
    n = index.ntotal
    if is_exact(index):
        if n <= policy.exact_max:
            return index
    elif n > policy.exact_max // 2 and n <= policy.retrain_growth * max(1, trained_size(index)):
        return index
    ids, vectors = _all_vectors(index)
    if n <= policy.exact_max:
        flat = new_index(index.d)
        flat.add_with_ids(vectors, ids)
        return flat
    return build_ivf(vectors, ids, policy)


def merge_indexes(
    parts: Sequence[tuple[faiss.Index, np.ndarray]], dimension: int, policy: VectorPolicy
) -> faiss.Index:
    """One index holding the ``keep`` ids of each (index, keep) part: exact up to
    ``policy.exact_max`` vectors; above it the largest trained IVF part is reused when the
    result stays within ``retrain_growth`` of what it was trained for (its codes are kept, the
    others' vectors are added: no retraining), else a new IVF is trained on everything. The
    parts may be changed."""
    n = sum(len(keep) for _, keep in parts)
    if n <= policy.exact_max:
        flat = new_index(dimension)
        for index, keep in parts:
            if len(keep):
                flat.add_with_ids(reconstruct_many(index, keep), keep.astype(np.int64))
        return flat
    reusable = [
        (index.ntotal, i)
        for i, (index, _) in enumerate(parts)
        if not is_exact(index) and n <= policy.retrain_growth * max(1, trained_size(index))
    ]
    if reusable:
        base_no = max(reusable)[1]
        base, keep = parts[base_no]
        drop = np.setdiff1d(ids_of(base), keep, assume_unique=True)
        remove_ids(base, drop)
        faiss.omp_set_num_threads(_TRAIN_THREADS)
        for j, (index, keep) in enumerate(parts):
            if j != base_no and len(keep):
                base.add_with_ids(reconstruct_many(index, keep), keep.astype(np.int64))
        return base
    ids = np.concatenate([keep.astype(np.int64) for _, keep in parts])
    vectors = np.concatenate([reconstruct_many(index, keep) for index, keep in parts])
    return build_ivf(vectors, ids, policy)
