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
    "date": set(),
    "number": set(),
    "other": set(),
}


def new_entities(text: str, question_terms: set[str], finder: EntityFinder) -> list[Entity]:
    """The entities of ``text`` that the question does not already name."""
    out = []
    for e in finder(text):
        terms = tokenize(e.text)
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
) -> tuple[int, int] | None:
    """The span of ``text`` that answers a question of ``kind``, or None.

    ``focus`` is the part of ``text`` that best matches the question (the chosen sentence of a
    widened quote): an entity there wins over one in the context; among them, a sure kind over a
    possible one, then the one nearest to a word of the question.
    """
    if kind == "other":
        return None
    entities = new_entities(text, question_terms, finder)
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

    def rank(e: Entity) -> tuple[int, int, int, int]:
        inside = 0 if focus[0] <= e.start < focus[1] else 1
        if widened:
            inside = 1 - inside
        sure = 0 if e.kind == kind else 1 if e.kind in _WEAK[kind] else 2
        first = next((n for n, (i, _) in enumerate(words) if i >= e.start), len(words))
        last = next((n for n, (i, _) in enumerate(words) if i >= e.end), len(words))
        outside = [a for a in anchors if not first <= a < last]
        # Question words close around it: the answer sits where the question's words are.
        density = sum(1 for a in outside if a >= first - _WINDOW and a < last + _WINDOW)
        near = min((first - a if a < first else a - last + 1 for a in outside), default=99)
        return (inside, sure, -density, near)

    best = min(entities, key=rank)
    if rank(best)[1] == 2:
        return None
    if year_only:  # "What year ...": the year of "26 March 2005"
        m = _YEAR.search(best.text)
        if m:
            return best.start + m.start(), best.start + m.end()
    return best.start, best.end


_YEAR = re.compile(r"\b(?:1\d\d\d|20\d\d)\b")


_WINDOW = 6


def _words(text: str) -> list[tuple[int, str]]:
    out = []
    pos = 0
    for word in text.split():
        i = text.index(word, pos)
        out.append((i, word))
        pos = i + len(word)
    return out
