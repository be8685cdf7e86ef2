"""Fit the extractive answerer's sentence weights on one question set; score them on another.

Every sentence of the passages retrieved for a question is a candidate with features (similarity,
key-term share, answer-kind match, passage rank, phrase match, context, reference back, is a
question); its label is whether it contains a gold answer. A logistic regression over the
candidates of the tuning set gives the weights (rescaled so the similarity weight is 1), then a
local search on the tuning set's first-quote rate refines them. Retrieval comes from the reading
cache (bench/reader_eval.py builds it).

    python bench/tune_answers.py DATA/squad-v1.1-tune --index IDX/squad-v1.1 --cache CACHE/tune \\
        --check DATA/squad-v2.0 CACHE/squad-v2.0
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reader_eval import load_or_build  # noqa: E402

from rag.answer.extractive import ExtractiveAnswerer, Weights, features  # noqa: E402
from rag.eval.cache import ReadingCache  # noqa: E402
from rag.eval.metrics import contains_answer  # noqa: E402
from rag.eval.questions import load_questions  # noqa: E402
from rag.settings import Settings  # noqa: E402

NAMES = ("lexical", "kind", "rank", "phrase", "context", "refers", "question")


def table(
    data: Path, cache: ReadingCache, settings: Settings
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per answerable question: candidate feature matrix and gold flags."""

    def fallback() -> Any:
        from rag.embedder import CheckedEmbeddings

        return CheckedEmbeddings(settings)

    answerer = ExtractiveAnswerer(cache.embedder(fallback), settings, idf=cache.idf)
    out = []
    for q in load_questions(data / "questions.jsonl"):
        if q.impossible or not q.answers:
            continue
        hits = cache.hits(q.id)[: settings.k]
        cands = answerer.candidates(q.question, hits, cache.question_vector(q.id))
        if not cands:
            continue
        feats = np.array([features(c) for c in cands])
        gold = np.array([contains_answer(c.text, q.answers) for c in cands], dtype=bool)
        out.append((feats, gold))
    return out


def first_rate(rows: list[tuple[np.ndarray, np.ndarray]], w: np.ndarray, n: int) -> float:
    hits = 0
    for feats, gold in rows:
        scores = feats @ w
        scores = np.where(feats[:, -1] > 0, scores - 10.0, scores)  # questions never quoted
        hits += bool(gold[int(np.argmax(scores))])
    return hits / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="tuning set: folder with questions.jsonl")
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument(
        "--check",
        nargs=2,
        type=Path,
        metavar=("DATA", "CACHE"),
        help="a held-out set (and its cache) to score the weights on, not fit on",
    )
    args = ap.parse_args(argv)

    settings = Settings(index_dir=args.index)
    questions = load_questions(args.data / "questions.jsonl")
    cache = load_or_build(args.data, args.index, args.cache, questions)
    rows = table(args.data, cache, settings)
    n = sum(1 for q in questions if not q.impossible and q.answers)
    print(f"tuning set: {n} answerable questions, {sum(len(g) for _, g in rows)} candidates")

    from sklearn.linear_model import LogisticRegression  # bench-only dependency

    x = np.concatenate([f for f, _ in rows])
    y = np.concatenate([g for _, g in rows])
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    coef = lr.coef_[0] / lr.coef_[0][0]
    current = Weights().vector()
    print("weights  " + "  ".join(f"{k:>8}" for k in ("cosine", *NAMES)))
    print(
        "current  " + "  ".join(f"{v:8.3f}" for v in current),
        f"-> {first_rate(rows, current, n):.3f}",
    )
    print("logistic " + "  ".join(f"{v:8.3f}" for v in coef), f"-> {first_rate(rows, coef, n):.3f}")

    # Local search on the first-quote rate: one weight at a time, a few rounds.
    best, best_rate = coef.copy(), first_rate(rows, coef, n)
    for _ in range(3):
        for j, step in itertools.product(range(1, len(best)), (-0.2, -0.1, -0.05, 0.05, 0.1, 0.2)):
            trial = best.copy()
            trial[j] += step
            rate = first_rate(rows, trial, n)
            if rate > best_rate + 1e-9:
                best, best_rate = trial, rate
    print("searched " + "  ".join(f"{v:8.3f}" for v in best), f"-> {best_rate:.3f}")
    print(
        "Weights(" + ", ".join(f"{k}={v:.2f}" for k, v in zip(NAMES, best[1:], strict=True)) + ")"
    )
    if args.check:
        data, cdir = args.check
        check_q = load_questions(data / "questions.jsonl")
        check_rows = table(data, ReadingCache.load(cdir), settings)
        m = sum(1 for q in check_q if not q.impossible and q.answers)
        for name, w in (("current", current), ("logistic", coef), ("searched", best)):
            print(
                f"held out ({data.name}, {m} answerable): {name} {first_rate(check_rows, w, m):.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
