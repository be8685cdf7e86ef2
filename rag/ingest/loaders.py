"""Files to :class:`~rag.types.Document` s: one per article, cleaned, with the metadata found.

A file that cannot be ingested raises :class:`~rag.errors.SkipFile` with a short reason; no other
exception escapes for a bad file (parser errors are wrapped), so an ingest can skip it and go on.
"""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.errors import InputError, SkipFile
from rag.ingest.boilerplate import Line
from rag.ingest.cleaning import Cleaned, clean_article, clean_lines, normalize_chars
from rag.ingest.decoding import decode_bytes
from rag.ingest.htmlclean import clean_html, declared_charset
from rag.ingest.metadata import parse_date, site_from_url
from rag.settings import Settings
from rag.types import Document, PageSpan, Removal

__all__ = ["SUPPORTED_SUFFIXES", "inspect_file", "load_file"]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".json", ".jsonl"}
)
_MIB = 1024 * 1024
# A .docx is a zip: refuse one whose directory promises far more than any document needs.
DOCX_MAX_UNPACKED = 50 * _MIB
DOCX_MAX_RATIO = 20
DOCX_MAX_MEMBERS = 5000
_LOOKS_HTML = re.compile(r"^\s*(?:<!doctype html|<html\b)", re.I)
_HAS_TAGS = re.compile(r"<(?:p|div|br|span|a|h[1-6]|article|body|html|li)\b[^>]*>", re.I)
# PDF text has no blank lines: a short first line before a capitalised one is set apart as a
# heading, so the title rule of the cleaner can see it.
_PDF_TITLE = re.compile(r"\A([^\n]{1,120}[^\n.,;:])\n(?=[A-Z0-9\"“‘])")
_TEXT_KEYS = ("text", "content", "body", "article", "full_text", "maintext")
_DATE_KEYS = ("date", "published", "published_at", "publish_date", "pub_date", "datePublished")
_URL_KEYS = ("url", "link", "source_url", "canonical_url")
_ID_KEYS = ("id", "_id", "doc_id", "uid")

logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every odd object


def _document(cleaned: Cleaned, source: str, fallback_title: str, **meta: Any) -> Document:
    if not cleaned.text.strip():
        raise SkipFile("no text left after cleaning")
    url = meta.get("url") or cleaned.extra.get("url") or None
    return Document(
        text=cleaned.text,
        title=meta.get("title") or cleaned.title or fallback_title,
        source=source,
        date=meta.get("date") or cleaned.date,
        author=meta.get("author") or cleaned.author,
        url=url,
        site=meta.get("site") or cleaned.extra.get("site") or site_from_url(url),
        removed=tuple(cleaned.removals),
        pages=tuple(meta.get("pages") or ()),
    )


def _load_text(path: Path, data: bytes, settings: Settings) -> list[Document]:
    text = decode_bytes(data)
    if _LOOKS_HTML.match(text[:1000]):  # a saved page with the wrong extension
        cleaned, meta = clean_html(text, keep_comments=settings.keep_comments)
        return [_document(cleaned, str(path), path.stem, **meta)]
    cleaned = clean_article(
        text, keep_comments=settings.keep_comments, markdown=path.suffix.lower() == ".md"
    )
    return [_document(cleaned, str(path), path.stem)]


def _load_html(path: Path, data: bytes, settings: Settings) -> list[Document]:
    text = decode_bytes(data, declared_charset(data))
    cleaned, meta = clean_html(text, keep_comments=settings.keep_comments)
    return [_document(cleaned, str(path), path.stem, **meta)]


def _json_records(path: Path, text: str) -> list[tuple[str, Any]]:
    """(index, record) pairs of a .json or .jsonl file; malformed JSONL lines are skipped."""
    if path.suffix.lower() == ".jsonl":
        records = []
        for i, line in enumerate(ln for ln in text.split("\n") if ln.strip()):
            try:
                records.append((str(i), json.loads(line)))
            except ValueError:
                continue
        if not records:
            raise SkipFile("no valid JSON lines")
        return records
    try:
        value = json.loads(text)
    except ValueError as e:
        raise SkipFile(f"malformed JSON: {str(e).splitlines()[0][:80]}") from None
    if isinstance(value, dict) and not any(isinstance(value.get(k), str) for k in _TEXT_KEYS):
        for key in ("articles", "records", "documents", "items", "data", "posts", "results"):
            if isinstance(value.get(key), list):
                value = value[key]
                break
    if isinstance(value, dict):
        return [("0", value)]
    if isinstance(value, list):
        return [(str(i), v) for i, v in enumerate(value)]
    raise SkipFile("JSON holds no article records")


def _field(record: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = record.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if isinstance(v, str | int))
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return normalize_chars(str(value)).strip()
    return None


def _record_document(
    path: Path, key: str, record: dict[str, Any], settings: Settings
) -> Document | None:
    raw = _field(record, _TEXT_KEYS)
    if not raw:
        return None
    title = _field(record, ("title", "headline", "name"))
    if _HAS_TAGS.search(raw):
        cleaned, meta = clean_html(raw, keep_comments=settings.keep_comments)
    else:
        # A record's own title wins; a short first line is only taken as title when it is that.
        cleaned = clean_article(raw, keep_comments=settings.keep_comments, find_title=not title)
        meta = {}
        first, _, rest = cleaned.text.partition("\n\n")
        if title and rest and first.strip().casefold() == title.casefold():
            cleaned.removals.insert(0, Removal(first, "title"))
            cleaned.text = rest
    if not cleaned.text.strip():
        return None
    rid = _field(record, _ID_KEYS)
    url = _field(record, _URL_KEYS) or meta.get("url")
    return _document(
        cleaned,
        f"{path}#{rid if rid and len(rid) <= 100 else key}",
        f"{path.stem} #{key}",
        title=title or meta.get("title"),
        date=parse_date(_field(record, _DATE_KEYS)) or meta.get("date"),
        author=_field(record, ("author", "authors", "byline", "creator")) or meta.get("author"),
        url=url,
        site=_field(record, ("site", "site_name", "source")) or meta.get("site"),
    )


def _load_json(path: Path, data: bytes, settings: Settings) -> list[Document]:
    records = _json_records(path, decode_bytes(data))
    docs = []
    for key, record in records:
        if isinstance(record, dict):
            doc = _record_document(path, key, record, settings)
            if doc is not None:
                docs.append(doc)
    if not docs:
        raise SkipFile(f"none of its {len(records)} records has article text")
    return docs


def _load_pdf(path: Path, data: bytes, settings: Settings) -> list[Document]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            opened = bool(reader.decrypt(""))
        except Exception:  # noqa: BLE001 - e.g. AES without the cryptography package
            opened = False
        if not opened:
            raise SkipFile("encrypted PDF: it needs a password")
    pieces: list[tuple[int, Cleaned]] = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            raw = page.extract_text() or ""
        except Exception:  # noqa: BLE001 - one broken page must not lose the others
            continue
        if not pieces:
            raw = _PDF_TITLE.sub(r"\1\n\n", raw.lstrip(), count=1)
        cleaned = clean_article(raw, keep_comments=settings.keep_comments, pdf=True,
                                find_title=not pieces)  # fmt: skip
        if cleaned.text.strip():
            pieces.append((number, cleaned))
    if not pieces:
        raise SkipFile("PDF has no text layer (scanned or image-only?): run OCR on it first")
    # Pages are cleaned one by one and joined, so every span is an offset into the final text.
    spans: list[PageSpan] = []
    parts: list[str] = []
    removals: list[Removal] = []
    pos = 0
    for number, cleaned in pieces:
        if parts:
            pos += 2
        spans.append(PageSpan(pos, pos + len(cleaned.text), number))
        parts.append(cleaned.text)
        pos += len(cleaned.text)
        removals += cleaned.removals
    info = reader.metadata
    title = str(info.title).strip() if info and info.title else None
    author = str(info.author).strip() if info and info.author else None
    first = pieces[0][1]
    joined = Cleaned("\n\n".join(parts), removals, first.title, first.date, first.author)
    return [_document(joined, str(path), path.stem, title=title, author=author, pages=spans)]


def _check_zip(path: Path, size: int) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise SkipFile("malformed .docx: not a readable zip archive") from None
    unpacked = sum(i.file_size for i in infos)
    if (
        len(infos) > DOCX_MAX_MEMBERS
        or unpacked > DOCX_MAX_UNPACKED
        or (unpacked > DOCX_MAX_RATIO * size and unpacked > 10 * _MIB)
    ):
        raise SkipFile(
            f"suspicious .docx (zip bomb?): {size / _MIB:.1f} MB unpacks to "
            f"{unpacked / _MIB:.0f} MB in {len(infos)} parts"
        )


def _load_docx(path: Path, data: bytes, settings: Settings) -> list[Document]:
    _check_zip(path, len(data))
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    lines: list[Line] = []
    removals: list[Removal] = []
    title = (document.core_properties.title or "").strip() or None
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            texts = [" | ".join(dict.fromkeys(c.text.strip() for c in row.cells)) for row in
                     block.rows]  # fmt: skip
        else:
            style = (block.style.name if block.style is not None else "") or ""
            if style.lower() == "title" and block.text.strip():
                title = title or block.text.strip()
                removals.append(Removal(block.text.strip(), "title"))
                continue
            texts = block.text.split("\n")
        for text in texts:
            lines += [Line(normalize_chars(text).strip()), Line("")]
    cleaned = clean_lines(lines, keep_comments=settings.keep_comments, join_lines=False,
                          find_title=title is None)  # fmt: skip
    cleaned.removals = removals + cleaned.removals
    return [_document(cleaned, str(path), path.stem, title=title)]


_LOADERS: dict[str, Callable[[Path, bytes, Settings], list[Document]]] = {
    ".txt": _load_text,
    ".md": _load_text,
    ".html": _load_html,
    ".htm": _load_html,
    ".json": _load_json,
    ".jsonl": _load_json,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
}


def load_file(path: Path, settings: Settings) -> list[Document]:
    """The articles in one file: one Document, or one per record of a .json/.jsonl collection.

    Raises :class:`InputError` if ``path`` is not a file, :class:`SkipFile` (with a short reason
    for the ingest summary) for any file that cannot be ingested.
    """
    path = Path(path)
    return parse_file(path, read_file_bytes(path, settings), settings)


def read_file_bytes(path: Path, settings: Settings) -> bytes:
    """The bytes of a file to ingest, checked for type and size (the half of :func:`load_file`
    that needs the file system; a Ray ingest does it on the driver and parses on the workers)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise SkipFile(f"unsupported file type {suffix or '(no extension)'!r}")
    limit = int(settings.max_file_mb * _MIB)
    try:
        size = path.stat().st_size
        if size > limit:
            raise SkipFile(_too_big(size, settings))
        with path.open("rb") as f:
            data = f.read(limit + 1)  # the file may have grown since stat()
    except OSError as e:
        raise SkipFile(f"cannot read file: {e.strerror or e}") from None
    if len(data) > limit:
        raise SkipFile(_too_big(len(data), settings))
    return data


def parse_file(path: Path, data: bytes, settings: Settings) -> list[Document]:
    """The articles in ``data``, the bytes of the file ``path`` (named by its suffix; sources are
    named by its path). Raises :class:`SkipFile` when nothing can be ingested from it."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise SkipFile(f"unsupported file type {suffix or '(no extension)'!r}")
    if not data.strip():
        raise SkipFile("empty file")
    try:
        docs = _LOADERS[suffix](path, data, settings)
    except (SkipFile, InputError):
        raise
    except (MemoryError, RecursionError):
        raise SkipFile(f"{suffix[1:]} file too complex to parse") from None
    except Exception as e:  # noqa: BLE001 - a parser's failure on a bad file is a skip
        raise SkipFile(f"malformed {suffix[1:]} file ({type(e).__name__}: {_short(e)})") from None
    if not docs:
        raise SkipFile("no text left after cleaning")
    return docs


def _too_big(size: int, settings: Settings) -> str:
    return (
        f"file is {size / _MIB:.1f} MB, over the {settings.max_file_mb:g} MB limit "
        "(set RAG_MAX_FILE_MB to raise it)"
    )


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:80] if text else "no detail"


def inspect_file(path: Path, settings: Settings) -> list[dict[str, Any]]:
    """What ``rag inspect FILE --json`` shows: per article its metadata, text and removals."""
    out = []
    for doc in load_file(path, settings):
        item: dict[str, Any] = {
            "title": doc.title,
            "date": doc.date,
            "author": doc.author,
            "url": doc.url,
            "text": doc.text,
            "removed": [{"text": r.text, "reason": r.reason} for r in doc.removed],
        }
        if doc.site:
            item["site"] = doc.site
        if doc.pages:
            item["pages"] = [{"start": p.start, "end": p.end, "page": p.page} for p in doc.pages]
        out.append(item)
    return out
