"""Evaluation of retrieval and cited answers against questions with known answers and sources.

Pure: no model, no index. The caller passes the system's own ``retrieve`` (question -> ranked
passages) and optionally ``answer`` (question -> something with ``abstained`` and ``citations``).

Question files are JSON lines, one object per question::

    {"id": "q1", "question": "...", "answers": ["..."], "gold_sources": ["a.txt"],
     "impossible": false}

Matching rules (the same for every system compared):

- a passage's ``source`` matches a gold source when its file name equals it, or its path ends
  with ``/<gold>`` (gold sources are paths relative to the articles folder);
- a text *contains* an answer when the SQuAD-normalised answer occurs in the normalised text
  on word boundaries (so "1" is not found in "1945");
- a retrieval *hit* is a passage from a gold source that contains a gold answer (source alone
  when the question has no answers and is not impossible).
"""

from __future__ import annotations

import json
import math
import re
import string
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "KS",
    "AnswerLike",
    "EvalQuestion",
    "EvalReport",
    "Passage",
    "QuestionResult",
    "QuoteLike",
    "contains_answer",
    "evaluate",
    "format_table",
    "load_questions",
    "ndcg_at",
    "normalize_answer",
    "score_answer",
    "score_retrieval",
    "source_matches",
]

KS: tuple[int, ...] = (1, 3, 5, 10)

_ASCII_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# ---------------------------------------------------------------------------- normalisation


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and the articles a/an/the, fold spaces.

    ASCII punctuation is deleted as in the official SQuAD script ("1,000" -> "1000"). Other
    Unicode punctuation (em dashes, curly quotes) becomes a space instead, so "Broncos—the" keeps
    its two words apart; the official script leaves such characters inside the word.
    """
    out: list[str] = []
    for ch in s.lower():
        if ch in _ASCII_PUNCT:
            continue
        if unicodedata.category(ch).startswith("P"):
            out.append(" ")
        else:
            out.append(ch)
    text = _ARTICLES.sub(" ", "".join(out))
    return " ".join(text.split())


def _contains_normalized(norm_text: str, norm_answers: Sequence[str]) -> bool:
    padded = f" {norm_text} "
    return any(a and f" {a} " in padded for a in norm_answers)


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether normalised ``text`` contains any normalised answer as a run of whole words."""
    return _contains_normalized(normalize_answer(text), [normalize_answer(a) for a in answers])


def source_matches(source: str, gold: str) -> bool:
    """Whether a retrieved ``source`` path is the gold source (by file name or path ending)."""
    src = source.replace("\\", "/")
    g = gold.replace("\\", "/").removeprefix("./")
    if not g:
        return False
    return src == g or src.endswith("/" + g) or src.rsplit("/", 1)[-1] == g


def _matches_any(source: str, golds: Sequence[str]) -> bool:
    return any(source_matches(source, g) for g in golds)


# ---------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class EvalQuestion:
    """A question with its gold answers and the sources (file names) that hold them."""

    id: str
    question: str
    answers: tuple[str, ...]
    gold_sources: tuple[str, ...]
    impossible: bool = False


def _str_list(obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    if key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: field {key!r} must be a list of strings")
    return tuple(value)


def _parse_question(obj: Any, where: str) -> EvalQuestion:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in ("id", "question"):
        if key not in obj:
            raise ValueError(f"{where}: missing field {key!r}")
    qid, question = obj["id"], obj["question"]
    if not isinstance(qid, str | int) or isinstance(qid, bool) or str(qid) == "":
        raise ValueError(f"{where}: field 'id' must be a non-empty string")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: empty question")
    answers = _str_list(obj, "answers", where)
    gold_sources = _str_list(obj, "gold_sources", where)
    impossible = obj.get("impossible", False)
    if not isinstance(impossible, bool):
        raise ValueError(f"{where}: field 'impossible' must be true or false")
    if impossible and answers:
        raise ValueError(f"{where}: an impossible question cannot have answers")
    if not impossible and not gold_sources:
        # It would silently score zero on every retrieval metric.
        raise ValueError(f"{where}: answerable question without gold_sources")
    return EvalQuestion(str(qid), question, answers, gold_sources, impossible)


def load_questions(path: str | Path) -> list[EvalQuestion]:
    """Read a JSON-lines question file; ValueError names the line and the problem."""
    questions: list[EvalQuestion] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: bad JSON ({exc.msg})") from None
            q = _parse_question(obj, where)
            if q.id in seen:
                raise ValueError(f"{where}: duplicate id {q.id!r} (first on line {seen[q.id]})")
            seen[q.id] = lineno
            questions.append(q)
    return questions


# ---------------------------------------------------------------------------- what systems return


@dataclass(frozen=True)
class Passage:
    """One retrieved passage: where it came from and its text."""

    source: str
    text: str


class QuoteLike(Protocol):
    @property
    def quote(self) -> str: ...


class AnswerLike(Protocol):
    """What an answerer returns: ``rag.types.Answer`` fits, and so does any small stand-in."""

    @property
    def abstained(self) -> bool: ...

    @property
    def citations(self) -> Sequence[QuoteLike]: ...


# ---------------------------------------------------------------------------- per-question metrics


def ndcg_at(sources: Sequence[str], gold_sources: Sequence[str], k: int = 10) -> float:
    """Document-level nDCG@k: distinct sources in first-seen order, relevance 1 per gold source.

    Each gold source earns credit once, so two paths that both match one gold name do not
    count twice. The ideal ranking puts every gold source first.
    """
    golds = [g for g in dict.fromkeys(gold_sources) if g]
    if not golds:
        return 0.0
    distinct = list(dict.fromkeys(sources))[:k]
    found: set[str] = set()
    dcg = 0.0
    for rank, src in enumerate(distinct, start=1):
        for g in golds:
            if g not in found and source_matches(src, g):
                found.add(g)
                dcg += 1.0 / math.log2(rank + 1)
                break
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(golds), k) + 1))
    return dcg / ideal


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
    quote: str | None = None
    retrieve_ms: float | None = None
    answer_ms: float | None = None


def score_retrieval(q: EvalQuestion, passages: Sequence[Passage], k: int = 10) -> dict[str, Any]:
    """hit@k for ``KS`` up to ``k``, reciprocal rank and nDCG of one ranked list."""
    ranked = list(passages)[:k]
    norm_answers = [a for a in (normalize_answer(x) for x in q.answers) if a]
    first: int | None = None
    for rank, p in enumerate(ranked, start=1):
        if not _matches_any(p.source, q.gold_sources):
            continue
        if not q.answers or _contains_normalized(normalize_answer(p.text), norm_answers):
            first = rank
            break
    return {
        "first_hit_rank": first,
        "reciprocal_rank": 1.0 / first if first else 0.0,
        "ndcg": ndcg_at([p.source for p in ranked], q.gold_sources, k),
        "hits": {kk: first is not None and first <= kk for kk in KS if kk <= k},
    }


def score_answer(q: EvalQuestion, ans: AnswerLike) -> dict[str, Any]:
    """Abstention and whether the first / any cited quote contains a gold answer."""
    quotes = [] if ans.abstained else [c.quote for c in ans.citations]
    out: dict[str, Any] = {"abstained": bool(ans.abstained), "quote": quotes[0] if quotes else None}
    if not q.impossible and q.answers:
        out["quote_hit"] = bool(quotes) and contains_answer(quotes[0], q.answers)
        out["any_quote_hit"] = any(contains_answer(t, q.answers) for t in quotes)
    return out


# ---------------------------------------------------------------------------- aggregate


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
    computed on the first ``k`` passages; hit@n is reported for n in ``KS`` up to ``k``.
    ``progress(done, total)`` is called after each question.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rows: list[QuestionResult] = []
    total = len(questions)
    for i, q in enumerate(questions, start=1):
        fields: dict[str, Any] = {"id": q.id, "impossible": q.impossible}
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
        abstention_rate=rate([r.abstained for r in imp_rows]) if answered else None,
        false_abstention_rate=rate([r.abstained for r in ans_rows]) if answered else None,
        retrieve_ms=_mean([r.retrieve_ms for r in rows if r.retrieve_ms is not None]),
        answer_ms=_mean([r.answer_ms for r in rows if r.answer_ms is not None]),
        rows=tuple(rows),
    )


# ---------------------------------------------------------------------------- table


_COUNTS = frozenset({"n", "n_answerable", "n_impossible"})


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
