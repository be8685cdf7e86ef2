"""When the sources disagree on what was asked: the same sentence in two versions, two values.

An answer sentence has a *counterpart* in another article when the two say the same thing in the
same words except for facts (:func:`aligned`: nearly every word matches, or is a fact on both
sides). If the counterpart gives a different value of the kind the question asks for (a number
for "how many", a date for "when", a name for "who"/"where", any fact for an untyped question)
at the place in the sentence that answers, the sources disagree, and an answer must say so and
cite both. Unrelated facts in different articles are never compared: without an aligned sentence
there is no disagreement.

Counterparts are looked for in the other retrieved passages and in the other versions of the
answer's article (its near-duplicate group, :attr:`rag.types.Hit.versions`), where the stored
differences point straight at the sentence.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.context import article_sentences, paragraph_at
from rag.answer.short import EntityFinder, short_answer
from rag.text.tokens import tokenize
from rag.text.versions import fact_differences, fact_kinds, words
from rag.types import Article, Chunk, Conflict, Hit

__all__ = [
    "Counterpart",
    "aligned",
    "conflict_sentence",
    "counterparts",
    "disagreement",
    "passage_disagreements",
]

ALIGNED = 0.8  # share of words that must match (or be facts on both sides) for a counterpart
_NEAR = 6  # words between a differing value and the question's words, when no slot is known
_MAX_COUNTERPARTS = 3

# Entity kinds (rag/answer/entities.py) a value may have for each expected answer kind.
_VALUE_KINDS: dict[str, frozenset[str]] = {
    "number": frozenset({"number"}),
    "date": frozenset({"date"}),
    "person": frozenset({"person", "name", "organisation"}),
    "organisation": frozenset({"organisation", "name", "person", "place"}),
    "place": frozenset({"place", "name", "organisation"}),
    "work": frozenset({"work", "name", "person", "place", "organisation"}),
}
# Fact kinds (rag/text/versions.py) of a differing word with no entity around it.
_FACT_KINDS: dict[str, frozenset[str]] = {
    "number": frozenset({"number"}),
    "date": frozenset({"date"}),
    "person": frozenset({"name"}),
    "organisation": frozenset({"name"}),
    "place": frozenset({"name"}),
    "work": frozenset({"name"}),
}


@dataclass(frozen=True)
class Difference:
    """A value two aligned sentences give differently, with offsets into each sentence."""

    kind: str  # an entity kind (number, date, person, place ...) or "name"
    here: tuple[int, int]
    there: tuple[int, int]


@dataclass(frozen=True)
class Counterpart:
    """A sentence of another article that says the answer's sentence with a different value.

    ``hit`` is the passage it is in (a retrieved one, or the paragraph of another version);
    ``start:end`` is the sentence and ``there`` the value, as offsets into ``hit.article.text``;
    ``here`` is the value's span in the answer's article.
    """

    hit: Hit
    start: int
    end: int
    kind: str
    here: tuple[int, int]
    there: tuple[int, int]
    retrieved: bool  # one of the retrieved passages (else another version's paragraph)


def aligned(a: str, b: str) -> float:
    """The share of words two sentences have in common, counting a replaced run of facts on both
    sides as common: near 1 for one sentence in two versions, low for different sentences."""
    wa, wb = words(a), words(b)
    if min(len(wa), len(wb)) < 4:
        return 0.0
    na, nb = [w.norm for w in wa], [w.norm for w in wb]
    if len(set(na) & set(nb)) < ALIGNED * min(len(set(na)), len(set(nb))) - 2:
        return 0.0  # cheap test first: most sentence pairs share few words
    same = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, na, nb, autojunk=False).get_opcodes():
        if op == "equal":
            same += i2 - i1
        elif op == "replace" and all(fact_kinds(w) for w in wa[i1:i2] + wb[j1:j2]):
            same += min(i2 - i1, j2 - j1)
    return same / max(len(wa), len(wb))


def _value_span(
    sentence: str, span: tuple[int, int], finder: EntityFinder
) -> tuple[tuple[int, int], str | None]:
    """The differing words widened to the entity around them ("212" -> "212 passengers" when the
    unit is part of it), and that entity's kind (None when no entity holds them)."""
    for e in finder(sentence):
        if e.start < span[1] and span[0] < e.end:
            return (min(e.start, span[0]), max(e.end, span[1])), e.kind
    return span, None


_NEXT_WORD = re.compile(r"\s+([^\W\d_][\w'’-]*)")


def _with_noun(sentence: str, span: tuple[int, int], q_terms: set[str]) -> tuple[int, int]:
    """A number with the question's noun that follows it: "231" -> "231 passengers"."""
    m = _NEXT_WORD.match(sentence, span[1])
    if m is None:
        return span
    terms = tokenize(m.group(1))
    return (span[0], m.end()) if terms and all(t in q_terms for t in terms) else span


def _near_question(sentence: str, span: tuple[int, int], q_terms: set[str]) -> bool:
    ws = words(sentence)
    inside = [i for i, w in enumerate(ws) if span[0] <= w.start < span[1]]
    asked = [
        i
        for i, w in enumerate(ws)
        if not span[0] <= w.start < span[1] and any(t in q_terms for t in tokenize(w.text))
    ]
    if not inside or not asked:
        return False
    return min(abs(i - j) for i in inside for j in asked) <= _NEAR


def disagreement(
    question_kind: str,
    q_terms: set[str],
    sentence: str,
    other: str,
    finder: EntityFinder,
    slot: tuple[int, int] | None = None,
) -> Difference | None:
    """The value ``other`` (an aligned sentence of another article) gives differently from
    ``sentence`` for what was asked, or None.

    ``slot`` is the span of ``sentence`` that answers (its short answer), when known: a
    difference elsewhere is about something else. Without one, the difference must be of the
    kind asked for and close to the question's words.
    """
    if aligned(sentence, other) < ALIGNED:
        return None
    wanted = _VALUE_KINDS.get(question_kind)
    best: tuple[int, Difference] | None = None
    for d in fact_differences(sentence, other):
        here, kind = _value_span(sentence, d.a, finder)
        there, kind_there = _value_span(other, d.b, finder)
        kind = kind or kind_there
        if wanted is not None and not (
            kind in wanted if kind is not None else d.kind in _FACT_KINDS[question_kind]
        ):
            continue
        if slot is not None:
            if not (here[0] < slot[1] and slot[0] < here[1]):
                continue
            rank = 0
        elif _near_question(sentence, here, q_terms):
            rank = 1
        else:
            continue
        if (kind or d.kind) == "number":
            here, there = _with_noun(sentence, here, q_terms), _with_noun(other, there, q_terms)
        found = Difference(kind or d.kind, here, there)
        if best is None or rank < best[0]:
            best = (rank, found)
    return None if best is None else best[1]


def _slot(
    question_kind: str, sentence: str, q_terms: set[str], finder: EntityFinder
) -> tuple[int, int] | None:
    if question_kind == "other":
        return None
    return short_answer(question_kind, sentence, (0, len(sentence)), q_terms, finder)


def counterparts(
    question: str,
    question_kind: str,
    hits: Sequence[Hit],
    top: int,
    focus: tuple[int, int],
    finder: EntityFinder,
) -> list[Counterpart]:
    """Sentences of other articles that give the answer sentence ``focus`` (offsets in
    ``hits[top]``'s article) with a different value for what was asked, one per value.

    Looked for in the other retrieved passages first, then in the other versions of the
    answer's article that differ inside the sentence.
    """
    hit = hits[top]
    text = hit.article.text
    sentence = text[focus[0] : focus[1]]
    q_terms = set(tokenize(question))
    slot = _slot(question_kind, sentence, q_terms, finder)
    found: list[Counterpart] = []
    values = {_norm(sentence[slice(*slot)])} if slot else set()
    seen_articles = {hit.article.id}

    def consider(other_hit: Hit, start: int, end: int, retrieved: bool) -> None:
        other = other_hit.article.text[start:end]
        d = disagreement(question_kind, q_terms, sentence, other, finder, slot)
        if d is None:
            return
        value = _norm(other[slice(*d.there)])
        if value in values or _norm(sentence[slice(*d.here)]) == value:
            return
        values.add(value)
        seen_articles.add(other_hit.article.id)
        found.append(
            Counterpart(
                other_hit,
                start,
                end,
                d.kind,
                (focus[0] + d.here[0], focus[0] + d.here[1]),
                (start + d.there[0], start + d.there[1]),
                retrieved,
            )
        )

    for other_hit in hits:
        if other_hit.article.id in seen_articles or len(found) >= _MAX_COUNTERPARTS:
            continue
        doc = article_sentences(other_hit.article.text)
        for s, e in doc.within(other_hit.chunk.start, other_hit.chunk.end):
            if other_hit.article.id not in seen_articles:
                consider(other_hit, s, e, True)
    for version in hit.versions:
        if version.article.id in seen_articles or len(found) >= _MAX_COUNTERPARTS:
            continue
        for change in version.changes_within(*focus):
            doc = article_sentences(version.article.text)
            i = doc.index_of(change.there_start)
            if i is None:
                continue
            s, e = doc.spans[i]
            consider(_version_hit(hit, version.article, s), s, e, False)
            break
    return found


def _version_hit(hit: Hit, article: Article, pos: int) -> Hit:
    """The paragraph of another version around ``pos``, as a passage to cite (scored as the
    passage of the answer's version it is a copy of)."""
    text = article.text
    p0, p1 = paragraph_at(text, pos)
    chunk = Chunk(
        id=f"{article.id}:{p0}-{p1}",
        article_id=article.id,
        ordinal=-1,
        start=p0,
        end=p1,
        text=text[p0:p1],
    )
    others = tuple(v for v in hit.versions if v.article.id != article.id)
    return Hit(chunk=chunk, article=article, score=hit.score, versions=others)


def _norm(value: str) -> str:
    return " ".join(w.norm for w in words(value))


def passage_disagreements(
    question: str, question_kind: str, hits: Sequence[Hit], finder: EntityFinder
) -> list[tuple[int, int, Difference, tuple[int, int], tuple[int, int]]]:
    """Pairs of passages (indexes into ``hits``, different articles) with aligned sentences that
    give different values for what was asked: ``(i, j, difference, sentence_i, sentence_j)``,
    sentences as offsets into each article."""
    q_terms = set(tokenize(question))
    out = []
    sentences = []
    for h in hits:
        doc = article_sentences(h.article.text)
        sentences.append(doc.within(h.chunk.start, h.chunk.end))
    for i, a in enumerate(hits):
        for j in range(i + 1, len(hits)):
            b = hits[j]
            if a.article.id == b.article.id:
                continue
            for sa in sentences[i]:
                text_a = a.article.text[sa[0] : sa[1]]
                slot = _slot(question_kind, text_a, q_terms, finder)
                hit_found = False
                for sb in sentences[j]:
                    text_b = b.article.text[sb[0] : sb[1]]
                    d = disagreement(question_kind, q_terms, text_a, text_b, finder, slot)
                    if d is not None:
                        out.append((i, j, d, sa, sb))
                        hit_found = True
                        break
                if hit_found:
                    break
    return out


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
