"""The one sentence splitter: chunking, answer sentences, the sentence boost and LLM answers use it.

Spans are character offsets into the text given, whitespace-trimmed, in order, and together they
cover every non-space character, so a quote cut at a span is always a verbatim slice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["ABBREVIATIONS", "split_sentences"]

# Words that end with a period without ending the sentence ("Cmdr. Armando Trevino", "U.S. agents"),
# compared lower-case without their last period.
ABBREVIATIONS = frozenset(
    (
        "mr mrs ms dr prof sr jr st mt ft gen col lt sgt capt cmdr adm gov sen rep rev hon pres "
        "supt insp det cpl maj brig fr no nos vol vs etc inc ltd co corp bros dept est approx "
        "fig pp al e.g i.e a.m p.m jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k u.n "
        "e.u d.c"
    ).split()
)

# A candidate boundary: terminal punctuation, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
# The same, followed by citation groups that belong to the sentence before them ("there. [1] Next").
_BOUNDARY_MARKERS = re.compile(
    r"[.!?]+[\"'”’)\]]*(?:\s*\[\s*\d+(?:\s*[-–,;]\s*\d+)*\s*\])*(?=\s|$)"
)
_NEXT_STARTS_SENTENCE = re.compile(r"\s+[\"'“‘(\[]*[A-Z0-9À-ÖØ-Þ]")
_LINE_BREAK = re.compile(r"\n\s*\n|\n")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def _is_abbreviation(text: str, dot_index: int) -> bool:
    m = _WORD_BEFORE.search(text, max(0, dot_index - 12), dot_index + 1)
    if not m:
        return False
    word = m.group(1).lower()
    # Single capital initials ("J. Smith") are abbreviations too.
    return word in ABBREVIATIONS or (len(word) == 1 and text[m.start(1)].isupper())


def _strip_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _split_long(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    """Cut an over-long sentence (a 100k-character line, a table) at spaces near ``limit``."""
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        if cut <= start:
            cut = start + limit
        span = _strip_span(text, start, cut)
        if span:
            yield span
        start = cut
    span = _strip_span(text, start, end)
    if span:
        yield span


def split_sentences(
    text: str, max_chars: int = 2000, *, markers: bool = False
) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text``.

    Line breaks end sentences (headlines, list items); so does terminal punctuation (with any
    closing quotes or brackets) followed by whitespace and a word that starts with a capital, a
    digit or an opening quote, unless the period ends a known abbreviation or an initial. "3.5",
    "U.S.-led" and "example.com" never split. A sentence longer than ``max_chars`` is cut at a
    space. With ``markers``, citation groups right after the punctuation ("... based there. [1]
    Next") stay with the sentence they follow, as in an LLM's answer.
    """
    boundary = _BOUNDARY_MARKERS if markers else _BOUNDARY
    spans: list[tuple[int, int]] = []
    block_start = 0
    blocks = [*(m.start() for m in _LINE_BREAK.finditer(text)), len(text)]
    for block_end in blocks:
        pos = block_start
        for m in boundary.finditer(text, block_start, block_end):
            end = m.end()
            if end < block_end and not _NEXT_STARTS_SENTENCE.match(text, end, block_end):
                continue
            if (
                text[m.start()] == "."
                and (len(m.group()) == 1 or m.group()[1] in " \t[")
                and _is_abbreviation(text, m.start())
            ):
                continue
            spans.extend(_split_long(text, pos, end, max_chars))
            pos = end
        spans.extend(_split_long(text, pos, block_end, max_chars))
        block_start = block_end
    return spans
