"""Property tests: the cleaner's output hygiene and fixed point, citation offsets through the whole
pipeline, and loaders fed mutated copies of valid files (random bytes are in test_loaders.py)."""

from __future__ import annotations

import io
import re
import tempfile
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from rag.errors import SkipFile
from rag.ingest.cleaning import clean_article, clean_text, normalize_chars
from rag.ingest.loaders import load_file
from rag.settings import Settings
from rag.system import System
from tests.conftest import HashEmbedder
from tests.test_hostile import _page_pdf

_PIECES = [
    "Word", "ab", " ", "\n", "\n\n", "\t", ".", "-", "_", "\x00", "\ud800", "\udfff", "é",
    "e\u0301", "Home", "Share", "1. ", "The ferry resumed service on Monday.", "\u201c", '"',
    "Ã©", "â€™", "\r\n", "\u2028", "inter-", "\u00ad", "\ufeff", "\x85", "\x1b[31m", "\u200b",
]  # fmt: skip
TEXTISH = st.lists(st.sampled_from(_PIECES), max_size=60).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=400), TEXTISH)
# Text a person could have written: no control, surrogate or invisible format characters.
PLAIN_TEXT = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf")), max_size=400),
    TEXTISH.map(lambda s: re.sub("[\x00-\x1f\x7f-\x9f\u00ad\u200b\ufeff\ud800-\udfff]", "", s)),
)
_BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff\ufeff\ufffe\uffff]")


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_cleaned_text_is_nfc_without_control_or_surrogate_characters(raw: str) -> None:
    text, removed = clean_text(raw)
    assert unicodedata.normalize("NFC", text) == text
    assert not _BAD_CHARS.search(text), repr(text)
    assert "\r" not in text and not text.startswith((" ", "\n")) and text == text.strip()
    assert all(not _BAD_CHARS.search(r.text) for r in removed)


@settings(max_examples=300, deadline=None)
@given(PLAIN_TEXT)
@example("SHARE\u2028HOME")  # share links above a lone "HOME" used to end the page header there
def test_cleaning_cleaned_text_changes_nothing(raw: str) -> None:
    # Structural cleaning (furniture, whitespace, paragraphs, punctuation) is idempotent. Character
    # repair is not quite: stripping a space can leave something ftfy reads as mojibake
    # ("\xa0Ķ¬" -> "Ķ¬" -> "ͬ"), so the property holds where repair has nothing left to do.
    # A second pass must not drop a title again (the first pass already did): find_title=False.
    text, _ = clean_text(raw)
    assume(normalize_chars(text) == text)
    assert clean_article(text, find_title=False).text == text


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_character_repair_reaches_a_fixed_point(raw: str) -> None:
    # One pass is not always enough: dropping a soft hyphen or C1 control can complete mojibake
    # ("\xadÂ\x91" -> "Â‘" -> "‘"). A second pass settles it.
    twice = normalize_chars(normalize_chars(raw))
    assert normalize_chars(twice) == twice


# --- citations point into their articles ----------------------------------------------------

_WORDS = ["ferry", "harbour", "Dr.", "U.S.", "council", "bridge", "3.5", "e.g.", "mayor", "storm"]
_SENTENCE = st.builds(
    lambda words, end, quote: (
        (f"\u201c{' '.join(words)}\u201d" if quote else " ".join(words)).capitalize() + end
    ),
    st.lists(st.sampled_from(_WORDS), min_size=2, max_size=14),
    st.sampled_from([".", "!", "?", "...", ".\u201d", ""]),
    st.booleans(),
)
_PARAGRAPH = st.lists(_SENTENCE, min_size=1, max_size=6).map(" ".join)
_ARTICLE = st.tuples(
    st.sampled_from(["Ferry news", "Bridge report", "Storm damage"]),
    st.lists(_PARAGRAPH, min_size=1, max_size=6),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    articles=st.lists(_ARTICLE, min_size=1, max_size=4),
    asked=st.lists(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=6), max_size=4),
    chunk_chars=st.sampled_from([100, 180, 700]),
)
def test_every_citation_slices_its_article_and_lies_in_its_passage(
    articles: list[tuple[str, list[str]]], asked: list[list[str]], chunk_chars: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "articles"
        folder.mkdir()
        for n, (title, paragraphs) in enumerate(articles):
            body = "\n\n".join(paragraphs)
            (folder / f"a{n}.txt").write_text(f"{title} {n}\n\n{body}\n", encoding="utf-8")
        system = System(
            Settings(index_dir=Path(tmp) / "index", chunk_chars=chunk_chars, min_confidence=0.0),
            embedder=HashEmbedder(),
        )
        system.ingest([folder])
        if not system.has_index():
            return  # every file was skipped (e.g. nothing but punctuation left)
        reader = system.reader()
        for words in [*asked, ["ferry", "harbour"]]:
            question = " ".join(words) + "?"
            hits = system.search(question)
            for h in hits:
                assert h.article.text[h.chunk.start : h.chunk.end] == h.chunk.text
            answer = system.ask(question)
            event("answered" if answer.citations else "abstained")
            for c in answer.citations:
                text = reader.article(c.article_id).text
                assert text[c.start : c.end] == c.quote and c.quote.strip()
                assert text[c.passage_start : c.passage_start + len(c.passage)] == c.passage
                offset = c.start - c.passage_start
                assert offset >= 0 and c.end - c.passage_start <= len(c.passage)
                assert c.passage[offset : offset + len(c.quote)] == c.quote


# --- loaders on mutated valid files ----------------------------------------------------------


def _docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Ferry report", level=0)
    for i in range(3):
        document.add_paragraph(f"The harbour ferry ran {i + 2} extra crossings on Monday evening.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Route"
    table.cell(1, 1).text = "Greystone"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


_SEEDS = {
    ".pdf": _page_pdf(b"BT /F1 12 Tf 72 720 Td (The harbour ferry resumed service.) Tj ET"),
    ".docx": _docx_bytes(),
    ".html": b"<html><head><title>Ferry</title><meta name='date' content='2024-05-01'></head>"
    b"<body><article><h1>Ferry back</h1><p>The harbour ferry resumed service on Monday after"
    b" repairs.</p><p>Tickets are refunded.</p></article></body></html>",
    ".json": b'{"articles": [{"title": "Ferry", "text": "The ferry resumed on Monday.", '
    b'"date": "2024-05-01", "url": "https://news.example/f"}]}',
    ".jsonl": b'{"id": 1, "text": "The ferry resumed on Monday."}\n{"id": 2, "body": "Tickets."}\n',
    ".md": b"---\ntitle: Ferry\ndate: 2024-05-01\n---\n# Ferry\n\nThe **ferry** [resumed](x).\n",
    ".txt": b"Ferry back\n\nThe harbour ferry resumed service on Monday after repairs.\n",
}
_MUTATION = st.tuples(
    st.sampled_from(["flip", "cut", "insert", "delete"]),
    st.floats(0, 1, exclude_max=True),
    st.binary(min_size=1, max_size=8),
)


def _mutate(data: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, junk in mutations:
        if not data:
            break
        i = int(where * len(data))
        if kind == "flip":
            data = data[:i] + bytes([data[i] ^ junk[0]]) + data[i + 1 :]
        elif kind == "cut":
            data = data[:i]
        elif kind == "insert":
            data = data[:i] + junk + data[i:]
        else:
            data = data[:i] + data[i + len(junk) :]
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suffix=st.sampled_from(sorted(_SEEDS)), mutations=st.lists(_MUTATION, max_size=4))
def test_mutated_valid_files_give_sound_documents_or_skipfile(
    suffix: str, mutations: list[tuple[str, float, bytes]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"mutant{suffix}"
        path.write_bytes(_mutate(_SEEDS[suffix], mutations))
        try:
            docs = load_file(path, Settings())
        except SkipFile as e:
            assert str(e)
            return
    assert docs
    for d in docs:
        assert d.text.strip() and d.title and not _BAD_CHARS.search(d.text)
        assert d.source.startswith(str(path))
        for span in d.pages:
            assert 0 <= span.start <= span.end <= len(d.text)
