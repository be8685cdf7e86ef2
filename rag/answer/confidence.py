"""The answer's confidence: a calibrated probability that its first quote answers the question.

A logistic model over what the answerer knows when it picks its quote: how well the best sentence
scored, by how much it beat the best sentence elsewhere, how much of the question the passages
cover, and whether the quote holds the kind of thing asked for. The coefficients were fitted with
``bench/calibrate.py`` on SQuAD v2.0 questions (answerable and impossible) of one half of its
articles; docs/answers.md shows the reliability table measured on the other half. Half of those
questions are unanswerable, so the probabilities assume that prior: on a collection where most
questions are answerable they understate the chance of a right answer, but keep their order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

__all__ = ["COEFFICIENTS", "confidence", "signals"]


class Scored(Protocol):
    @property
    def score(self) -> float: ...
    @property
    def kind(self) -> float: ...
    @property
    def hit_index(self) -> int: ...
    @property
    def start(self) -> int: ...


# intercept, then one per signal in the order of :func:`signals`.
COEFFICIENTS: tuple[float, ...] = (-3.158, 2.561, 0.305, -1.783, -0.581, -0.005, -0.281)


def signals(ranked: Sequence[Scored], coverage: float, kind: str, has_short: bool) -> list[float]:
    """best score, its margin over the best sentence elsewhere, key-term coverage, kind match of
    the best sentence, whether the question is untyped ("other"), whether a short answer was found."""
    best = ranked[0]
    other = next(
        (c.score for c in ranked[1:] if (c.hit_index, c.start) != (best.hit_index, best.start)),
        best.score - 1.0,
    )
    return [
        best.score,
        min(best.score - other, 1.0),
        coverage,
        best.kind,
        1.0 if kind == "other" else 0.0,
        1.0 if has_short else 0.0,
    ]


def confidence(ranked: Sequence[Scored], coverage: float, kind: str, has_short: bool) -> float:
    """The calibrated probability (0-1) that the best-ranked sentence answers the question."""
    if not ranked:
        return 0.0
    z = COEFFICIENTS[0] + sum(
        w * x
        for w, x in zip(COEFFICIENTS[1:], signals(ranked, coverage, kind, has_short), strict=True)
    )
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
