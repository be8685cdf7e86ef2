"""The rows of the local index in one SQLite file: articles, sources, passages, near-duplicate
groups and their candidate keys, the live segments and their deletions, and the commit record.

SQLite is the commit point. The writer keeps one transaction open for a whole session of
changes; ``COMMIT`` publishes the rows together with the list of live segments (whose files are
already written and synced), so a crash anywhere leaves the previous commit. The file is in WAL
mode: a reader keeps one read transaction open per view and sees exactly that commit, however
many commits land meanwhile, and never blocks the writer.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.errors import CorruptIndex
from rag.store.folder import fsync_dir, fsync_file
from rag.types import Article, PageSpan

__all__ = ["ARTICLE_COLUMNS", "FORMAT", "SCHEMA", "article_from_row", "open_reader",
           "open_writer", "read_meta"]  # fmt: skip

FORMAT = 2  # format 1: one whole snapshot folder per commit (see rag.store.upgrade)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    num INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, source TEXT NOT NULL, title TEXT NOT NULL,
    text TEXT NOT NULL, date TEXT, author TEXT, url TEXT, site TEXT, group_id TEXT, pages TEXT,
    bands BLOB, added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_group ON articles(group_id) WHERE group_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS sources (source TEXT PRIMARY KEY, article_id TEXT NOT NULL, root TEXT);
CREATE INDEX IF NOT EXISTS sources_article ON sources(article_id);
CREATE INDEX IF NOT EXISTS sources_root ON sources(root) WHERE root IS NOT NULL;
CREATE TABLE IF NOT EXISTS chunks (
    pid INTEGER PRIMARY KEY, id TEXT NOT NULL, article_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, embed_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id, ordinal);
CREATE INDEX IF NOT EXISTS chunks_embed ON chunks(embed_hash);
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lsh (
    key INTEGER NOT NULL, art INTEGER NOT NULL, PRIMARY KEY (key, art)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments (
    name TEXT PRIMARY KEY, docs INTEGER NOT NULL, min_id INTEGER NOT NULL,
    max_id INTEGER NOT NULL, vectors TEXT NOT NULL, files TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deleted (pid INTEGER PRIMARY KEY);
"""
# ``groups`` has one row per near-duplicate group (members: articles.group_id); it is where
# facts about a group as a whole are kept. ``lsh`` files each article under its MinHash band
# keys (rag.text.minhash), ``articles.bands`` holds the same keys to delete them again.
# ``deleted`` names passages removed from segments that still hold them (until a merge drops
# them). ``meta``: format, model_id, dimension, generation, next_pid, next_segment, updated,
# articles, passages, k1, b, previous_segments.

ARTICLE_COLUMNS = "id, source, title, text, date, author, url, site, group_id, pages"


def _connect(path: Path, uri: str) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as e:
        raise CorruptIndex(f"metadata {path} cannot be opened ({e})") from e
    db.row_factory = sqlite3.Row
    return db


def _create(path: Path) -> None:
    """A new rows file with its schema, put in place whole: a process killed while making it
    leaves a stray temporary file (collected later), never a rows file without tables."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")  # recorded in the file: readers never block a writer
        db.executescript(SCHEMA)
    finally:
        db.close()
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def open_writer(path: Path) -> sqlite3.Connection:
    """The writer's connection (creating the file and schema if needed), in WAL mode and syncing
    every commit. Call it holding the writer lock."""
    if not path.exists():
        _create(path)
    db = _connect(path, f"file:{path}")
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
    except sqlite3.DatabaseError as e:
        db.close()
        raise CorruptIndex(f"metadata {path} is unreadable ({e})") from e
    return db


def open_reader(path: Path) -> sqlite3.Connection:
    """A connection that reads only, inside one read transaction (a fixed commit) from now on."""
    if not path.is_file():
        raise CorruptIndex(f"metadata {path} is missing")
    db = _connect(path, f"file:{path}")
    try:
        db.execute("PRAGMA query_only=ON")
        db.execute("BEGIN")
        db.execute("SELECT count(*) FROM meta").fetchone()  # the read transaction starts here
    except sqlite3.DatabaseError as e:
        db.close()
        raise CorruptIndex(f"metadata {path} is unreadable ({e})") from e
    return db


def read_meta(db: sqlite3.Connection) -> dict[str, str]:
    try:
        return {r[0]: r[1] for r in db.execute("SELECT key, value FROM meta")}
    except sqlite3.DatabaseError as e:
        raise CorruptIndex(f"metadata is unreadable ({e})") from e


def meta_int(meta: dict[str, str], key: str, default: int | None = None) -> int:
    try:
        return int(meta[key])
    except KeyError:
        if default is not None:
            return default
        raise CorruptIndex(f"metadata has no {key!r}") from None
    except ValueError as e:
        raise CorruptIndex(f"metadata {key!r} is not a number ({meta[key]!r})") from e


def json_list(meta: dict[str, str], key: str) -> list[Any]:
    try:
        value = json.loads(meta.get(key, "[]"))
    except ValueError as e:
        raise CorruptIndex(f"metadata {key!r} is unreadable ({e})") from e
    if not isinstance(value, list):
        raise CorruptIndex(f"metadata {key!r} is not a list")
    return value


def write_meta(db: sqlite3.Connection, values: dict[str, Any]) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()],
    )


def pages_of(stored: str | None) -> tuple[PageSpan, ...]:
    """PDF page spans as the writer stores them: JSON ``[[start, end, page], ...]`` or NULL."""
    if not stored:
        return ()
    try:
        return tuple(PageSpan(int(a), int(b), int(page)) for a, b, page in json.loads(stored))
    except (TypeError, ValueError):
        return ()  # damaged page data costs the page numbers, not the article


def pages_json(pages: Sequence[PageSpan]) -> str | None:
    return json.dumps([[p.start, p.end, p.page] for p in pages]) if pages else None


def article_from_row(row: sqlite3.Row) -> Article:
    return Article(
        id=row["id"],
        source=row["source"],
        title=row["title"],
        text=row["text"],
        date=row["date"],
        author=row["author"],
        url=row["url"],
        site=row["site"],
        group_id=row["group_id"],
        pages=pages_of(row["pages"]),
    )
