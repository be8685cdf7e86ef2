"""Loading files of every supported kind, and refusing bad ones with a reason (SkipFile)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.errors import InputError, SkipFile
from rag.ingest.loaders import SUPPORTED_SUFFIXES, inspect_file, load_file
from rag.settings import Settings
from rag.types import Document
from tests.pdfs import pdf_bytes as _pdf

FIXTURES = Path(__file__).parent / "fixtures" / "articles"


@pytest.fixture
def cfg() -> Settings:
    return Settings(max_file_mb=2)


def _expected(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").strip().split("\n\n")


def _one(path: Path, cfg: Settings) -> Document:
    docs = load_file(path, cfg)
    assert len(docs) == 1
    return docs[0]


PDF_PAGES = [
    ["Ferry line returns after ten years", "", "The passenger ferry will resume service",
     "next month for the first time in a decade.", "", "1"],
    ["The route once carried more than 900 passengers", "a day, most of them commuters.", "", "2"],
]  # fmt: skip


def test_pdf_pages_cleaned_and_spanned(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "ferry.pdf"
    path.write_bytes(_pdf(PDF_PAGES, info_title="Ferry line returns"))
    doc = _one(path, cfg)
    assert doc.title == "Ferry line returns"
    assert "resume service next month for the first time in a decade." in doc.text
    assert [p.page for p in doc.pages] == [1, 2]
    for span in doc.pages:
        assert 0 <= span.start < span.end <= len(doc.text)
    first, second = doc.pages
    assert "ferry will resume" in doc.text[first.start : first.end]
    assert doc.text[second.start : second.end].startswith("The route once carried")
    assert doc.text[first.end : second.start] == "\n\n"
    assert [r.text for r in doc.removed if r.reason == "page number"] == ["1", "2"]


def test_pdf_title_from_first_line_without_metadata(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "ferry.pdf"
    path.write_bytes(_pdf(PDF_PAGES))
    assert _one(path, cfg).title == "Ferry line returns after ten years"


def test_encrypted_pdf_is_skipped(tmp_path: Path, cfg: Settings) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(_pdf(PDF_PAGES))).pages:
        writer.add_page(page)
    writer.encrypt("secret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as f:
        writer.write(f)
    with pytest.raises(SkipFile, match="encrypted"):
        load_file(path, cfg)


def test_image_only_pdf_is_skipped(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(_pdf([[]]))
    with pytest.raises(SkipFile, match="no text layer"):
        load_file(path, cfg)


def test_truncated_pdf_is_skipped(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(_pdf(PDF_PAGES)[:200])
    with pytest.raises(SkipFile):
        load_file(path, cfg)


# --- docx ------------------------------------------------------------------------------------


def test_docx_paragraphs_and_title(tmp_path: Path, cfg: Settings) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Bridge toll rises", style="Title")
    document.add_paragraph("By Dana Whitfield")
    document.add_paragraph("The toll on the bridge will rise to $4 in January.")
    document.add_paragraph("Commuters called the increase unfair.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Old toll"
    table.rows[0].cells[1].text = "$3"
    path = tmp_path / "toll.docx"
    document.save(str(path))
    doc = _one(path, cfg)
    assert doc.title == "Bridge toll rises"
    assert doc.author == "Dana Whitfield"
    assert doc.text.split("\n\n") == [
        "The toll on the bridge will rise to $4 in January.",
        "Commuters called the increase unfair.",
        "Old toll | $3",
    ]


def test_zip_bomb_docx_is_skipped_before_extraction(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(80):  # 80 MB of zeros, well under 1 MB on disk
                member.write(chunk)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(SkipFile, match="zip bomb"):
        load_file(path, cfg)


def test_docx_that_is_not_a_zip_is_skipped(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "fake.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive at all")
    with pytest.raises(SkipFile, match="malformed"):
        load_file(path, cfg)


# --- text, markdown, html, json ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("blog_page.txt", "blog_page.expected.txt"),
        ("blog_page.html", "blog_page.expected.txt"),
        ("blog_numbered.txt", "blog_numbered.expected.txt"),
        ("mangled.txt", "mangled.expected.txt"),
        ("river_notes.md", "river_notes.expected.txt"),
        ("hard_wrapped.txt", "hard_wrapped.expected.txt"),
    ],
)
def test_every_body_paragraph_is_kept(name: str, expected: str, cfg: Settings) -> None:
    doc = _one(FIXTURES / name, cfg)
    paragraphs = doc.text.split("\n\n")
    for paragraph in _expected(expected):
        assert paragraph in paragraphs
    assert "ReplyDelete" not in doc.text and "cookies" not in doc.text
    assert all(r.reason for r in doc.removed)


def test_html_page_metadata_and_removals(cfg: Settings) -> None:
    doc = _one(FIXTURES / "blog_page.html", cfg)
    assert doc.text.split("\n\n") == _expected("blog_page.expected.txt")
    assert doc.title == "Inspectors Share a Lane at Puerto Claro"
    assert doc.date == "2014-11-08"
    assert doc.author == "Maria Ortega"
    assert doc.url == "https://borderwatch.example/2014/11/shared-lane.html"
    assert doc.site == "Border Watch"
    reasons = {r.reason: r.text for r in doc.removed}
    assert "Archive" in reasons["navigation"]
    assert "We use cookies" in reasons["cookie notice"]
    assert "ReplyDelete" in reasons["comments"]
    assert "All rights reserved" in reasons["footer"]
    assert "Popular posts" in reasons["sidebar"]


def test_html_never_keeps_scripts_styles_iframes_or_handlers(cfg: Settings) -> None:
    doc = _one(FIXTURES / "blog_page.html", cfg)
    everything = doc.text + "".join(r.text for r in doc.removed) + doc.title
    for marker in ("INJECTED_SCRIPT_TEXT", "STYLE_TEXT", "INLINE_BODY_SCRIPT", "LATE_SCRIPT_TEXT",
                   "IFRAME_FALLBACK_TEXT", "NOSCRIPT_TEXT", "ONLOAD_HANDLER", "onclick",
                   "<script", "document.cookie", "alert("):  # fmt: skip
        assert marker not in everything


def test_html_falls_back_to_stdlib_text_when_trafilatura_finds_nothing(
    tmp_path: Path, cfg: Settings
) -> None:
    path = tmp_path / "tiny.html"
    path.write_text(
        "<html><head><title>Tiny</title><script>SCRIPT_X()</script></head>"
        "<body><nav>Home | About | Contact</nav><p>One short line.</p></body></html>"
    )
    doc = _one(path, cfg)
    assert doc.title == "Tiny"
    assert "One short line." in doc.text
    assert "SCRIPT_X" not in doc.text and "About" not in doc.text


def test_html_declared_charset_is_honoured(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "latin.html"
    body = "<p>Señor Ibáñez said the ferry would return next month, after ten years.</p>"
    path.write_bytes(
        f'<html><head><meta charset="iso-8859-1"><title>Ferry</title></head><body>{body}'
        "</body></html>".encode("latin-1")
    )
    assert "Señor Ibáñez" in _one(path, cfg).text


def test_two_versions_of_a_story_both_load(cfg: Settings) -> None:
    long = _one(FIXTURES / "story_long.txt", cfg)
    short = _one(FIXTURES / "story_short.txt", cfg)
    assert long.title == "Ferry line returns after ten years"
    assert short.title == "Ferry between Puerto Claro and San Isidro to resume"
    assert len(long.text.split("\n\n")) == 8 and len(short.text.split("\n\n")) == 4
    assert long.text.endswith("Dana Whitfield covers the river ports for the Delta Courier.")
    shared = "The route, which closed in 2004 after the ferry operator went bankrupt"
    assert shared in long.text and shared in short.text


def test_jsonl_collection(cfg: Settings) -> None:
    path = FIXTURES / "collection.jsonl"
    docs = load_file(path, cfg)
    assert [d.source for d in docs] == [f"{path}#a1", f"{path}#2"]  # the record without text
    first, third = docs
    assert first.title == "Bridge toll rises"
    assert first.date == "2013-11-04"
    assert first.author == "Dana Whitfield"
    assert first.url == "https://courier.example/bridge-toll"
    assert first.site == "courier.example"
    assert first.text.split("\n\n")[1] == "Commuters called the increase unfair."
    assert third.date == "2013-11-05"
    assert third.author == "Ana Ruiz, Tom Vidal"


def test_json_list_and_malformed_lines(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"articles": [{"title": "A", "text": "Alpha body text."},
                                             {"title": "B", "text": ""}]}))  # fmt: skip
    docs = load_file(path, cfg)
    assert [(d.title, d.text, d.source) for d in docs] == [("A", "Alpha body text.", f"{path}#0")]
    lines = tmp_path / "mixed.jsonl"
    lines.write_text('{"text": "Good record."}\n{not json\n\n[1, 2]\n')
    assert [d.text for d in load_file(lines, cfg)] == ["Good record."]
    bad = tmp_path / "bad.json"
    bad.write_text("{broken")
    with pytest.raises(SkipFile, match="malformed JSON"):
        load_file(bad, cfg)
    none = tmp_path / "none.jsonl"
    none.write_text('{"title": "no text"}\n')
    with pytest.raises(SkipFile, match="records"):
        load_file(none, cfg)


def test_inspect_file_shape(cfg: Settings) -> None:
    items = inspect_file(FIXTURES / "blog_page.html", cfg)
    assert len(items) == 1
    item = items[0]
    assert {"title", "date", "author", "url", "text", "removed", "site"} <= set(item)
    assert all(set(r) == {"text", "reason"} for r in item["removed"])
    json.dumps(items)  # what `rag inspect --json` prints


# --- skips and robustness ----------------------------------------------------------------------


def test_size_limit_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    with path.open("wb") as f:
        f.truncate(3 * 1024 * 1024)  # sparse: large on paper, never read
    with pytest.raises(SkipFile) as info:
        load_file(path, Settings(max_file_mb=1))
    message = str(info.value)
    assert "3.0 MB" in message and "1 MB" in message and "RAG_MAX_FILE_MB" in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"  \n\n \t ", "empty"),
        (b"\x00\x01\x02\x03binary\x00\x00\xff\xfe" * 50, "binary"),
        (bytes(range(256)) * 20, "binary|decode"),
        (b"\x81\x8d\x8f\x90\x9d" * 100, "decode"),
        (b"Pages - Menu\n\nHome\n\nRead More\n", "no text"),
    ],
)
def test_unusable_text_files_are_skipped(
    tmp_path: Path, cfg: Settings, content: bytes, reason: str
) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(content)
    with pytest.raises(SkipFile, match=reason):
        load_file(path, cfg)


def test_unsupported_suffix_and_missing_path(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff")
    with pytest.raises(SkipFile, match="unsupported"):
        load_file(path, cfg)
    with pytest.raises(InputError):
        load_file(tmp_path / "missing.txt", cfg)


def test_encodings(tmp_path: Path, cfg: Settings) -> None:
    text = "Título\n\nEl señor Ibáñez dijo que el ferry volverá el mes próximo."
    for name, data in [
        ("bom.txt", b"\xef\xbb\xbf" + text.encode("utf-8")),
        ("utf16.txt", text.encode("utf-16")),
        ("cp1252.txt", text.encode("cp1252")),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        doc = _one(path, cfg)
        assert doc.title == "Título" and doc.text == text.split("\n\n")[1], name


def test_nul_bytes_surrogates_and_huge_lines_do_not_crash(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "odd.txt"
    path.write_bytes(b"Title\n\nSome\x00 text with a NUL.\n\n" + b"y" * 100_000 + b"\n")
    doc = _one(path, cfg)
    assert "\x00" not in doc.text and "Some text with a NUL." in doc.text
    records = tmp_path / "odd.jsonl"
    records.write_text('{"text": "lone \\ud800 surrogate and a pair \\ud83d\\ude00"}\n')
    (doc,) = load_file(records, cfg)
    assert doc.text == "lone surrogate and a pair 😀"
    wide = tmp_path / "wide.html"
    wide.write_text("<p>" + "z" * 100_000 + "</p>")
    assert len(_one(wide, cfg).text) == 100_000


def test_a_copy_with_another_suffix_is_read_by_content(tmp_path: Path, cfg: Settings) -> None:
    path = tmp_path / "page.txt"
    shutil.copy(FIXTURES / "blog_page.html", path)
    doc = _one(path, cfg)
    assert doc.title == "Inspectors Share a Lane at Puerto Claro"
    assert "INJECTED_SCRIPT_TEXT" not in doc.text


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.binary(max_size=2000), suffix=st.sampled_from(sorted(SUPPORTED_SUFFIXES)))
def test_random_bytes_give_documents_or_skipfile(
    tmp_path: Path, cfg: Settings, data: bytes, suffix: str
) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        docs = load_file(path, cfg)
    except SkipFile as e:
        assert str(e)
        return
    assert docs and all(d.text.strip() and d.title for d in docs)


_TEXTISH = st.lists(
    st.sampled_from(
        ["ab", "Word", " ", "_", "\n", "\n\n", "\t", "<", ">", "/", '"', "'", "{", "}", "[", "]",
         ":", ",", ".", "#", "*", "-", "<p>", "</p>", "<script>", "\x00", "é", "\ud800", "ReplyDelete",
         '{"text": "', '"}', "1. ", "  ", "Posted by X at 10:05", "12 comments:", "http://a.b/c_d"]
    ),
    max_size=80,
).map("".join)  # fmt: skip


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=_TEXTISH, suffix=st.sampled_from(sorted(SUPPORTED_SUFFIXES)))
def test_random_text_gives_documents_or_skipfile(
    tmp_path: Path, cfg: Settings, text: str, suffix: str
) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        docs = load_file(path, cfg)
    except SkipFile as e:
        assert str(e)
        return
    assert docs and all(d.text.strip() and d.title for d in docs)


def test_control_share_counts_exactly_the_unicode_control_characters() -> None:
    import unicodedata

    from rag.ingest.decoding import _control_share

    def reference(text: str) -> float:
        bad = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f")
        return bad / len(text)

    every = "".join(map(chr, range(0x3000))) + "\U0001f600\ufeff\u200b"
    assert _control_share(every) == reference(every)
    for c in every:
        assert _control_share(c + "ab") == reference(c + "ab"), hex(ord(c))
    assert _control_share("") == 0.0
