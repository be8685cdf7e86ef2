"""``rag check`` for the local index: every part read in full and cross-checked.

Opening an index checks what is cheap (sizes, the smaller files' checksums, counts); this reads
everything: SQLite's own consistency check, every segment file's SHA-256, that vectors, BM25
rows and passage rows name the same passages, the deletions, the commit record's counts, and
that sources, passages, groups and band keys all point at articles that exist.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from rag.errors import CorruptIndex
from rag.store import lexical_files, rows
from rag.store.folder import IndexFolder
from rag.store.segment import LEXICAL, Segment, SegmentInfo

__all__ = ["check_index"]


def check_index(folder: IndexFolder) -> list[str]:
    """Everything wrong with the committed index (empty: consistent)."""
    try:
        db = rows.open_reader(folder.rows_path)
    except CorruptIndex as e:
        return [str(e)]
    try:
        return _check(folder, db)
    except (sqlite3.DatabaseError, CorruptIndex) as e:
        return [f"metadata is unreadable ({e})"]
    finally:
        db.close()


def _count(db: sqlite3.Connection, sql: str) -> int:
    return int(db.execute(sql).fetchone()[0])


def _check(folder: IndexFolder, db: sqlite3.Connection) -> list[str]:
    problems = [f"metadata: {r[0]}" for r in db.execute("PRAGMA quick_check") if r[0] != "ok"]
    if problems:
        return problems
    meta = rows.read_meta(db)
    if meta.get("format") != str(rows.FORMAT):
        return [f"index format {meta.get('format')!r} is not {rows.FORMAT}"]
    dimension = rows.meta_int(meta, "dimension")
    ids, infos = [], [SegmentInfo.from_row(r) for r in db.execute("SELECT * FROM segments")]
    for info in infos:
        try:
            seg = Segment.load(folder.segments_dir, info, checksum_limit=1 << 62)
        except CorruptIndex as e:
            problems.append(str(e))
            continue
        problems += lexical_files.check_forward(
            seg.lexical, folder.segments_dir / info.name / LEXICAL
        )
        if seg.vectors.d != dimension:
            problems.append(
                f"segment {info.name}: vectors of {seg.vectors.d} dimensions, not {dimension}"
            )
        ids.append(seg.ids)
    if problems:
        return problems
    held = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    if len(np.unique(held)) != len(held):
        problems.append("a passage is held by two segments")
    deleted = np.array([r[0] for r in db.execute("SELECT pid FROM deleted")], np.int64)
    if len(np.setdiff1d(deleted, held)):
        problems.append(f"{len(np.setdiff1d(deleted, held))} deleted passages are in no segment")
    live = np.setdiff1d(held, deleted)
    pids = np.array([r[0] for r in db.execute("SELECT pid FROM chunks ORDER BY pid")], np.int64)
    if len(pids) != len(live):
        problems.append(f"metadata has {len(pids)} passages, the segments {len(live)}")
    elif not np.array_equal(pids, live):
        problems.append("the segments hold other passages than the metadata")
    n_articles = _count(db, "SELECT count(*) FROM articles")
    if (
        rows.meta_int(meta, "passages") != len(pids)
        or rows.meta_int(meta, "articles") != n_articles
    ):
        problems.append("the commit record's counts differ from the rows")
    for what, sql in [
        ("passages belong to no article",
         "SELECT count(*) FROM chunks WHERE article_id NOT IN (SELECT id FROM articles)"),
        ("sources name no article",
         "SELECT count(*) FROM sources WHERE article_id NOT IN (SELECT id FROM articles)"),
        ("articles have no source",
         "SELECT count(*) FROM articles WHERE id NOT IN (SELECT article_id FROM sources)"),
        ("articles have no passages",
         "SELECT count(*) FROM articles WHERE id NOT IN (SELECT article_id FROM chunks)"),
        ("band keys belong to no article",
         "SELECT count(*) FROM lsh WHERE art NOT IN (SELECT num FROM articles)"),
        ("articles are in a group that is not recorded",
         "SELECT count(*) FROM articles WHERE group_id IS NOT NULL "
         "AND group_id NOT IN (SELECT id FROM groups)"),
        ("groups have the wrong size or lack their own article",
         "SELECT count(*) FROM groups g WHERE g.size != (SELECT count(*) FROM articles a "
         "WHERE a.group_id = g.id) OR g.id NOT IN (SELECT id FROM articles WHERE group_id = g.id)"),
    ]:  # fmt: skip
        n = _count(db, sql)
        if n:
            problems.append(f"{n} {what}")
    return problems
