"""The one sentence every answerer gives when the articles don't answer, and how to recognise it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from rag.types import Answer, Filters, Hit

__all__ = ["ABSTENTION", "KEY_TERMS_MISSING", "abstain", "is_abstention", "under_filters"]

ABSTENTION = "The indexed articles don't answer this."
KEY_TERMS_MISSING = "the question's key terms are missing from the articles"

_MARKER = re.compile(r"\[\s*\d+(?:\s*[-–,;]\s*\d+)*\s*\]")


def _normal(text: str) -> str:
    words = re.sub(r"\s+", " ", _MARKER.sub(" ", text)).lower().replace("’", "'")
    return " ".join(re.sub(r"[^a-z0-9 ]", "", words).split())


def is_abstention(text: str) -> bool:
    """True when ``text`` gives the abstention sentence (citation markers and case ignored)."""
    return _normal(ABSTENTION) in _normal(text)


def abstain(
    question: str,
    hits: Sequence[Hit],
    notes: tuple[str, ...] = (),
    mode: str = "extractive",
    closest: int = 3,
) -> Answer:
    """The abstention answer, showing the ``closest`` passages that came nearest."""
    return Answer(
        question=question,
        text=ABSTENTION,
        citations=(),
        abstained=True,
        closest=tuple(hits[:closest]),
        mode=mode,
        notes=notes,
    )


def under_filters(answer: Answer, filters: Filters | None) -> Answer:
    """A refusal under active filters says so: its notes name the filters, since what is missing
    may only be missing from the articles the filters let through."""
    if filters is None or not filters.active() or not answer.abstained:
        return answer
    which = filters.describe()
    if not answer.closest:
        notes = [f"no indexed article passes the filters ({which})"]
    else:
        notes = [
            f"{KEY_TERMS_MISSING} that pass the filters ({which})" if n == KEY_TERMS_MISSING else n
            for n in answer.notes
        ]
        if not any(which in n for n in notes):
            notes.append(f"only articles that pass the filters were searched ({which})")
    return replace(answer, notes=tuple(notes))
