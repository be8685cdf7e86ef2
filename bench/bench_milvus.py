"""SQuAD retrieval on the local store vs the Milvus store (Milvus Lite), in one run.

Ingests the same articles into a local index folder and into a Milvus Lite file (both in
temporary folders unless given), then asks every question of both, alternating which goes first,
through the whole retriever (fusion, sentence boost, MMR, collapse: `System.search`). Prints
hit@5, MRR@10 and p50/p95 query milliseconds for each and the Milvus/local ratio. Also scores
Milvus's own `hybrid_search` (dense + BM25 fused in the engine by its RRFRanker or its
WeightedRanker, nothing of ours above it) on the same questions, to see what our fusion keeps.

    python bench/squad_convert.py ../shared/eval/squad/dev-v1.1.json bench/data/squad-v1.1 --sample 1000 --seed 0
    python bench/bench_milvus.py bench/data/squad-v1.1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.embedder import CheckedEmbeddings  # noqa: E402
from rag.eval.metrics import Passage  # noqa: E402
from rag.eval.questions import load_questions  # noqa: E402
from rag.eval.runner import evaluate, format_table  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.system import System  # noqa: E402

K = 10


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def milvus_hybrid(system: System, k: int, ranker: Any) -> Any:
    """Milvus's hybrid_search (dense + BM25 fused by ``ranker`` inside the engine, nothing of
    ours above it) as a retrieve function."""
    from pymilvus import AnnSearchRequest

    from rag.store.milvus.rows import encode_terms, visible

    reader: Any = system.reader()
    client, names = reader.client, reader.names

    def retrieve(question: str) -> list[Passage]:
        vec = system.embedder.embed([question])[0]
        terms = " ".join(dict.fromkeys(encode_terms(question))) or "x"
        where = visible(reader._v)
        reqs = [
            AnnSearchRequest([list(map(float, vec))], "vector", {"metric_type": "IP"}, 50,
                             expr=where),
            AnnSearchRequest([terms], "sparse", {"metric_type": "BM25"}, 50, expr=where),
        ]  # fmt: skip
        found = client.hybrid_search(names.passages, reqs, ranker, limit=k,
                                     output_fields=["pid"])[0]  # fmt: skip
        rows = reader.passages([int(h["pid"]) for h in found])
        return [Passage(rows[int(h["pid"])][1].source, rows[int(h["pid"])][0].text)
                for h in found if int(h["pid"]) in rows]  # fmt: skip

    return retrieve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder with articles/ and questions.jsonl")
    ap.add_argument("--work", type=Path, help="folder for both indexes (default: temporary)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
    args = ap.parse_args(argv)

    questions = [q for q in load_questions(args.data / "questions.jsonl") if not q.impossible]
    if args.limit:
        questions = questions[: args.limit]
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-milvus-bench-"))
    embedder = CheckedEmbeddings(Settings())
    systems = {
        "local": System(Settings(index_dir=work / "local"), embedder=embedder),
        "milvus-lite": System(
            Settings(store="milvus", index_dir=work / "milvus", milvus_uri=str(work / "m.db")),
            embedder=embedder,
        ),
    }
    for name, system in systems.items():
        t = time.perf_counter()
        report = system.ingest([args.data / "articles"])
        print(f"{name}: {report.summary()} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        system.search("warm up")
    from pymilvus import RRFRanker, WeightedRanker

    s = systems["local"].settings
    hybrids = {  # the engine's two rankers, set like our retriever's fusions
        "hybrid-rrf": milvus_hybrid(systems["milvus-lite"], K, RRFRanker(s.rrf_k)),
        "hybrid-weighted": milvus_hybrid(
            systems["milvus-lite"], K, WeightedRanker(s.dense_weight, 1 - s.dense_weight)
        ),
    }
    found: dict[str, dict[str, list[Passage]]] = {n: {} for n in [*systems, *hybrids]}
    ms: dict[str, list[float]] = {n: [] for n in found}
    for i, q in enumerate(questions):
        order = list(systems) if i % 2 == 0 else list(reversed(systems))
        for name in order:
            t = time.perf_counter()
            hits = systems[name].search(q.question, k=K)
            ms[name].append((time.perf_counter() - t) * 1000)
            found[name][q.question] = [Passage(h.article.source, h.chunk.text) for h in hits]
        for name, hybrid in hybrids.items():
            t = time.perf_counter()
            found[name][q.question] = hybrid(q.question)
            ms[name].append((time.perf_counter() - t) * 1000)
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{len(questions)}", file=sys.stderr, flush=True)
    reports = {n: evaluate(questions, lambda q, n=n: found[n][q], k=K) for n in found}  # type: ignore[misc]
    print(f"questions: {args.data / 'questions.jsonl'} ({len(questions)} answerable), k={K}")
    skip = ("retrieve_ms", "answer_ms")  # the lookups above are cached: timings are below
    for line in format_table(reports).splitlines():
        cells = line.split()
        if cells and cells[0] not in skip and not all(c == "-" for c in cells[1:]):
            print(line)
    base = reports["local"]
    for name, report in reports.items():
        p50, p95 = pct(ms[name], 0.5), pct(ms[name], 0.95)
        d5 = (report.hit_at_5 or 0) - (base.hit_at_5 or 0)
        dm = (report.mrr_at_10 or 0) - (base.mrr_at_10 or 0)
        print(
            f"{name:14s} hit@5 {report.hit_at_5:.3f} ({d5:+.3f})  MRR@10 {report.mrr_at_10:.3f} "
            f"({dm:+.3f})  query p50 {p50:.1f} ms  p95 {p95:.1f} ms  "
            f"(p50 x{p50 / pct(ms['local'], 0.5):.2f} of local)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
