"""What an answer does when its sources disagree: quote each side, say so, record the conflicts.

The extractive answerer quotes every counterpart of its top sentence (rag/answer/conflicts.py)
next to it, the newest version first when all are dated, and opens the answer with "The sources
disagree: [1] says 231 passengers (dated 2021-03-05); [2] says 212 passengers (dated
2021-03-04)." An LLM answer is checked the same way: a disagreement between two passages it
cites is recorded, and one of which it cites a single side is reported in its notes.
Every value is a verbatim slice of its article, at the offsets its :class:`Conflict` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rag.answer.conflicts import Counterpart, counterparts, passage_disagreements
from rag.answer.entities import find_entities
from rag.answer.kinds import answer_kind
from rag.answer.short import EntityFinder
from rag.types import Answer, AnswerSentence, Citation, Conflict, Hit

if TYPE_CHECKING:
    from rag.answer.extractive import Candidate

__all__ = [
    "CANDIDATES",
    "Quoted",
    "cited_disagreements",
    "conflict_sentence",
    "quote_counterparts",
    "state_conflicts",
]

CANDIDATES = 5  # best-ranked sentences whose disagreement with another source makes the answer

Widen = Callable[[Sequence[Hit], "Candidate", Sequence["Candidate"]], "Candidate"]


@dataclass(frozen=True)
class Quoted:
    """An answer's quotes once the sources disagree: the passages (with the paragraphs of other
    versions that were not retrieved), the quotes in citation order, the quote whose sentence
    the others contradict, and each counterpart with its quote."""

    hits: list[Hit]
    quotes: list[Candidate]
    top: Candidate
    found: list[tuple[Candidate, Counterpart]]


def quote_counterparts(
    question: str,
    kind: str,
    hits: Sequence[Hit],
    chosen: Sequence[Candidate],
    ranked: Sequence[Candidate],
    finder: EntityFinder,
    widen: Widen,
) -> Quoted | None:
    """When other articles say an answering sentence with another value for what was asked,
    quote each of them next to it, or None when no source contradicts one.

    The sentence is the top quote's, else the first of the ``CANDIDATES`` best-ranked sentences
    (for an untyped question, those of the top quote's story) that another article contradicts:
    a disagreement there, of the kind asked for and where the sentence answers, marks the
    answer, and that sentence becomes the top quote. The quotes that
    disagree come first, the newest first when all are dated (else the best-ranked first),
    then the other quotes.
    """
    top = chosen[0]
    tried = [(top.hit_index, *(top.focus or (top.start, top.end)))]
    story = hits[top.hit_index].article
    for c in ranked[:CANDIDATES]:
        other = hits[c.hit_index].article
        # An untyped question gives too little to tell its answer in another story.
        same_story = other.id == story.id or (other.group_id and other.group_id == story.group_id)
        if kind != "other" or same_story:
            tried.append((c.hit_index, c.start, c.end))
    found: list[Counterpart] = []
    for n, (index, start, end) in enumerate(dict.fromkeys(tried)):
        found = counterparts(question, kind, hits, index, (start, end), finder)
        if found:
            if n > 0:
                cand = next(
                    c for c in ranked if (c.hit_index, c.start, c.end) == (index, start, end)
                )
                top = widen(hits, cand, ranked)
            break
    if not found:
        return None
    passages = list(hits)
    pairs = []
    for cp in found:
        at = next((i for i, h in enumerate(passages) if h is cp.hit), None)
        if at is None:
            passages.append(cp.hit)
            at = len(passages) - 1
        text = cp.hit.article.text[cp.start : cp.end]
        quote = replace(
            top, hit_index=at, start=cp.start, end=cp.end, text=text, passage=None, focus=None
        )
        pairs.append((widen(passages, quote, []), cp))
    disagreeing = [top, *(q for q, _ in pairs)]
    if all(passages[q.hit_index].article.date for q in disagreeing):
        disagreeing.sort(key=lambda q: passages[q.hit_index].article.date or "", reverse=True)

    def overlaps(c: Candidate) -> bool:
        return any(
            c.hit_index == q.hit_index and c.start < q.end and q.start < c.end for q in disagreeing
        )

    rest = [c for c in chosen if not overlaps(c)]
    return Quoted(passages, [*disagreeing, *rest], top, pairs)


def state_conflicts(answer: Answer, quoted: Quoted) -> Answer:
    """The answer opened by a sentence that says the sources disagree and cites each value, with
    a :class:`Conflict` for each counterpart of the contradicted quote (``answer`` numbers the
    quotes as ``quoted.quotes`` orders them)."""
    number = {(q.hit_index, q.start): n for n, q in enumerate(quoted.quotes, start=1)}
    by_n = {c.n: c for c in answer.citations}
    n_top = number[(quoted.top.hit_index, quoted.top.start)]
    conflicts = []
    for quote, cp in quoted.found:
        n_there = number[(quote.hit_index, quote.start)]
        (n1, s1), (n2, s2) = sorted([(n_top, cp.here), (n_there, cp.there)])
        c1, c2 = by_n[n1], by_n[n2]
        conflicts.append(
            Conflict(
                kind=cp.kind,
                values=(_value(c1, s1), _value(c2, s2)),
                citations=(n1, n2),
                sources=(c1.source, c2.source),
                dates=(c1.date, c2.date),
                spans=(s1, s2),
            )
        )
    lead = conflict_sentence(conflicts)
    cited = tuple(sorted({n for c in conflicts for n in c.citations}))
    return replace(
        answer,
        text=f"{lead} {answer.text}",
        sentences=(AnswerSentence(text=lead, citations=cited), *answer.sentences),
        conflicts=tuple(conflicts),
    )


def _value(citation: Citation, span: tuple[int, int]) -> str:
    """The value at article offsets ``span``, cut from the citation's quote (verbatim)."""
    assert citation.start <= span[0] < span[1] <= citation.end, "the value lies in its quote"
    return citation.quote[span[0] - citation.start : span[1] - citation.start]


def conflict_sentence(conflicts: Sequence[Conflict]) -> str:
    """ "The sources disagree: [1] says 231 passengers (dated 2021-03-05); [2] says 212
    passengers (dated 2021-03-04)." with each citation once, in citation order."""
    said: dict[int, tuple[str, str | None]] = {}
    for c in conflicts:
        for n, value, date in zip(c.citations, c.values, c.dates, strict=True):
            said.setdefault(n, (value, date))
    parts = [
        f"[{n}] says {' '.join(value.split())}" + (f" (dated {date})" if date else "")
        for n, (value, date) in sorted(said.items())
    ]
    return "The sources disagree: " + "; ".join(parts) + "."


def cited_disagreements(
    question: str,
    hits: Sequence[Hit],
    citations: Sequence[Citation],
    finder: EntityFinder = find_entities,
) -> tuple[list[Conflict], list[str]]:
    """For an answer that cites ``citations`` of the passages ``hits``: the disagreements on what
    was asked between passages it cites (as conflicts, the newer first when both are dated), and
    a note for each disagreement of which it cites only one side."""
    number = {c.chunk_id: c.n for c in citations}
    found: list[Conflict] = []
    notes: list[str] = []
    for i, j, d, sa, sb in passage_disagreements(question, answer_kind(question), hits, finder):
        sides = [
            (hits[i], (sa[0] + d.here[0], sa[0] + d.here[1])),
            (hits[j], (sb[0] + d.there[0], sb[0] + d.there[1])),
        ]
        cited = [number.get(h.chunk.id) for h, _ in sides]
        values = [h.article.text[a:b] for h, (a, b) in sides]
        n0, n1 = cited
        if n0 is not None and n1 is not None:
            d0, d1 = (h.article.date for h, _ in sides)
            newer_second = bool(d0 and d1 and d1 > d0) or (not (d0 and d1 and d0 != d1) and n1 < n0)
            a, b = (1, 0) if newer_second else (0, 1)
            found.append(
                Conflict(
                    kind=d.kind,
                    values=(values[a], values[b]),
                    citations=(cited[a] or 0, cited[b] or 0),
                    sources=(sides[a][0].article.source, sides[b][0].article.source),
                    dates=(sides[a][0].article.date, sides[b][0].article.date),
                    spans=(sides[a][1], sides[b][1]),
                )
            )
        elif n0 is not None or n1 is not None:
            k = 0 if n0 is not None else 1
            other = sides[1 - k][0].article
            notes.append(
                f"the passages disagree on what was asked: [{cited[k]}] says {values[k]}, "
                f"{other.title or 'another passage'} ({other.source}) says {values[1 - k]}; "
                f"the answer cites only [{cited[k]}]"
            )
    return found, notes
