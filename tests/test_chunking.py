"""Sentence splitting and chunking: offsets, coverage, overlap and determinism."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest.chunking import chunk_article
from rag.text.sentences import split_sentences

TEXT = (
    "Mexican federal police Cmdr. Armando Trevino spoke Tuesday in Nogales. U.S. Border Patrol agents "
    "listened. \u201cWe are fighting a common enemy,\u201d he said! Is it working? Officials think so.\n\n"
    "A new paragraph starts here. It has 2 sentences."
)


def test_sentences_respect_abbreviations_and_paragraphs() -> None:
    got = [TEXT[s:e] for s, e in split_sentences(TEXT)]
    assert got == [
        "Mexican federal police Cmdr. Armando Trevino spoke Tuesday in Nogales.",
        "U.S. Border Patrol agents listened.",
        "\u201cWe are fighting a common enemy,\u201d he said!",
        "Is it working?",
        "Officials think so.",
        "A new paragraph starts here.",
        "It has 2 sentences.",
    ]


def test_long_line_is_cut_at_spaces() -> None:
    text = "word " * 30_000  # a 150k-character line with no sentence end
    spans = split_sentences(text, max_chars=500)
    assert all(e - s <= 500 for s, e in spans)
    assert " ".join(text[s:e] for s, e in spans) == text.strip()


def test_chunks_are_slices_with_overlap() -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7}." for i in range(60)]
    text = " ".join(sentences)
    chunks = chunk_article("a1", text, chunk_chars=200, overlap_sentences=1)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert len(c.text) <= 200
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        # The last sentence of a chunk opens the next one.
        last = split_sentences(prev.text)[-1]
        assert nxt.text.startswith(prev.text[last[0] : last[1]])
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="chunk_chars"):
        chunk_article("a", "Text.", chunk_chars=0)
    with pytest.raises(ValueError, match="overlap"):
        chunk_article("a", "Text.", overlap_sentences=-1)


def test_empty_text_gives_no_chunks() -> None:
    assert chunk_article("a", "") == []
    assert chunk_article("a", " \n\n ") == []


words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12
)
texts = st.lists(
    st.tuples(words, st.sampled_from([" ", ". ", "! ", "? ", "\n", "\n\n", ", ", ".\u201d "])),
    max_size=80,
).map(lambda parts: "".join(w + sep for w, sep in parts))


@settings(max_examples=300, deadline=None)
@given(text=texts, size=st.integers(min_value=20, max_value=400), overlap=st.integers(0, 3))
def test_chunks_cover_text_and_are_deterministic(text: str, size: int, overlap: int) -> None:
    chunks = chunk_article("x", text, chunk_chars=size, overlap_sentences=overlap)
    covered = [False] * len(text)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        for i in range(c.start, c.end):
            covered[i] = True
    # Every non-space character belongs to some chunk.
    for i, ch in enumerate(text):
        if not ch.isspace():
            assert covered[i], (i, ch)
    assert chunk_article("x", text, chunk_chars=size, overlap_sentences=overlap) == chunks


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_sentence_spans_are_ordered_trimmed_slices(text: str) -> None:
    spans = split_sentences(text)
    last_end = 0
    for s, e in spans:
        assert last_end <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        last_end = e
    joined = re.sub(r"\s+", "", "".join(text[s:e] for s, e in spans))
    assert joined == re.sub(r"\s+", "", text)
