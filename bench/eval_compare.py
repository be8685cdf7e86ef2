"""Ours next to the LangChain tutorial recipe, on the same questions, in one run.

Builds (or reuses) our index of the articles with the current settings (RAG_* variables), builds the
tutorial baseline in memory (bench/baseline_tutorial.py), scores both with rag.eval.runner and prints the
side-by-side table with the ours/baseline ratio.

    python bench/squad_convert.py ../shared/eval/squad/dev-v1.1.json bench/data/squad-v1.1 --sample 1000 --seed 0
    python bench/eval_compare.py bench/data/squad-v1.1 --index /tmp/rag-squad-v1.1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_tutorial import ANSWER_K, RANK_K, build_baseline  # noqa: E402

from rag.eval.metrics import Passage  # noqa: E402
from rag.eval.questions import load_questions  # noqa: E402
from rag.eval.runner import evaluate, format_table  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.system import System  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder with articles/ and questions.jsonl")
    ap.add_argument("--index", type=Path, help="our index folder (default: a temporary one)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
    ap.add_argument("--no-answers", action="store_true", help="score retrieval only")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--json", type=Path, help="also write both reports here")
    args = ap.parse_args(argv)

    questions = load_questions(args.data / "questions.jsonl")
    if args.limit:
        questions = questions[: args.limit]
    index_dir = args.index or Path(tempfile.mkdtemp(prefix="rag-eval-"))
    system = System(Settings(index_dir=index_dir))
    t = time.perf_counter()
    ingest = system.ingest([args.data / "articles"])
    print(f"ours: {ingest.summary()} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if done % 200 == 0 or done == total:
            print(f"  {done}/{total}", file=sys.stderr, flush=True)

    def retrieve(q: str) -> list[Passage]:
        return [Passage(h.article.source, h.chunk.text) for h in system.search(q, k=RANK_K)]

    reports = {
        "ours": evaluate(
            questions,
            retrieve,
            None if args.no_answers else (lambda q: system.ask(q)),
            k=RANK_K,
            progress=progress,
        )
    }
    if not args.no_baseline:
        base = build_baseline(args.data / "articles")
        print(f"baseline: {base.n_chunks} chunks in {base.ingest_seconds:.0f} s", file=sys.stderr)
        reports["baseline"] = evaluate(
            questions,
            lambda q: base.retrieve(q, RANK_K),
            None if args.no_answers else base.answer,
            k=RANK_K,
            progress=progress,
        )
    s = system.settings
    print(
        f"questions: {args.data / 'questions.jsonl'} ({len(questions)}); ours: chunk_chars "
        f"{s.chunk_chars}, overlap {s.chunk_overlap_sentences}, fusion {s.fusion} "
        f"(dense_weight {s.dense_weight}), k for answers {s.k}; baseline: answers from top {ANSWER_K}"
    )
    print(format_table(reports))
    for name, report in reports.items():
        times = sorted(r.retrieve_ms for r in report.rows if r.retrieve_ms is not None)
        if times:
            print(f"{name}: retrieval p50 {times[len(times) // 2]:.1f} ms per question (warm)")
    if args.json:
        args.json.write_text(json.dumps({n: r.to_dict() for n, r in reports.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
