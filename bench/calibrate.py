"""Fit the answer confidence on one half of SQuAD v2.0's articles; report it on the other half.

SQuAD v2.0 is the public set with unanswerable questions, so abstention can only be calibrated
there. Its 35 articles are split in two by name (sorted; even positions calibrate, odd positions
report), so the reliability table and the trade-off curve are measured on articles and questions
the coefficients and the threshold never saw. An answer is right when its first quote contains a
gold answer; any answer to an impossible question is wrong.

    python bench/squad_convert.py SQUAD/dev-v2.0.json DATA/squad-v2.0-cal --sample 2000 --seed 1
    python bench/reader_eval.py DATA/squad-v2.0-cal --index IDX/squad-v2.0 --cache CACHE/v2.0-cal
    python bench/calibrate.py --cal DATA/squad-v2.0-cal CACHE/v2.0-cal \\
        --report DATA/squad-v2.0 CACHE/squad-v2.0 --index IDX/squad-v2.0
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import confidence as conf_module  # noqa: E402
from rag.answer.extractive import ExtractiveAnswerer  # noqa: E402
from rag.answer.kinds import answer_kind  # noqa: E402
from rag.eval.cache import ReadingCache  # noqa: E402
from rag.eval.calibration import expected_calibration_error, reliability, tradeoff  # noqa: E402
from rag.eval.metrics import contains_answer  # noqa: E402
from rag.eval.questions import EvalQuestion, load_questions  # noqa: E402
from rag.eval.runner import QuestionResult  # noqa: E402
from rag.settings import Settings  # noqa: E402


def folds(questions: list[EvalQuestion]) -> dict[str, int]:
    names = sorted({g for q in questions for g in q.gold_sources})
    return {name: i % 2 for i, name in enumerate(names)}


def read(
    data: Path, cache_dir: Path, settings: Settings, fold: int
) -> tuple[np.ndarray, np.ndarray, list[EvalQuestion], list[dict[str, Any]]]:
    """Signals and labels of the questions of one fold (answers read with abstention off)."""
    questions = load_questions(data / "questions.jsonl")
    fold_of = folds(questions)
    cache = ReadingCache.load(cache_dir)

    def fallback() -> Any:
        from rag.embedder import CheckedEmbeddings

        return CheckedEmbeddings(settings)

    answerer = ExtractiveAnswerer(cache.embedder(fallback), settings, idf=cache.idf)
    xs, ys, kept, extra = [], [], [], []
    for q in questions:
        if fold_of[q.gold_sources[0]] != fold:
            continue
        hits = cache.hits(q.id)[: settings.k]
        qvec = cache.question_vector(q.id)
        ans = answerer.answer(q.question, hits, qvec)
        cands = sorted(answerer.candidates(q.question, hits, qvec), key=lambda c: -c.score)
        cands = [c for c in cands if not c.question] or cands
        if not cands:
            continue
        coverage = answerer.coverage(q.question, hits)
        kind = answer_kind(q.question)
        xs.append(conf_module.signals(cands, coverage, kind, bool(ans.short_answer)))
        right = (
            not q.impossible
            and not ans.abstained
            and contains_answer(ans.citations[0].quote, q.answers)
        )
        ys.append(right)
        kept.append(q)
        extra.append({"abstained": ans.abstained, "coverage": coverage})
    return np.array(xs), np.array(ys, dtype=bool), kept, extra


def rows(
    probs: np.ndarray, ys: np.ndarray, qs: list[EvalQuestion], extra: list[dict[str, Any]]
) -> list[QuestionResult]:
    return [
        QuestionResult(
            q.id,
            q.impossible,
            abstained=e["abstained"],
            quote_hit=None if q.impossible else bool(y),
            confidence=float(p),
        )
        for p, y, q, e in zip(probs, ys, qs, extra, strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cal", nargs=2, type=Path, required=True, metavar=("DATA", "CACHE"))
    ap.add_argument("--report", nargs=2, type=Path, required=True, metavar=("DATA", "CACHE"))
    ap.add_argument("--index", type=Path, required=True, help="the articles' index folder")
    ap.add_argument("--max-false", type=float, default=0.05, help="false abstention allowed")
    args = ap.parse_args(argv)

    settings = Settings(index_dir=args.index, min_confidence=0.0)
    x_cal, y_cal, q_cal, e_cal = read(*args.cal, settings, fold=0)
    x_rep, y_rep, q_rep, e_rep = read(*args.report, settings, fold=1)
    print(
        f"calibration: {len(q_cal)} questions (fold 0 of {args.cal[0].name}), "
        f"{sum(q.impossible for q in q_cal)} impossible"
    )
    print(
        f"report:      {len(q_rep)} questions (fold 1 of {args.report[0].name}), "
        f"{sum(q.impossible for q in q_rep)} impossible"
    )

    from sklearn.linear_model import LogisticRegression  # bench-only dependency

    lr = LogisticRegression(C=1.0, max_iter=5000).fit(x_cal, y_cal)
    coef = (float(lr.intercept_[0]), *(float(c) for c in lr.coef_[0]))
    print("COEFFICIENTS = (" + ", ".join(f"{c:.3f}" for c in coef) + ")")
    conf_module.COEFFICIENTS = coef

    def probs(xs: np.ndarray) -> np.ndarray:
        z = coef[0] + xs @ np.array(coef[1:])
        return 1 / (1 + np.exp(-z))

    cal_rows = rows(probs(x_cal), y_cal, q_cal, e_cal)
    rep_rows = rows(probs(x_rep), y_rep, q_rep, e_rep)
    grid = [round(t, 3) for t in np.arange(0.0, 0.905, 0.025)]
    cal_curve = tradeoff(cal_rows, grid)
    ok = [r for r in cal_curve if r["abstain_answerable"] <= args.max_false]
    pick = max(ok, key=lambda r: (r["abstain_impossible"], -r["threshold"]))
    print(
        f"\nthreshold chosen on the calibration fold: {pick['threshold']:.3f} "
        f"(there: abstains on {pick['abstain_impossible']:.3f} of impossible, "
        f"{pick['abstain_answerable']:.3f} of answerable)"
    )
    for name, rs in (("calibration fold", cal_rows), ("report fold", rep_rows)):
        print(f"\nreliability, {name} (ECE {expected_calibration_error(rs):.3f}):")
        print("  bin        answers  confidence  accuracy")
        for b in reliability(rs):
            print(
                f"  {b['lo']:.1f}-{b['hi']:.1f}    {b['n']:5d}     {b['confidence']:.3f}     "
                f"{b['accuracy']:.3f}"
            )
    print("\ntrade-off on the report fold:")
    print("  threshold  abstain|impossible  abstain|answerable  accuracy of answers given")
    for r in tradeoff(rep_rows, grid):
        mark = "  <- default" if r["threshold"] == pick["threshold"] else ""
        print(
            f"  {r['threshold']:.3f}      {r['abstain_impossible']:.3f}               "
            f"{r['abstain_answerable']:.3f}               {r['accuracy_answered']:.3f}{mark}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
