"""Vector index types by size: build time, recall@10 against exact search, latency, bytes/passage.

    python bench/bench_vectors.py --index BBC_INDEX [--sizes 250000] [--queries 200]
        [--types flat,flat16,ivfsq8,ivfsq8x16,ivf16,ivfpq,hnsw,hnswsq8,auto]

Data: see bench/scale_data.py (real BBC vectors + noisy copies; BBC titles as queries). Latency is
one query at a time (as a question arrives), all index types interleaved query by query; median and
95th percentile. ``auto`` is what rag/store/vectors.py builds at commit (IVF-SQ8, nprobe auto-tuned).
Recall@10 is against exact float32 inner-product search over the same vectors.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from scale_data import Timer, load_real, loadavg, percentiles, scaled, scaled_vectors, titles

from rag.store.vectors import VectorPolicy, build_ivf, describe

D = 384
IP = faiss.METRIC_INNER_PRODUCT


def _ivf_sq(x: np.ndarray, ids: np.ndarray, qt: int, per_sqrt: int) -> faiss.Index:
    nlist = int(per_sqrt * math.sqrt(len(x)))
    ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(D), D, nlist, qt, IP)
    ivf.cp.niter, ivf.cp.max_points_per_centroid = 12, 48
    ivf.train(x[np.random.default_rng(0).choice(len(x), min(len(x), nlist * 48), replace=False)])
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    ivf.add_with_ids(x, ids)
    return ivf


def _ivf_pq(x: np.ndarray, ids: np.ndarray) -> faiss.Index:
    nlist = int(4 * math.sqrt(len(x)))
    ivf = faiss.IndexIVFPQ(faiss.IndexFlatIP(D), D, nlist, 48, 8, IP)
    ivf.cp.niter, ivf.cp.max_points_per_centroid = 12, 48
    ivf.train(x[np.random.default_rng(0).choice(len(x), min(len(x), 65_536), replace=False)])
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    ivf.add_with_ids(x, ids)
    return ivf


def _hnsw(x: np.ndarray, ids: np.ndarray, sq: bool) -> faiss.Index:
    inner = (
        faiss.IndexHNSWSQ(D, faiss.ScalarQuantizer.QT_8bit, 32, IP)
        if sq
        else faiss.IndexHNSWFlat(D, 32, IP)
    )
    inner.hnsw.efConstruction = 40
    if sq:
        inner.train(x[:50_000])
    index = faiss.IndexIDMap2(inner)
    index.add_with_ids(x, ids)
    inner.hnsw.efSearch = 64
    return index


def _flat16(x: np.ndarray, ids: np.ndarray) -> faiss.Index:
    index = faiss.IndexIDMap2(faiss.IndexScalarQuantizer(D, faiss.ScalarQuantizer.QT_fp16, IP))
    index.add_with_ids(x, ids)
    return index


def _flat(x: np.ndarray, ids: np.ndarray) -> faiss.Index:
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(D))
    index.add_with_ids(x, ids)
    return index


BUILDERS: dict[str, Callable[[np.ndarray, np.ndarray], faiss.Index]] = {
    "flat": _flat,
    "flat16": _flat16,
    "ivfsq8": lambda x, i: _ivf_sq(x, i, faiss.ScalarQuantizer.QT_8bit, 4),
    "ivfsq8x16": lambda x, i: _ivf_sq(x, i, faiss.ScalarQuantizer.QT_8bit, 16),
    "ivf16": lambda x, i: _ivf_sq(x, i, faiss.ScalarQuantizer.QT_fp16, 4),
    "ivfpq": _ivf_pq,
    "hnsw": lambda x, i: _hnsw(x, i, sq=False),
    "hnswsq8": lambda x, i: _hnsw(x, i, sq=True),
    "auto": lambda x, i: build_ivf(x, i, VectorPolicy()),
}


def recall(index: faiss.Index, q: np.ndarray, truth: np.ndarray) -> float:
    _, found = index.search(q, 10)
    return float(
        np.mean([len(np.intersect1d(t, f)) / 10 for t, f in zip(truth, found, strict=True)])
    )


def set_probe(index: faiss.Index, value: int) -> None:
    try:
        faiss.extract_index_ivf(index).nprobe = value
    except RuntimeError:
        faiss.downcast_index(index.index).hnsw.efSearch = value


def tune(index: faiss.Index, name: str, q: np.ndarray, truth: np.ndarray) -> str:
    """The smallest nprobe / efSearch reaching recall 0.95 on these queries (fixed for flat and
    auto); returns a label of the setting."""
    if name in ("flat", "flat16"):
        return "exact"
    if name == "auto":
        return describe(index)
    steps = (
        (16, 32, 48, 64, 96, 128, 192, 256)
        if "hnsw" in name
        else (4, 8, 16, 24, 32, 48, 64, 96, 128, 256)
    )
    for v in steps:
        set_probe(index, v)
        if recall(index, q, truth) >= 0.95:
            break
    return ("efSearch=" if "hnsw" in name else "nprobe=") + str(v)


def sweep(real_dir: Path, folder: Path, n_queries: int) -> None:
    from rag.embedder import CheckedEmbeddings
    from rag.settings import Settings
    from rag.store.local import LocalStore

    index = LocalStore(folder).reader()._view.states[0].seg.vectors
    n = index.ntotal
    x = scaled_vectors(real_dir, n)
    q = np.asarray(CheckedEmbeddings(Settings()).embed(titles(n_queries, seed=1)), np.float32)
    exact = faiss.IndexFlatIP(D)
    exact.add(x)
    truth = exact.search(q, 10)[1] + 1  # rowids are 1..n
    del exact, x
    ivf = faiss.extract_index_ivf(index)
    tuned = ivf.nprobe
    print(f"{folder}: {n:,} passages, {describe(index)} (auto-tuned); load {loadavg()}")
    print(f"{'nprobe':>6} {'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7}")
    faiss.omp_set_num_threads(1)
    for nprobe in (4, 8, 16, 32, 64):
        ivf.nprobe = nprobe
        lat = []
        for row in q:
            t0 = time.perf_counter()
            index.search(row.reshape(1, -1), 50)
            lat.append(time.perf_counter() - t0)
        p50, p95 = percentiles(lat)
        mark = " (auto)" if nprobe == tuned else ""
        print(f"{nprobe:6} {recall(index, q, truth):9.3f} {p50:7.2f} {p95:7.2f}{mark}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True, help="BBC index built by rag ingest")
    ap.add_argument("--sizes", default="250000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--search-threads",
        type=int,
        default=1,
        help="OpenMP threads while timing queries (builds use 2); with other load on 2 cores one "
        "thread is 2-3x faster per single query than two",
    )
    ap.add_argument("--types", default="flat,flat16,ivfsq8,ivfsq8x16,ivf16,ivfpq,hnsw,hnswsq8,auto")
    ap.add_argument(
        "--sweep",
        type=Path,
        help="instead: recall and latency of a committed scale index (bench_query's --work "
        "folder) for a range of nprobe, against exact search over its float vectors",
    )
    args = ap.parse_args()
    if args.sweep:
        sweep(args.index, args.sweep, args.queries)
        return
    faiss.omp_set_num_threads(2)
    real, _, _, snap = load_real(args.index)
    from rag.embedder import CheckedEmbeddings
    from rag.settings import Settings

    emb = CheckedEmbeddings(Settings())
    q = np.asarray(emb.embed(titles(args.queries, seed=1)), np.float32)
    # Half the queries tune nprobe / efSearch, the other half measure recall and latency.
    q_tune, q_test = q[: len(q) // 2], q[len(q) // 2 :]
    print(f"real vectors: {len(real)} from {snap}; queries: {len(q)} BBC titles; load {loadavg()}")
    for n in [int(s) for s in args.sizes.split(",")]:
        x = scaled(real, n)
        ids = np.arange(n, dtype=np.int64) * 2 + 1
        exact = faiss.IndexFlatIP(D)
        exact.add(x)
        truth_tune = ids[exact.search(q_tune, 10)[1]]
        truth_test = ids[exact.search(q_test, 10)[1]]
        del exact
        built: dict[str, faiss.Index] = {}
        rows = []
        for name in args.types.split(","):
            with Timer() as t:
                built[name] = BUILDERS[name](x, ids)
            setting = tune(built[name], name, q_tune, truth_tune)
            size = len(faiss.serialize_index(built[name]))
            rows.append([name, setting, t.s, recall(built[name], q_test, truth_test), size / n])
            print(f"  built {name} in {t.s:.1f} s (load {loadavg()})", flush=True)
        faiss.omp_set_num_threads(args.search_threads)
        lat: dict[str, list[float]] = {name: [] for name in built}
        for _ in range(3):
            for row in q_test:
                for name, index in built.items():
                    t0 = time.perf_counter()
                    index.search(row.reshape(1, -1), 50)
                    lat[name].append(time.perf_counter() - t0)
        print(
            f"\n{n:,} passages (top 50 per query, {args.search_threads} search thread(s); "
            f"load {loadavg()})"
        )
        print(
            f"{'index':10} {'setting':26} {'build s':>8} {'recall@10':>9} {'p50 ms':>7} "
            f"{'p95 ms':>7} {'bytes/vec':>9}"
        )
        for name, setting, build_s, rec, bpv in rows:
            p50, p95 = percentiles(lat[name])
            print(
                f"{name:10} {setting:26} {build_s:8.1f} {rec:9.3f} {p50:7.2f} {p95:7.2f} {bpv:9.0f}"
            )
        del built, x
        faiss.omp_set_num_threads(2)


if __name__ == "__main__":
    main()
