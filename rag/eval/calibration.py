"""Is the answer's confidence a probability? Reliability bins and the abstention trade-off.

An answer counts as correct when its first quote contains a gold answer; any answer to an
impossible question is wrong. Both functions take the per-question rows of an evaluation run
(:class:`rag.eval.runner.QuestionResult`) made with abstention switched off, so that every
question carries the confidence of the answer it would get.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.eval.runner import QuestionResult

__all__ = ["correct", "reliability", "tradeoff"]


def correct(r: QuestionResult) -> bool:
    """Whether the answer given is right: a gold answer in its first quote (never if impossible)."""
    return not r.impossible and not r.abstained and bool(r.quote_hit)


def _scored(rows: Sequence[QuestionResult]) -> list[QuestionResult]:
    return [
        r for r in rows if r.confidence is not None and (r.impossible or r.quote_hit is not None)
    ]


def reliability(rows: Sequence[QuestionResult], bins: int = 10) -> list[dict[str, Any]]:
    """Per confidence bin (equal width on 0-1): answers in it, mean confidence, share correct."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    table: list[dict[str, Any]] = []
    scored = [r for r in _scored(rows) if not r.abstained]
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [
            r
            for r in scored
            if r.confidence is not None
            and (lo <= r.confidence < hi or (b == bins - 1 and r.confidence == 1.0))
        ]
        if not inside:
            continue
        table.append(
            {
                "lo": lo,
                "hi": hi,
                "n": len(inside),
                "confidence": sum(r.confidence or 0.0 for r in inside) / len(inside),
                "accuracy": sum(correct(r) for r in inside) / len(inside),
            }
        )
    return table


def expected_calibration_error(rows: Sequence[QuestionResult], bins: int = 10) -> float:
    """The answer-weighted mean gap between confidence and accuracy over the reliability bins."""
    table = reliability(rows, bins)
    total = sum(b["n"] for b in table)
    if not total:
        return 0.0
    return sum(b["n"] * abs(b["confidence"] - b["accuracy"]) for b in table) / total


def tradeoff(
    rows: Sequence[QuestionResult], thresholds: Sequence[float] | None = None
) -> list[dict[str, float]]:
    """For each threshold: the share of impossible and of answerable questions whose confidence
    is below it (those an answerer with that threshold abstains on), and accuracy of the rest."""
    scored = _scored(rows)
    imp = [r for r in scored if r.impossible]
    ans = [r for r in scored if not r.impossible]
    out = []
    for t in thresholds if thresholds is not None else [x / 20 for x in range(0, 20)]:

        def below(r: QuestionResult, t: float = t) -> bool:
            return r.abstained or (r.confidence or 0.0) < t

        kept = [r for r in scored if not below(r)]
        out.append(
            {
                "threshold": t,
                "abstain_impossible": sum(map(below, imp)) / len(imp) if imp else float("nan"),
                "abstain_answerable": sum(map(below, ans)) / len(ans) if ans else float("nan"),
                "accuracy_answered": sum(map(correct, kept)) / len(kept) if kept else float("nan"),
            }
        )
    return out
