"""Evaluation of retrieval and cited answers against questions with known answers and sources.

Pure: no model, no index. The caller passes the system's own ``retrieve`` (question -> ranked
passages) and optionally ``answer`` (question -> something with ``abstained`` and ``citations``).

The questions come from :mod:`rag.eval.questions` and each one is scored by :mod:`rag.eval.metrics` (which
also states the matching rules); this module runs them, aggregates the figures into a report and
prints reports side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.eval.metrics import AnswerLike, Passage, score_answer, score_retrieval
from rag.eval.questions import EvalQuestion

__all__ = [
    "EvalReport",
    "QuestionResult",
    "evaluate",
    "format_table",
]


# ---------------------------------------------------------------------------- aggregate


@dataclass(frozen=True)
class QuestionResult:
    """Figures for one question (retrieval ones are None on impossible questions)."""

    id: str
    impossible: bool
    first_hit_rank: int | None = None  # 1-based, within the evaluated depth
    reciprocal_rank: float | None = None
    ndcg: float | None = None
    hits: dict[int, bool] = field(default_factory=dict)
    top_sources: tuple[str, ...] = ()
    abstained: bool | None = None
    quote_hit: bool | None = None
    any_quote_hit: bool | None = None
    answer_hit: bool | None = None  # the answer's text contains a gold answer
    quote: str | None = None
    short_answer: str | None = None
    short_em: bool | None = None  # None when the short answer is empty
    short_f1: float | None = None
    confidence: float | None = None
    conflict: bool = False  # the versions disagree on the answer (the question says so)
    conflict_reported: bool | None = None  # the answer says the sources disagree
    conflict_values_cited: bool | None = None  # its quotes cite every value the versions give
    conflict_surfaced: bool | None = None  # both: cites every value and says they disagree
    retrieve_ms: float | None = None
    answer_ms: float | None = None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class EvalReport:
    """Aggregated figures; a figure is None when no question could measure it."""

    n: int
    n_answerable: int
    n_impossible: int
    k: int
    hit_at_1: float | None
    hit_at_3: float | None
    hit_at_5: float | None
    hit_at_10: float | None
    mrr_at_10: float | None
    ndcg_at_10: float | None
    quote_hit: float | None
    any_quote_hit: float | None
    abstention_rate: float | None
    false_abstention_rate: float | None
    retrieve_ms: float | None
    answer_ms: float | None
    rows: tuple[QuestionResult, ...] = ()
    answer_hit: float | None = None
    n_gold_top5: int = 0
    reading_answer_hit: float | None = None
    reading_quote_hit: float | None = None
    short_nonempty: float | None = None
    short_em: float | None = None
    short_f1: float | None = None
    n_conflict: int = 0
    conflict_surfaced: float | None = None
    conflict_values_cited: float | None = None
    false_conflict: float | None = None

    def metrics(self) -> dict[str, float | int | None]:
        """The figures by display name (``hit@5``, ``mrr@10`` ...), in table order."""
        return {
            "n": self.n,
            "n_answerable": self.n_answerable,
            "n_impossible": self.n_impossible,
            "hit@1": self.hit_at_1,
            "hit@3": self.hit_at_3,
            "hit@5": self.hit_at_5,
            "hit@10": self.hit_at_10,
            "mrr@10": self.mrr_at_10,
            "ndcg@10": self.ndcg_at_10,
            "quote_hit": self.quote_hit,
            "any_quote_hit": self.any_quote_hit,
            "answer_hit": self.answer_hit,
            "n_gold_top5": self.n_gold_top5,
            "reading_answer_hit": self.reading_answer_hit,
            "reading_quote_hit": self.reading_quote_hit,
            "short_nonempty": self.short_nonempty,
            "short_em": self.short_em,
            "short_f1": self.short_f1,
            "n_conflict": self.n_conflict,
            "conflict_surfaced": self.conflict_surfaced,
            "conflict_values_cited": self.conflict_values_cited,
            "false_conflict": self.false_conflict,
            "abstention_rate": self.abstention_rate,
            "false_abstention_rate": self.false_abstention_rate,
            "retrieve_ms": self.retrieve_ms,
            "answer_ms": self.answer_ms,
        }

    def to_dict(self, rows: bool = True) -> dict[str, Any]:
        """JSON-ready: ``metrics`` plus, unless ``rows=False``, one dict per question."""
        out: dict[str, Any] = {"k": self.k, "metrics": self.metrics()}
        if rows:
            out["rows"] = [
                {**asdict(r), "hits": {str(k): v for k, v in r.hits.items()}} for r in self.rows
            ]
        return out


def evaluate(
    questions: Sequence[EvalQuestion],
    retrieve: Callable[[str], Sequence[Passage]],
    answer: Callable[[str], AnswerLike] | None = None,
    k: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Run every question through ``retrieve`` (and ``answer``) and aggregate the figures.

    Impossible questions are not retrieved for and count only towards abstention. Metrics are
    computed on the first ``k`` passages; hit@n is reported for n in ``rag.metrics.KS`` up to
    ``k``.
    ``progress(done, total)`` is called after each question.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rows: list[QuestionResult] = []
    total = len(questions)
    for i, q in enumerate(questions, start=1):
        fields: dict[str, Any] = {
            "id": q.id,
            "impossible": q.impossible,
            "conflict": bool(q.conflict),
        }
        if not q.impossible:
            t0 = time.perf_counter()
            passages = list(retrieve(q.question))
            fields["retrieve_ms"] = (time.perf_counter() - t0) * 1000.0
            fields.update(score_retrieval(q, passages, k))
            fields["top_sources"] = tuple(p.source for p in passages[:k])
        if answer is not None:
            t0 = time.perf_counter()
            ans = answer(q.question)
            fields["answer_ms"] = (time.perf_counter() - t0) * 1000.0
            fields.update(score_answer(q, ans))
        rows.append(QuestionResult(**fields))
        if progress is not None:
            progress(i, total)
    return _aggregate(rows, k, answered=answer is not None)


def _aggregate(rows: Sequence[QuestionResult], k: int, answered: bool) -> EvalReport:
    ans_rows = [r for r in rows if not r.impossible]
    imp_rows = [r for r in rows if r.impossible]
    # The reading step on its own: questions whose gold passage retrieval put in the top 5.
    read_rows = [r for r in ans_rows if r.hits.get(5) and r.quote_hit is not None]
    scored = [r for r in ans_rows if r.quote_hit is not None]  # answerable with gold answers
    shorts = [r for r in scored if r.short_em is not None]
    # Versions that disagree: the questions that say so. A false conflict: an answer (not an
    # abstention) to any other question that reports a disagreement.
    conflict_rows = [r for r in rows if r.conflict]
    other_answers = [r for r in rows if not r.conflict and r.conflict_reported is not None]

    def hit_rate(n: int) -> float | None:
        if n > k:
            return None
        return _mean([float(r.hits.get(n, False)) for r in ans_rows])

    def rate(values: Sequence[bool | None]) -> float | None:
        return _mean([float(v) for v in values if v is not None])

    return EvalReport(
        n=len(rows),
        n_answerable=len(ans_rows),
        n_impossible=len(imp_rows),
        k=k,
        hit_at_1=hit_rate(1),
        hit_at_3=hit_rate(3),
        hit_at_5=hit_rate(5),
        hit_at_10=hit_rate(10),
        mrr_at_10=_mean([r.reciprocal_rank or 0.0 for r in ans_rows]),
        ndcg_at_10=_mean([r.ndcg or 0.0 for r in ans_rows]),
        quote_hit=rate([r.quote_hit for r in ans_rows]) if answered else None,
        any_quote_hit=rate([r.any_quote_hit for r in ans_rows]) if answered else None,
        answer_hit=rate([r.answer_hit for r in ans_rows]) if answered else None,
        n_gold_top5=len(read_rows),
        reading_answer_hit=rate([r.answer_hit for r in read_rows]) if answered else None,
        reading_quote_hit=rate([r.quote_hit for r in read_rows]) if answered else None,
        short_nonempty=rate([r.short_em is not None for r in scored]) if answered else None,
        short_em=rate([r.short_em for r in shorts]) if answered else None,
        short_f1=_mean([r.short_f1 or 0.0 for r in shorts]) if answered else None,
        n_conflict=len(conflict_rows),
        conflict_surfaced=rate([r.conflict_surfaced for r in conflict_rows]) if answered else None,
        conflict_values_cited=rate([r.conflict_values_cited for r in conflict_rows])
        if answered
        else None,
        false_conflict=rate([r.conflict_reported for r in other_answers]) if answered else None,
        abstention_rate=rate([r.abstained for r in imp_rows]) if answered else None,
        false_abstention_rate=rate([r.abstained for r in ans_rows]) if answered else None,
        retrieve_ms=_mean([r.retrieve_ms for r in rows if r.retrieve_ms is not None]),
        answer_ms=_mean([r.answer_ms for r in rows if r.answer_ms is not None]),
        rows=tuple(rows),
    )


# ---------------------------------------------------------------------------- table


_COUNTS = frozenset({"n", "n_answerable", "n_impossible", "n_gold_top5", "n_conflict"})


def _cell(value: float | int | None, integer: bool) -> str:
    if value is None:
        return "-"
    return str(int(value)) if integer else f"{value:.3f}"


def format_table(reports: Mapping[str, EvalReport]) -> str:
    """Systems side by side, 3 decimals; with two systems a ratio column ``ours/baseline``.

    With two systems the one named ``baseline`` is the baseline (else the second one).
    """
    if not reports:
        raise ValueError("reports must name at least one system")
    names = list(reports)
    ratio: tuple[str, str] | None = None
    if len(names) == 2:
        base = "baseline" if "baseline" in names else names[1]
        ours = names[0] if names[0] != base else names[1]
        ratio = (ours, base)
    header = ["metric", *names] + (["ours/baseline"] if ratio else [])
    table: list[list[str]] = [header]
    metrics = {name: rep.metrics() for name, rep in reports.items()}
    for key in metrics[names[0]]:
        integer = key in _COUNTS
        row = [key] + [_cell(metrics[n][key], integer) for n in names]
        if ratio:
            a, b = metrics[ratio[0]][key], metrics[ratio[1]][key]
            row.append(f"{a / b:.3f}" if a is not None and b else "-")
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for j, r in enumerate(table):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
