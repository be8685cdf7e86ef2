"""Whether a sentence holds the kind of thing asked for, and the short answer inside a quote.

A sentence *matches* a typed question when it holds an entity of the expected kind that the
question does not already name ("Who leads the Sonora contingent?" is not answered by "Sonora").
The short answer is that entity: the one nearest to the question's words in the sentence, as a
span of the quote (never text that is not in it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.answer.context import refers_back
from rag.answer.entities import Entity, find_entities
from rag.text.tokens import tokenize

__all__ = ["EntityFinder", "kind_match", "new_entities", "short_answer"]

EntityFinder = Callable[[str], list[Entity]]

# Kinds an entity may be taken for when the rules cannot be sure: a proper name of unknown kind
# may be a person, an organisation, a place or a title; "who" sometimes asks for a team or a firm.
_WEAK = {
    "person": {"name", "organisation"},
    "organisation": {"name", "person", "place"},
    "place": {"name", "organisation"},
    "work": {"name", "person", "place", "organisation"},
    "name": {"person", "place", "organisation", "work"},
    "date": set(),
    "number": set(),
    "other": set(),
}


def new_entities(text: str, question_terms: set[str], finder: EntityFinder) -> list[Entity]:
    """The entities of ``text`` that the question does not already name."""
    out = []
    for e in finder(text):
        # A number is new unless its value is asked about: "3,837 yards" answers "how many yards".
        terms = tokenize(e.text.split()[0] if e.kind == "number" else e.text)
        if terms and sum(t in question_terms for t in terms) * 2 >= len(terms):
            continue  # mostly words of the question: it is what was asked about, not the answer
        if not terms and e.kind not in ("number", "date"):
            continue
        out.append(e)
    return out


def kind_match(kind: str, entities: Sequence[Entity]) -> float:
    """1 when an entity is of the kind asked for, 0.5 when it may be, else 0."""
    if any(e.kind == kind for e in entities):
        return 1.0
    if any(e.kind in _WEAK[kind] for e in entities):
        return 0.5
    return 0.0


def short_answer(
    kind: str,
    text: str,
    focus: tuple[int, int],
    question_terms: set[str],
    finder: EntityFinder = find_entities,
    year_only: bool = False,
    counted_terms: frozenset[str] = frozenset(),
    head_terms: frozenset[str] = frozenset(),
    called: bool = False,
) -> tuple[int, int] | None:
    """The span of ``text`` that answers a question of ``kind``, or None.

    ``focus`` is the part of ``text`` that best matches the question (the chosen sentence of a
    widened quote): an entity there wins over one in the context; among them, a sure kind over a
    possible one, then the one nearest to a word of the question. ``counted_terms`` is what a
    "how many" question counts: a number followed by it wins ("seven turnovers"), and a unit the
    question names is left out ("3,837" for "How many yards"). ``head_terms`` is the noun the
    question names its answer by ("What festival ..."): a name that holds it ("the Newcastle Beer
    Festival") wins, and it does not count as a word of the question. A name that stands in a
    list of names ("Thomas Edison and Nikola Tesla") answers with the whole list. Asked what
    something is ``called``, the answer is the name the text gives after "called", "known as" or
    "named", and nothing when it gives none.
    """
    if kind == "other":
        return None
    entities = new_entities(text, question_terms - head_terms, finder)
    if called:
        entities = [e for e in entities if _NAMED_AS.search(text, 0, e.start)]
    if not entities:
        return None
    words = _words(text)
    anchors = [
        n
        for n, (i, word) in enumerate(words)
        if focus[0] <= i < focus[1] and any(t in question_terms for t in tokenize(word))
    ]

    # "He leads the unit", "The blockbuster won": asked who or which film, the answer is what the
    # sentence refers back to.
    widened = (
        kind in ("person", "organisation", "work")
        and focus[0] > 0
        and refers_back(text[focus[0] : focus[1]])
    )

    def rank(e: Entity) -> tuple[int, int, int, int, int]:
        inside = 0 if focus[0] <= e.start < focus[1] else 1
        if widened:
            inside = 1 - inside
        named = 0 if head_terms and head_terms & set(tokenize(e.text)) else 1
        sure = 0 if e.kind == kind else 1 if e.kind in _WEAK[kind] else 2
        first = next((n for n, (i, _) in enumerate(words) if i >= e.start), len(words))
        last = next((n for n, (i, _) in enumerate(words) if i >= e.end), len(words))
        outside = [a for a in anchors if not first <= a < last]
        # Question words close around it: the answer sits where the question's words are.
        density = sum(1 for a in outside if a >= first - _WINDOW and a < last + _WINDOW)
        near = min((first - a if a < first else a - last + 1 for a in outside), default=99)
        return (inside, named, sure, -density, near)

    if kind == "number":
        entities = [e for e in entities if not _ONE_OF.match(text, e.start)] or entities
        counted = [e for e in entities if e.kind == "number" and _counts(text, e, counted_terms)]
        if counted:  # "How many yards ...": a number of yards, not the first number near
            entities = counted
    best = min(entities, key=rank)
    if rank(best)[2] == 2:
        return None
    if kind == "number":
        return best.start, _without_asked_unit(text, best, question_terms)
    if kind in ("person", "organisation", "place", "name"):
        return _listed(text, best, entities, kind)
    if year_only:  # "What year ...": the year of "26 March 2005"
        m = _YEAR.search(best.text)
        if m:
            return best.start + m.start(), best.start + m.end()
    return best.start, best.end


_YEAR = re.compile(r"\b(?:1\d\d\d|20\d\d)\b")
_NAMED_AS = re.compile(
    r"\b(?:called|known\s+as|named|nicknamed|termed)\s+(?:(?:the|a|an)\s+)?[\"“‘']?$", re.IGNORECASE
)
_AND = re.compile(r",?\s+(?:and|or|&)\s+|,\s+")


def _listed(text: str, best: Entity, entities: Sequence[Entity], kind: str) -> tuple[int, int]:
    """The whole list an entity stands in ("Thomas Edison and Nikola Tesla", "Redwood City,
    California"): names of the same kind joined by commas and "and"."""
    alike = [e for e in entities if e.kind == best.kind or e.kind in (kind, "name")]
    alike.sort(key=lambda e: e.start)
    i = next(n for n, e in enumerate(alike) if e is best)
    lo = hi = i
    while lo > 0 and _AND.fullmatch(text, alike[lo - 1].end, alike[lo].start):
        lo -= 1
    while hi + 1 < len(alike) and _AND.fullmatch(text, alike[hi].end, alike[hi + 1].start):
        hi += 1
    gaps = [
        text[a.end : b.start] for a, b in zip(alike[lo:hi], alike[lo + 1 : hi + 1], strict=True)
    ]
    if gaps and not any(_CONJUNCTION.search(g) for g in gaps):
        # Commas alone make a list only in "Redwood City, California" (a place in a place).
        in_place = _PLACE_IN.search(text[: alike[lo].start])
        if not (kind == "place" and len(gaps) == 1 and in_place):
            return best.start, best.end
    return alike[lo].start, alike[hi].end


_CONJUNCTION = re.compile(r"\b(?:and|or)\b|&")
_PLACE_IN = re.compile(r"\b(?:in|at|near|from)\s+$")
_ONE_OF = re.compile(r"one\s+of\b", re.IGNORECASE)  # "one of his best seasons" counts nothing
_COUNTED_WORDS = 3


def _counts(text: str, e: Entity, counted: frozenset[str]) -> bool:
    """Whether the number counts a thing the question names ("3,837 yards", "seven turnovers")."""
    after = text[e.start : e.end].split()[1:] + text[e.end :].split()[:_COUNTED_WORDS]
    return any(t in counted for w in after[:_COUNTED_WORDS] for t in tokenize(w))


def _without_asked_unit(text: str, e: Entity, question_terms: set[str]) -> int:
    """The end of the number without a unit the question already names ("How many yards": 3,837)."""
    words = _words(text[e.start : e.end])
    keep = len(words)
    while keep > 1 and all(t in question_terms for t in tokenize(words[keep - 1][1]) or ["%"]):
        keep -= 1
    at, word = words[keep - 1]
    return e.start + at + len(word)


_WINDOW = 6


def _words(text: str) -> list[tuple[int, str]]:
    out = []
    pos = 0
    for word in text.split():
        i = text.index(word, pos)
        out.append((i, word))
        pos = i + len(word)
    return out


_HOW_MANY = re.compile(r"\bhow\s+many\s+([\w'-]+)", re.IGNORECASE)


def counted_terms(question: str) -> frozenset[str]:
    """What a "how many" question counts ("How many yards ..." -> {"yard"}), else nothing."""
    m = _HOW_MANY.search(question)
    return frozenset(tokenize(m.group(1))) if m else frozenset()
