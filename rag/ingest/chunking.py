"""Sentence-aware chunking with character offsets into the article text."""

from __future__ import annotations

from rag.text.sentences import split_sentences
from rag.types import Chunk, content_hash


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
