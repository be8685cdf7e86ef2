"""The reading step on its own: the offline answerer re-run on retrieval saved once.

The first run retrieves for every question and saves the hits and the embeddings the answerer
needs (rag.eval.cache); later runs score the current answerer on them in seconds, with the same
figures as ``rag eval`` (rag.eval.runner): among them the reading step's rates on the questions
whose gold passage is in the top 5, the short answer's exact match / F1, and, with ``--curve``,
the reliability table and the abstention trade-off of the answer's confidence.

    python bench/squad_convert.py SQUAD/dev-v2.0.json DATA/squad-v2.0 --sample 1000 --seed 0
    python bench/reader_eval.py DATA/squad-v2.0 --index IDX/squad-v2.0 --cache CACHE/squad-v2.0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer.entities import Entity, find_entities  # noqa: E402
from rag.answer.extractive import ExtractiveAnswerer  # noqa: E402
from rag.answer.short import EntityFinder  # noqa: E402
from rag.eval.cache import ReadingCache, build_cache  # noqa: E402
from rag.eval.calibration import reliability, tradeoff  # noqa: E402
from rag.eval.metrics import Passage  # noqa: E402
from rag.eval.questions import EvalQuestion, load_questions  # noqa: E402
from rag.eval.runner import EvalReport, evaluate, format_table  # noqa: E402
from rag.settings import Settings  # noqa: E402

RANK_K = 10  # retrieval depth saved and scored (the answerer reads the first settings.k)


def load_or_build(
    data: Path, index: Path, cache_dir: Path, questions: list[EvalQuestion]
) -> ReadingCache:
    if (cache_dir / "cache.json").exists():
        cache = ReadingCache.load(cache_dir)
        if all(q.id in cache for q in questions):
            return cache
    from rag.system import System

    system = System(Settings(index_dir=index))
    if not system.has_index():
        print(system.ingest([data / "articles"]).summary(), file=sys.stderr)
    retriever = system.retriever()
    t = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 200 == 0 or done == total:
            print(f"  retrieved {done}/{total}", file=sys.stderr, flush=True)

    cache = build_cache(
        lambda q, v: retriever.search(q, k=RANK_K, query_vector=v),
        system.embedder,
        retriever.reader.idf,
        questions,
        progress,
    )
    cache.save(cache_dir)
    print(f"cache built in {time.perf_counter() - t:.0f} s -> {cache_dir}", file=sys.stderr)
    return cache


def entity_table(path: Path) -> EntityFinder:
    """Entities precomputed by another tagger (JSON: text -> [[start, end, kind], ...]), e.g. to
    compare spaCy's with the rules; texts it lacks fall back to the rules."""
    table = json.loads(path.read_text(encoding="utf-8"))

    def find(text: str) -> list[Entity]:
        spans = table.get(text)
        if spans is None:
            return find_entities(text)
        return [Entity(a, b, kind, text[a:b]) for a, b, kind in spans]

    return find


def run(
    questions: list[EvalQuestion],
    cache: ReadingCache,
    settings: Settings,
    entities: EntityFinder = find_entities,
) -> EvalReport:
    def fallback():  # type: ignore[no-untyped-def]
        from rag.embedder import CheckedEmbeddings

        return CheckedEmbeddings(settings)

    answerer = ExtractiveAnswerer(
        cache.embedder(fallback), settings, idf=cache.idf, entities=entities
    )
    by_text = {q.question: q for q in questions}

    def retrieve(text: str) -> list[Passage]:
        return [Passage(h.article.source, h.chunk.text) for h in cache.hits(by_text[text].id)]

    def answer(text: str):  # type: ignore[no-untyped-def]
        q = by_text[text]
        return answerer.answer(text, cache.hits(q.id)[: settings.k], cache.question_vector(q.id))

    return evaluate(questions, retrieve, answer, k=RANK_K)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder with articles/ and questions.jsonl")
    ap.add_argument("--index", type=Path, required=True, help="index folder (built if missing)")
    ap.add_argument("--cache", type=Path, required=True, help="reading cache folder")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
    ap.add_argument("--curve", action="store_true", help="reliability table and trade-off curve")
    ap.add_argument("--json", type=Path, help="write the report (with rows) here")
    ap.add_argument("--entities", type=Path, help="precomputed entities (JSON) instead of rules")
    ap.add_argument(
        "--min-confidence", type=float, help="abstention threshold (default: the setting)"
    )
    args = ap.parse_args(argv)

    questions = load_questions(args.data / "questions.jsonl")
    if args.limit:
        questions = questions[: args.limit]
    cache = load_or_build(args.data, args.index, args.cache, questions)
    settings = Settings(index_dir=args.index)
    if args.min_confidence is not None:
        settings = settings.model_copy(update={"min_confidence": args.min_confidence})
    finder = entity_table(args.entities) if args.entities else find_entities
    t = time.perf_counter()
    report = run(questions, cache, settings, finder)
    print(
        f"questions: {args.data / 'questions.jsonl'} ({len(questions)}); "
        f"read in {time.perf_counter() - t:.0f} s"
    )
    print(format_table({"reader": report}))
    if args.curve:
        print("\nreliability (confidence bin: answers, mean confidence, observed accuracy):")
        for row in reliability(report.rows):
            print("  {lo:.1f}-{hi:.1f}  {n:5d}  {confidence:.3f}  {accuracy:.3f}".format(**row))
        print("\nabstention trade-off (threshold: abstain|impossible, abstain|answerable):")
        for row in tradeoff(report.rows):
            print(
                "  {threshold:.2f}  {abstain_impossible:.3f}  {abstain_answerable:.3f}".format(
                    **row
                )
            )
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
