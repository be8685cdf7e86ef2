"""Choose the extractive answerer's weights and abstention threshold with the evaluation harness.

For every question it retrieves the passages once, scores every sentence's features once, and then
tries each weighting: the figure is the share of questions whose first quote contains a gold answer.
With impossible questions (SQuAD v2.0) it also sweeps the abstention threshold and prints both error
types: abstaining on answerable questions, and answering impossible ones.

    python bench/tune_answers.py bench/data/squad-v1.1 --index /tmp/rag-answers-v11
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer.extractive import ExtractiveAnswerer, Weights  # noqa: E402
from rag.eval.metrics import contains_answer  # noqa: E402
from rag.eval.questions import load_questions  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.system import System  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data", type=Path, help="folder with articles/ and questions.jsonl")
    ap.add_argument("--index", type=Path, required=True, help="index folder (built if missing)")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args(argv)

    settings = Settings(index_dir=args.index)
    system = System(settings)
    report = system.ingest([args.data / "articles"])
    print(report.summary())
    questions = load_questions(args.data / "questions.jsonl")
    if args.limit:
        questions = questions[: args.limit]
    answerer = ExtractiveAnswerer(system.embedder, settings, idf=system.reader().idf)

    t = time.perf_counter()
    table = []  # per question: (impossible, features matrix, gold flags)
    coverages: list[float] = []
    for q in questions:
        hits = system.search(q.question)
        cands = answerer.candidates(q.question, hits)
        feats = np.array([[c.cosine, c.overlap, c.kind, c.prior, c.phrase] for c in cands]).reshape(
            -1, 5
        )
        gold = np.array([contains_answer(c.text, q.answers) for c in cands], dtype=bool)
        table.append((q.impossible, feats, gold))
        coverages.append(answerer.coverage(q.question, hits))
    print(f"features for {len(questions)} questions in {time.perf_counter() - t:.0f} s")

    answerable = [(f, g) for imp, f, g in table if not imp and len(f)]
    grid = itertools.product(
        (0.35, 0.5, 0.8), (0.12, 0.2, 0.3), (0.0, 0.08, 0.15), (0.0, 0.1, 0.2, 0.4)
    )
    results = []
    for lex, kind, rank, phrase in grid:
        w = np.array([1.0, lex, kind, rank, phrase])
        first_ok = [bool(g[int(np.argmax(f @ w))]) for f, g in answerable]
        results.append((float(np.mean(first_ok)), lex, kind, rank, phrase))
    results.sort(reverse=True)
    print("\nfirst quote contains a gold answer (answerable questions):")
    print("  share   lexical  kind  rank  phrase")
    for share, lex, kind, rank, phrase in results[:8]:
        print(f"  {share:.3f}   {lex:.2f}    {kind:.2f}  {rank:.2f}  {phrase:.2f}")
    d = Weights()
    w = np.array([1.0, d.lexical, d.kind, d.rank, d.phrase])
    current = np.mean([bool(g[int(np.argmax(f @ w))]) for f, g in answerable])
    print(f"  {current:.3f}   current defaults {d}")

    best_w = np.array([1.0, *results[0][1:]])
    best = np.array([float((f @ w).max()) if len(f) else -1.0 for _, f, _ in table])
    best_default = np.array([float((f @ best_w).max()) if len(f) else -1.0 for _, f, _ in table])
    impossible = np.array([imp for imp, _, _ in table])
    print("\nabstention threshold sweep (on the best sentence score):")
    print("  threshold  abstain|impossible  abstain|answerable   (defaults / best weights)")
    for th in np.arange(0.2, 0.95, 0.05):
        cells = []
        for scores in (best, best_default):
            abst = scores < th
            a_imp = abst[impossible].mean() if impossible.any() else float("nan")
            a_ans = abst[~impossible].mean()
            cells.append(f"{a_imp:.3f}  {a_ans:.3f}")
        print(f"  {th:.2f}       {cells[0]}        {cells[1]}")
    cov = np.array(coverages)
    print("\nabstention on key-term coverage (default weights' score threshold as set):")
    print("  min_coverage  abstain|impossible  abstain|answerable")
    th = settings.abstain_threshold
    for mc in (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        abst = (best < th) | (cov < mc)
        a_imp = abst[impossible].mean() if impossible.any() else float("nan")
        print(f"  {mc:.1f}           {a_imp:.3f}               {abst[~impossible].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
