"""When the sources disagree on what was asked: the same sentence in two versions, two values.

An answer sentence has a *counterpart* in another article when the two say the same thing in the
same words except for facts (:func:`aligned`: nearly every word matches, or is a fact on both
sides). If the counterpart gives a different value of the kind the question asks for (a number
for "how many", a date for "when", a name for "who"/"where", any fact for an untyped question)
at the place in the sentence that answers, the sources disagree, and an answer must say so and
cite both. Unrelated facts in different articles are never compared: without an aligned sentence
there is no disagreement.

Counterparts are looked for in the other retrieved passages and in the other versions of the
answer's article (its near-duplicate group, :attr:`rag.types.Hit.versions`), where the group's
differences point straight at the sentence.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.context import article_sentences, is_question, paragraph_at
from rag.answer.entities import Entity
from rag.answer.short import EntityFinder, short_answer
from rag.text.tokens import STOPWORDS, tokenize
from rag.text.versions import FactDiff, Word, fact_differences, fact_kinds, words
from rag.types import Article, Chunk, Hit

__all__ = [
    "Counterpart",
    "aligned",
    "counterparts",
    "disagreement",
    "passage_disagreements",
]

ALIGNED = 0.8  # share of words that must match (or be facts on both sides) for a counterpart
# Words between a differing value and the nearest word of the question: at most _FAR for a value
# at one of the sentence's answer slots, _CLOSE for another value when the sentence has slots,
# _NEAR when it has none (an untyped question). Measured on generated versions (docs/answers.md).
_NEAR = 6
_FAR = 12
_CLOSE = 3
_SWAP = 5  # words on either side of a replaced run that still counts as one value swapped
_MAX_COUNTERPARTS = 3

# Entity kinds (rag/answer/entities.py) a value may have for each expected answer kind. The rules
# that tell a person from a place or a firm are rough, so any name may answer any "name" question.
_NAMES = frozenset({"person", "organisation", "place", "work", "name"})
_VALUE_KINDS: dict[str, frozenset[str]] = {
    "number": frozenset({"number"}),
    "date": frozenset({"date", "number"}),  # "On the 17th", "in 1962": a date may read as a number
    "person": _NAMES,
    "organisation": _NAMES,
    "place": _NAMES,
    "work": _NAMES,
    "name": _NAMES,
}
# Fact kinds (rag/text/versions.py) of a differing word with no entity around it.
_FACT_KINDS: dict[str, frozenset[str]] = {
    "number": frozenset({"number"}),
    "date": frozenset({"date", "number"}),
    "person": frozenset({"name"}),
    "organisation": frozenset({"name"}),
    "place": frozenset({"name"}),
    "work": frozenset({"name"}),
    "name": frozenset({"name"}),
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


def _fact_swap(old: Sequence[Word], new: Sequence[Word]) -> bool:
    """A short replaced run that is mostly facts on both sides ("William and Judith Bollinger" /
    "Astra"): one value swapped for another, not rewritten prose ("In Scotland he")."""
    return max(len(old), len(new)) <= _SWAP and all(
        2 * sum(1 for w in run if fact_kinds(w)) >= len(run) > 0 for run in (old, new)
    )


_JOINERS = frozenset("of von van de der del da du la le bin ibn al".split())


def _name_run(run: Sequence[Word]) -> bool:
    """Capitalised words (with "of", "von" ... between them), not opening with a function word:
    "James Hutton", "Johann von Staupitz", not "The" or "In"."""
    return (
        0 < len(run) <= _SWAP
        and run[0].norm not in STOPWORDS
        and run[0].text[:1].isupper()
        and all(w.text[:1].isupper() or w.norm in _JOINERS for w in run)
    )


def _opening_swap(
    wa: Sequence[Word], wb: Sequence[Word], op: tuple[str, int, int, int, int]
) -> bool:
    """The names that open two aligned sentences differ ("James Hutton is ..." / "Thoreau is
    ..."): within one sentence pair, a capitalised opening word in place of another is a name
    (rag/text/versions, diffing whole texts, takes it for one only when the text says so)."""
    kind, i1, i2, j1, j2 = op
    return kind == "replace" and i1 == j1 == 0 and _name_run(wa[:i2]) and _name_run(wb[:j2])


def aligned(a: str, b: str) -> float:
    """The share of words two sentences have in common, counting a short replaced run with a fact
    on both sides as common: near 1 for one sentence in two versions, low for different ones,
    and 0 for sentences that differ in more than one such run (one pattern about two things)."""
    wa, wb = words(a), words(b)
    if min(len(wa), len(wb)) < 4:
        return 0.0
    na, nb = [w.norm for w in wa], [w.norm for w in wb]
    if len(set(na) & set(nb)) < ALIGNED * min(len(set(na)), len(set(nb))) - 2:
        return 0.0  # cheap test first: most sentence pairs share few words
    same = swaps = 0
    for op in difflib.SequenceMatcher(None, na, nb, autojunk=False).get_opcodes():
        kind, i1, i2, j1, j2 = op
        if kind == "equal":
            same += i2 - i1
        elif kind == "replace" and (_fact_swap(wa[i1:i2], wb[j1:j2]) or _opening_swap(wa, wb, op)):
            same += max(i2 - i1, j2 - j1)
            swaps += 1
    if swaps > 1:
        # Two values swapped in one sentence ("Residents of Dunmore counted 1092 visitors" /
        # "Residents of Farrow counted 299 visitors"): one pattern about two things, not versions.
        return 0.0
    return same / max(len(wa), len(wb))


def _differences(a: str, b: str) -> list[FactDiff]:
    """:func:`fact_differences` of two aligned sentences, and the names that open them."""
    found = fact_differences(a, b)
    wa, wb = words(a), words(b)
    ops = difflib.SequenceMatcher(
        None, [w.norm for w in wa], [w.norm for w in wb], autojunk=False
    ).get_opcodes()
    if ops and _opening_swap(wa, wb, ops[0]):
        _, _, i2, _, j2 = ops[0]
        span_a, span_b = (wa[0].start, wa[i2 - 1].end), (wb[0].start, wb[j2 - 1].end)
        if not any(d.a[0] < span_a[1] for d in found):
            found.insert(0, FactDiff("name", span_a, span_b, a[slice(*span_a)], b[slice(*span_b)]))
    return found


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


def _distance(sentence: str, span: tuple[int, int], q_terms: set[str]) -> int:
    """Words between ``span`` of ``sentence`` and the nearest word of the question outside it
    (a large number when there is none)."""
    ws = words(sentence)
    inside = [i for i, w in enumerate(ws) if span[0] <= w.start < span[1]]
    asked = [
        i
        for i, w in enumerate(ws)
        if not span[0] <= w.start < span[1] and any(t in q_terms for t in tokenize(w.text))
    ]
    return min((abs(i - j) for i in inside for j in asked), default=len(ws) + _NEAR + 1)


def disagreement(
    question_kind: str,
    q_terms: set[str],
    sentence: str,
    other: str,
    finder: EntityFinder,
    slots: Sequence[tuple[int, int]] = (),
) -> Difference | None:
    """The value ``other`` (an aligned sentence of another article) gives differently from
    ``sentence`` for what was asked, or None.

    The difference must be of the kind asked for, not a word the question names on either side
    (that is what was asked about, not the answer), and where the sentence answers: at one of
    its ``slots`` (the spans that may answer a typed question, :func:`answer_slots`) or right
    next to the question's words; in a sentence without slots, close to the question's words.
    A difference elsewhere is about something else ("a crew of nine" is not "212 passengers").
    """
    if aligned(sentence, other) < ALIGNED:
        return None
    wanted = _VALUE_KINDS.get(question_kind)
    for d in _differences(sentence, other):
        here, kind = _value_span(sentence, d.a, finder)
        there, kind_there = _value_span(other, d.b, finder)
        kind = kind or kind_there
        if wanted is not None and not (
            kind in wanted if kind is not None else d.kind in _FACT_KINDS[question_kind]
        ):
            continue
        if any(_named(side, q_terms) for side in (d.a_text, d.b_text)):
            continue
        distance = _distance(sentence, d.a, q_terms)
        at_slot = any(here[0] < b and a < here[1] for a, b in slots)
        if not ((at_slot and distance <= _FAR) or distance <= (_CLOSE if slots else _NEAR)):
            continue
        if (kind or d.kind) == "number":
            here, there = _with_noun(sentence, here, q_terms), _with_noun(other, there, q_terms)
        else:  # "Mark Twain's works": the name is "Mark Twain"
            here, there = _no_possessive(sentence, here), _no_possessive(other, there)
        return Difference(kind or d.kind, here, there)
    return None


def _no_possessive(text: str, span: tuple[int, int]) -> tuple[int, int]:
    if text[span[0] : span[1]].endswith(("'s", "’s")) and span[1] - span[0] > 2:
        return span[0], span[1] - 2
    return span


def _named(value: str, q_terms: set[str]) -> bool:
    terms = tokenize(value)
    return bool(terms) and all(t in q_terms for t in terms)


def answer_slots(
    question_kind: str, sentence: str, q_terms: set[str], finder: EntityFinder
) -> tuple[tuple[int, int], ...]:
    """The spans of ``sentence`` that may answer a typed question: its short answer
    (rag/answer/short.py), and the entity of the kind asked for nearest to the question's words
    ("17 people" for "How many people did the storm kill?", which the short answer skips as
    half named by the question). Empty for an untyped question or without such an entity."""
    wanted = _VALUE_KINDS.get(question_kind)
    if wanted is None:
        return ()
    found = []
    short = short_answer(question_kind, sentence, (0, len(sentence)), q_terms, finder)
    if short is not None:
        found.append(short)
    entities = []
    for e in finder(sentence):
        terms = tokenize(e.text)
        if e.kind in wanted and not (terms and all(t in q_terms for t in terms)):
            entities.append(e)
    if entities:
        ws = words(sentence)
        asked = [i for i, w in enumerate(ws) if any(t in q_terms for t in tokenize(w.text))]

        def rank(e: Entity) -> tuple[int, bool, int]:
            inside = [i for i, w in enumerate(ws) if e.start <= w.start < e.end]
            near = min((abs(i - j) for i in inside for j in asked), default=len(ws))
            return (near, e.kind != question_kind, e.start)

        best = min(entities, key=rank)
        found.append((best.start, best.end))
    return tuple(dict.fromkeys(found))


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
    slot = answer_slots(question_kind, sentence, q_terms, finder)
    found: list[Counterpart] = []
    values: set[str] = set()
    seen_articles = {hit.article.id}

    def consider(other_hit: Hit, start: int, end: int, retrieved: bool) -> None:
        other = other_hit.article.text[start:end]
        if is_question(other):
            return
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
    sentences as offsets into each article.

    Only sentences that hold at least half of the question's key terms are asked about: without
    a reader's choice of the answering sentence, the others are about something else.
    """
    q_terms = set(tokenize(question))
    asking: list[list[tuple[tuple[int, int], tuple[tuple[int, int], ...]]]] = []
    plain: list[list[tuple[int, int]]] = []
    for h in hits:
        spans = article_sentences(h.article.text).within(h.chunk.start, h.chunk.end)
        spans = [sp for sp in spans if not is_question(h.article.text[sp[0] : sp[1]])]
        plain.append(spans)
        asked = []
        for sp in spans:
            text = h.article.text[sp[0] : sp[1]]
            found = set(tokenize(text))
            if q_terms and 2 * len(q_terms & found) >= len(q_terms):
                asked.append((sp, answer_slots(question_kind, text, q_terms, finder)))
        asking.append(asked)
    out = []
    for i, a in enumerate(hits):
        for j, b in enumerate(hits):
            if j <= i or a.article.id == b.article.id:
                continue
            pair = _first_disagreement(question_kind, q_terms, a, asking[i], b, plain[j], finder)
            if pair is not None:
                out.append((i, j, *pair))
    return out


def _first_disagreement(
    question_kind: str,
    q_terms: set[str],
    a: Hit,
    asked: list[tuple[tuple[int, int], tuple[tuple[int, int], ...]]],
    b: Hit,
    spans: list[tuple[int, int]],
    finder: EntityFinder,
) -> tuple[Difference, tuple[int, int], tuple[int, int]] | None:
    for sa, slot in asked:
        text_a = a.article.text[sa[0] : sa[1]]
        for sb in spans:
            text_b = b.article.text[sb[0] : sb[1]]
            d = disagreement(question_kind, q_terms, text_a, text_b, finder, slot)
            if d is not None:
                return d, sa, sb
    return None
