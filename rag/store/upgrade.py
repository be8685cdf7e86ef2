"""The previous index format, converted once on first use.

Release 0.2 wrote a whole snapshot per commit: ``CURRENT`` names ``snapshots/snap-N/`` with
``manifest.json`` (format 1, sizes and SHA-256 of every file), ``meta.sqlite``,
``vectors.faiss`` and ``lexical/``. The conversion checks that snapshot as opening it always
did, writes its passages as one segment (the vector index is kept as it is, trained IVF
included), builds the rows file beside the old one (passage ids stay the same, near-duplicate
groups too, and every article gets its band keys) and renames it into place: that rename is
the moment the folder changes format. A crash before it leaves the old snapshot untouched; the
next open converts again. Anything unreadable is CorruptIndex with the rebuild command.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from rag.errors import CorruptIndex, IndexMissing
from rag.store import lexical_files, rows
from rag.store.folder import (
    CHECKSUM_ON_OPEN_BYTES,
    IndexFolder,
    check_files,
    fsync_dir,
    rebuild_hint,
)
from rag.store.lexical import LexicalSegment
from rag.store.segment import load_vectors, segment_name, write_segment
from rag.store.vectors import ids_of
from rag.text.minhash import band_keys, sketch_texts

__all__ = ["check_v1", "convert"]

_V1_COLUMNS = "id, source, title, text, date, author, url, site, group_id, pages, added_at"


@dataclass
class _V1:
    snap: Path
    manifest: dict[str, object]
    db: sqlite3.Connection
    k1: float
    b: float
    ids: np.ndarray
    vectors: faiss.Index
    lexical: LexicalSegment


def _current(folder: IndexFolder) -> Path:
    pointer, snaps = folder.dir / "CURRENT", folder.dir / "snapshots"
    if not pointer.is_file():
        names = {p.name for p in snaps.glob("snap-*")} if snaps.is_dir() else set()
        # The first commit of that format renamed its folder into place before it wrote
        # CURRENT: a crash in between leaves exactly that folder, and nothing was committed.
        if names - {"snap-00000001"}:
            raise CorruptIndex(f"{pointer} is missing; {rebuild_hint(folder.dir)}")
        raise IndexMissing.at(folder.dir)
    try:
        name = str(json.loads(pointer.read_text(encoding="utf-8"))["snapshot"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CorruptIndex(f"{pointer} is unreadable ({e}); {rebuild_hint(folder.dir)}") from e
    snap = snaps / name
    if not name.startswith("snap-") or not snap.is_dir():
        raise CorruptIndex(
            f"{pointer} names a missing snapshot {name!r}; {rebuild_hint(folder.dir)}"
        )
    return snap


def _read(folder: IndexFolder, checksum_limit: int) -> _V1:
    snap = _current(folder)
    try:
        manifest = json.loads((snap / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != 1:
            raise CorruptIndex(f"index format {manifest.get('format')!r} is not known")
        files = dict(manifest["files"])
        problems = check_files(snap, files, checksum_limit)
        problems += [f"{n}: not in the manifest" for n in ("meta.sqlite", "vectors.faiss")
                     if n not in files]  # fmt: skip
        if problems:
            raise CorruptIndex(f"index snapshot {snap} is damaged ({'; '.join(problems[:3])})")
        db = sqlite3.connect(f"file:{snap / 'meta.sqlite'}?mode=ro&immutable=1", uri=True)
        db.row_factory = sqlite3.Row
        chunk_ids = np.array([r[0] for r in db.execute("SELECT rowid FROM chunks ORDER BY rowid")],
                             np.int64)  # fmt: skip
        k1, b, lexical, ids = lexical_files.load_v1(snap / "lexical")
        vectors = load_vectors(snap / "vectors.faiss")
        vector_ids = np.sort(ids_of(vectors))
    except (OSError, ValueError, KeyError, TypeError, sqlite3.DatabaseError) as e:
        raise CorruptIndex(
            f"index snapshot {snap} is unreadable ({e}); {rebuild_hint(folder.dir)}"
        ) from e
    except CorruptIndex as e:
        raise CorruptIndex(f"{e}; {rebuild_hint(folder.dir)}") from e
    if not (np.array_equal(chunk_ids, ids) and np.array_equal(vector_ids, ids)):
        raise CorruptIndex(
            f"index snapshot {snap} is damaged (vectors, lexical index and metadata name "
            f"different passages); {rebuild_hint(folder.dir)}"
        )
    return _V1(snap, manifest, db, k1, b, ids, vectors, lexical)


def check_v1(folder: IndexFolder) -> list[str]:
    """Problems of an index in the previous format (it is converted on first use)."""
    try:
        _read(folder, checksum_limit=1 << 62).db.close()
    except CorruptIndex as e:
        return [str(e)]
    return []


def convert(folder: IndexFolder) -> None:
    """Convert the previous format in place (hold the writer lock)."""
    old = _read(folder, CHECKSUM_ON_OPEN_BYTES)
    for tmp in folder.dir.glob(f".{folder.rows_path.name}.*"):
        tmp.unlink()  # left by a conversion that was killed
    tmp = folder.dir / f".{folder.rows_path.name}.{uuid.uuid4().hex}"
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")  # recorded in the file: readers never block a writer
        db.executescript(rows.SCHEMA)
        db.execute("BEGIN")
        n_articles = _copy_rows(old.db, db)
        name = segment_name(1)
        info = write_segment(folder.segments_dir, name, old.ids, old.vectors, old.lexical)
        db.execute("INSERT INTO segments VALUES (?,?,?,?,?,?,?)", info.row())
        rows.write_meta(db, {
            "format": str(rows.FORMAT), "model_id": str(old.manifest["model_id"]),
            "dimension": int(old.vectors.d), "generation": 1,
            "next_pid": int(old.ids.max(initial=0)) + 1, "next_segment": 2,
            "articles": n_articles, "passages": len(old.ids), "k1": old.k1, "b": old.b,
            "updated": time.time(), "previous_segments": [], "upgraded_from": old.snap.name,
        })  # fmt: skip
        db.execute("COMMIT")
    finally:
        db.close()
        old.db.close()
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, folder.rows_path)
    fsync_dir(folder.dir)
    folder.collect_garbage({segment_name(1)})


def _copy_rows(src: sqlite3.Connection, dst: sqlite3.Connection) -> int:
    """Articles (with band keys), sources, passages and groups; returns the article count."""
    n = 0
    cursor = src.execute(f"SELECT {_V1_COLUMNS} FROM articles ORDER BY id")
    while batch := cursor.fetchmany(2000):
        sketches = sketch_texts([r["text"] for r in batch])
        usable = [s for s in sketches if len(s.shingles)]
        keys = iter(band_keys(np.stack([s.signature for s in usable])) if usable else [])
        for r, sketch in zip(batch, sketches, strict=True):
            bands = next(keys) if len(sketch.shingles) else None
            num = dst.execute(
                f"INSERT INTO articles ({_V1_COLUMNS}, bands) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (*tuple(r), None if bands is None else bands.tobytes()),
            ).lastrowid
            if bands is not None:
                dst.executemany("INSERT OR IGNORE INTO lsh (key, art) VALUES (?, ?)",
                                [(int(k), num) for k in bands.tolist()])  # fmt: skip
        n += len(batch)
    dst.executemany("INSERT INTO sources (source, article_id, root) VALUES (?,?,?)",
                    src.execute("SELECT source, article_id, root FROM sources"))  # fmt: skip
    dst.executemany(
        'INSERT INTO chunks (pid, id, article_id, ordinal, start, "end", embed_hash) '
        "VALUES (?,?,?,?,?,?,?)",
        src.execute('SELECT rowid, id, article_id, ordinal, start, "end", embed_hash FROM chunks'),
    )
    dst.executemany(
        "INSERT INTO groups (id, size) VALUES (?, ?)",
        src.execute("SELECT group_id, count(*) FROM articles WHERE group_id IS NOT NULL "
                    "GROUP BY group_id"),
    )  # fmt: skip
    return n
