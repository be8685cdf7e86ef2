"""Sentence splitting and sentence-aware chunking, both with character offsets into the article text."""

from __future__ import annotations

import re
from collections.abc import Iterator

from rag.types import Chunk, content_hash

# Words that end with a period without ending the sentence ("Cmdr. Armando Trevino", "U.S. agents").
_ABBREVIATIONS = frozenset(
    (
        "mr mrs ms dr prof sr jr st mt gen col lt sgt capt cmdr adm gov sen rep rev hon pres "
        "supt insp det cpl maj brig fr no nos vol vs etc inc ltd co corp bros dept est approx "
        "fig al e.g i.e a.m p.m jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k u.n e.u "
        "d.c"
    ).split()
)

# A candidate boundary: terminal punctuation, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_NEXT_STARTS_SENTENCE = re.compile(r"\s+[\"'“‘(\[]*[A-Z0-9À-ÖØ-Þ]")
_PARAGRAPH = re.compile(r"\n\s*\n|\n")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def _is_abbreviation(text: str, dot_index: int) -> bool:
    m = _WORD_BEFORE.search(text, max(0, dot_index - 12), dot_index + 1)
    if not m:
        return False
    word = m.group(1).lower()
    # Single capital initials ("J. Smith") are abbreviations too.
    return word in _ABBREVIATIONS or (len(word) == 1 and text[m.start(1)].isupper())


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


def split_sentences(text: str, max_chars: int = 2000) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text``, whitespace-trimmed, in order.

    Line breaks end sentences (headlines, list items); so does terminal punctuation followed by a word that
    starts with a capital letter, a digit or an opening quote, unless the period ends a known abbreviation.
    """
    spans: list[tuple[int, int]] = []
    block_start = 0
    blocks = [*(m.start() for m in _PARAGRAPH.finditer(text)), len(text)]
    for block_end in blocks:
        pos = block_start
        for m in _BOUNDARY.finditer(text, block_start, block_end):
            end = m.end()
            if not _NEXT_STARTS_SENTENCE.match(text, end, block_end):
                continue
            if (
                text[m.start()] == "."
                and m.end() - m.start() == 1
                and _is_abbreviation(text, m.start())
            ):
                continue
            spans.extend(_split_long(text, pos, end, max_chars))
            pos = end
        spans.extend(_split_long(text, pos, block_end, max_chars))
        block_start = block_end
    return spans


def chunk_article(
    article_id: str,
    text: str,
    *,
    chunk_chars: int = 700,
    overlap_sentences: int = 1,
    paragraph_fill: float = 1.0,
) -> list[Chunk]:
    """Group whole sentences into chunks of about ``chunk_chars``, repeating ``overlap_sentences``.

    A chunk that is already ``paragraph_fill`` of the target ends at a paragraph break rather than
    spilling into the next paragraph (1.0: paragraphs are ignored). Each chunk is
    ``text[start:end]``; together the chunks cover every sentence of the text.
    """
    if chunk_chars < 1:
        raise ValueError("chunk_chars must be positive")
    if overlap_sentences < 0:
        raise ValueError("overlap_sentences must not be negative")
    sentences = split_sentences(text, max_chars=chunk_chars)
    chunks: list[Chunk] = []
    i = 0
    while i < len(sentences):
        j = i + 1
        while j < len(sentences) and sentences[j][1] - sentences[i][0] <= chunk_chars:
            filled = sentences[j - 1][1] - sentences[i][0] >= paragraph_fill * chunk_chars
            if filled and "\n\n" in text[sentences[j - 1][1] : sentences[j][0]]:
                break
            j += 1
        start, end = sentences[i][0], sentences[j - 1][1]
        body = text[start:end]
        chunks.append(
            Chunk(
                id=content_hash(f"{article_id}:{start}:{end}"),
                article_id=article_id,
                ordinal=len(chunks),
                start=start,
                end=end,
                text=body,
            )
        )
        if j >= len(sentences):
            break
        # Step forward, keeping an overlap but always advancing at least one sentence.
        i = max(i + 1, j - overlap_sentences)
    return chunks
