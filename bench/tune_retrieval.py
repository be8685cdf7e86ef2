"""Choose retrieval defaults with the evaluation harness: chunking, what a passage carries, BM25
parameters and fusion, all scored on the same questions.

For each chunking variant it builds a real index (bundled model, FAISS, BM25) once, takes the dense
and lexical candidate lists for every question once, and then scores every fusion setting on them.

    python bench/tune_retrieval.py bench/data/squad-v1.1 --chunks 400:1,700:1,1000:1
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.eval.metrics import Passage, score_retrieval  # noqa: E402
from rag.eval.questions import load_questions  # noqa: E402
from rag.retrieval.fusion import convex, rrf  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store.lexical import LexicalSegment, LexicalView, search  # noqa: E402
from rag.system import System  # noqa: E402
from rag.text.sentences import split_sentences  # noqa: E402
from rag.text.tokens import tokenize  # noqa: E402


def in_memory_bm25(ids: list[int], tokens: list[list[str]]) -> list[LexicalView]:
    """One BM25 segment over these passages, as the store keeps them (rows in id order)."""
    order = np.argsort(ids)
    seg = LexicalSegment.build([tokens[i] for i in order])
    return [LexicalView(seg, np.asarray(ids, np.int64)[order], np.zeros(0, np.int64))]


def with_bigrams(tokens: list[str]) -> list[str]:
    return tokens + [f"{a}_{b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def zscore_mix(dense, lexical, w: float):  # type: ignore[no-untyped-def]
    """Convex mix of z-scored scores (a candidate missing from a list gets that list's minimum)."""

    def z(r):  # type: ignore[no-untyped-def]
        if not r:
            return {}, 0.0
        v = np.array([s for _, s in r])
        sd = v.std() or 1.0
        return {i: (s - v.mean()) / sd for i, s in r}, float((v.min() - v.mean()) / sd)

    zd, md = z(dense)
    zl, ml = z(lexical)
    ids = set(zd) | set(zl)
    mixed = [(i, w * zd.get(i, md) + (1 - w) * zl.get(i, ml)) for i in ids]
    return sorted(mixed, key=lambda p: (-p[1], p[0]))


def fused_rankings(dense, lexical, how: str, w: float, rrf_k: int = 60):  # type: ignore[no-untyped-def]
    if how == "dense":
        return dense
    if how == "lexical":
        return lexical
    if how == "zmix":
        return zscore_mix(dense, lexical, w)
    if how == "rrf":
        return rrf([dense, lexical], k=rrf_k, weights=[w, 1 - w])
    return convex(dense, lexical, w)


def article_boost(ranking, article_of, gamma: float, top: int = 20):  # type: ignore[no-untyped-def]
    """Add ``gamma`` times the best score among the other candidates of the same article."""
    head = ranking[:top]
    best: dict[str, list[float]] = {}
    for i, sc in head:
        best.setdefault(article_of[i], []).append(sc)
    out = []
    for i, sc in head:
        others = sorted(best[article_of[i]], reverse=True)
        other = (
            others[1]
            if others[0] == sc and len(others) > 1
            else (others[0] if others[0] != sc else 0.0)
        )
        out.append((i, sc + gamma * other))
    out.sort(key=lambda p: -p[1])
    return out + list(ranking[top:])


def sentence_boost(ranking, sentence_terms, weights, mu: float, top: int = 20):  # type: ignore[no-untyped-def]
    """Add ``mu`` times the best idf-weighted share of question terms found in one sentence."""
    total = sum(weights.values()) or 1.0
    head = []
    for i, sc in ranking[:top]:
        best = max(
            (sum(w for t, w in weights.items() if t in sent) for sent in sentence_terms[i]),
            default=0.0,
        )
        head.append((i, sc + mu * best / total))
    head.sort(key=lambda p: -p[1])
    return head + list(ranking[top:])


def score(questions, ranks, reader_passages, k: int = 10) -> dict[str, float]:  # type: ignore[no-untyped-def]
    rows = []
    for q, ranking in zip(questions, ranks, strict=True):
        passages = [reader_passages[i] for i, _ in ranking[:k]]
        rows.append(score_retrieval(q, passages, k=k))
    return {
        "hit@1": float(np.mean([r["hits"][1] for r in rows])),
        "hit@5": float(np.mean([r["hits"][5] for r in rows])),
        "hit@10": float(np.mean([r["hits"][10] for r in rows])),
        "mrr@10": float(np.mean([r["reciprocal_rank"] for r in rows])),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data", type=Path, help="folder with articles/ and questions.jsonl")
    ap.add_argument(
        "--chunks",
        default="500:1:1,800:1:1,800:1:0.5",
        help="chunk_chars:overlap:paragraph_fill,...",
    )
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "rag-tune")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument(
        "--gammas",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[0.0],
        help="article-context boosts to try (comma list)",
    )
    ap.add_argument(
        "--mus",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[0.0],
        help="sentence-overlap boosts to try (comma list)",
    )
    ap.add_argument("--bigrams", action="store_true", help="also try BM25 with word pairs")
    ap.add_argument("--bm25", default="1.2:0.75,0.9:0.4,1.5:0.9", help="k1:b,... alternatives")
    ap.add_argument("--fetch", type=int, default=50)
    args = ap.parse_args(argv)

    questions = [q for q in load_questions(args.data / "questions.jsonl") if not q.impossible]
    if args.limit:
        questions = questions[: args.limit]
    base = Settings()
    system0 = System(base.model_copy(update={"index_dir": Path(tempfile.mkdtemp())}))
    t = time.perf_counter()
    qvecs = system0.embedder.embed([q.question for q in questions])
    print(f"embedded {len(questions)} questions in {time.perf_counter() - t:.1f} s")

    results = []
    for spec in args.chunks.split(","):
        size_s, overlap_s, fill = spec.split(":")
        size, overlap = int(size_s), int(overlap_s)
        settings = base.model_copy(
            update={
                # Built indexes are kept between runs: re-ingesting unchanged articles costs nothing.
                "index_dir": args.cache / f"{args.data.name}-{size}-{overlap}-{fill}",
                "chunk_chars": size,
                "chunk_overlap_sentences": overlap,
                "chunk_paragraph_fill": float(fill),
            }
        )
        system = System(settings, embedder=system0.embedder)
        t = time.perf_counter()
        report = system.ingest([args.data / "articles"])
        build_s = time.perf_counter() - t
        reader = system.reader()
        ids = [r for a in reader.list_articles() for r in reader.passage_ids(a["id"])]
        rows = reader.passages(ids)
        passages = {i: Passage(rows[i][1].source, rows[i][0].text) for i in ids}
        article_of = {i: rows[i][1].id for i in ids}
        sentence_terms = {
            i: [set(tokenize(rows[i][0].text[a:b])) for a, b in split_sentences(rows[i][0].text)]
            for i in ids
        }
        q_weights = []
        for q in questions:
            terms = sorted(set(tokenize(q.question)))
            q_weights.append(dict(zip(terms, reader.idf(terms), strict=True)))
        dense = [reader.dense_search(v, args.fetch) for v in qvecs]
        lex_variants = {
            "stored": [reader.lexical_search(q.question, args.fetch) for q in questions]
        }
        # Alternative BM25 parameters, built in memory from the same passage texts.
        texts = [f"{rows[i][1].title}\n{rows[i][0].text}" for i in ids]
        for k1, b in (tuple(float(x) for x in p.split(":")) for p in args.bm25.split(",") if p):
            lex = in_memory_bm25(ids, [tokenize(t) for t in texts])
            lex_variants[f"k1={k1},b={b}"] = [
                search(lex, tokenize(q.question), args.fetch, k1, b) for q in questions
            ]
            if args.bigrams:
                # The same BM25 with word pairs added as extra terms (phrases such as "super bowl").
                big = in_memory_bm25(ids, [with_bigrams(tokenize(t)) for t in texts])
                lex_variants[f"k1={k1},b={b}+bi"] = [
                    search(big, with_bigrams(tokenize(q.question)), args.fetch, k1, b)
                    for q in questions
                ]
        print(
            f"\nchunks {size}/{overlap} fill {fill}: {report.chunks_embedded} passages, built in {build_s:.0f} s"
        )
        for lex_name, lexical in lex_variants.items():
            grid = [("dense", 1.0), ("lexical", 0.0)] if lex_name == "stored" else []
            grid += [("convex", w) for w in (0.3, 0.4, 0.5, 0.6, 0.7)]
            grid += [("rrf", w) for w in (0.4, 0.5, 0.6)]
            grid += [("zmix", w) for w in (0.3, 0.4, 0.5)]
            for (how, w), gamma, mu in itertools.product(grid, args.gammas, args.mus):
                ranks = [
                    fused_rankings(d, lx, how, w) for d, lx in zip(dense, lexical, strict=True)
                ]
                if gamma:
                    ranks = [article_boost(r, article_of, gamma) for r in ranks]
                if mu:
                    ranks = [
                        sentence_boost(r, sentence_terms, qw, mu)
                        for r, qw in zip(ranks, q_weights, strict=True)
                    ]
                m = score(questions, ranks, passages)
                results.append((size, overlap, fill, lex_name, f"{how}+ctx{gamma}+sent{mu}", w, m))
                print(
                    f"  {lex_name:16} {how:7} w={w:.1f} ctx={gamma:.2f} sent={mu:.2f}  "
                    f"hit@1 {m['hit@1']:.3f}  hit@5 {m['hit@5']:.3f}  hit@10 {m['hit@10']:.3f}  "
                    f"mrr@10 {m['mrr@10']:.3f}"
                )
    best = max(results, key=lambda r: (r[6]["mrr@10"], r[6]["hit@5"]))
    print(
        f"\nbest by MRR@10: chunks {best[0]}/{best[1]} fill {best[2]} bm25 {best[3]} {best[4]} w={best[5]}: {best[6]}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
