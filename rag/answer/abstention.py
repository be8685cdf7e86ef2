"""The one sentence every answerer gives when the articles don't answer, and how to recognise it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.types import Answer, Hit

__all__ = ["ABSTENTION", "abstain", "is_abstention"]

ABSTENTION = "The indexed articles don't answer this."

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
