"""The index on disk: committed snapshots switched by an atomic rename, a writer lock, and readers.

Layout of an index folder::

    CURRENT                  {"snapshot": "snap-00000007"}, replaced atomically on each commit
    snapshots/snap-00000007/ manifest.json, meta.sqlite, vectors.faiss, lexical/
    writer.lock              held by the one process that is writing

A commit writes a whole new snapshot folder (fsynced), renames it into place and only then switches
``CURRENT``. A crash at any point leaves the previous snapshot current and intact. Readers load a
snapshot once and never see a partial one; they notice a newer commit through :meth:`IndexReader.refresh`.
Nothing here is pickled: vectors go through ``faiss.write_index``, metadata through SQLite and JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from filelock import FileLock, Timeout

from rag.errors import CorruptIndex, IndexBusy, IndexMissing, InputError, ModelMismatch
from rag.store import lexical_files
from rag.store.lexical import LexicalIndex
from rag.store.vectors import ids_of

FORMAT_VERSION = 1
FIRST_SNAPSHOT = "snap-00000001"

SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
    date TEXT, author TEXT, url TEXT, site TEXT, group_id TEXT, pages TEXT, added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY, article_id TEXT NOT NULL REFERENCES articles(id), root TEXT
);
CREATE INDEX IF NOT EXISTS sources_article ON sources(article_id);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, article_id TEXT NOT NULL REFERENCES articles(id),
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, embed_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE INDEX IF NOT EXISTS chunks_embed ON chunks(embed_hash);
"""

# The articles columns a reader selects and the writer fills (``added_at`` is the writer's alone).
ARTICLE_COLUMNS = "id, source, title, text, date, author, url, site, group_id, pages"


def rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with: rm -r {index_dir} && rag ingest PATH --index {index_dir}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Manifest:
    snapshot: str
    model_id: str
    dimension: int
    articles: int
    chunks: int
    created: float
    files: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, snap_dir: Path) -> Manifest:
        try:
            raw = json.loads((snap_dir / "manifest.json").read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT_VERSION:
                raise CorruptIndex(f"index format {raw.get('format')!r} is not {FORMAT_VERSION}")
            return cls(
                snapshot=snap_dir.name,
                model_id=str(raw["model_id"]),
                dimension=int(raw["dimension"]),
                articles=int(raw["articles"]),
                chunks=int(raw["chunks"]),
                created=float(raw["created"]),
                files=dict(raw["files"]),
            )
        except CorruptIndex:
            raise
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CorruptIndex(f"manifest of {snap_dir} is unreadable ({e})") from e


class IndexStore:
    """Locates an index folder and hands out readers and the single writer lock."""

    def __init__(self, index_dir: Path | str, lock_timeout: float = 10.0) -> None:
        self.dir = Path(index_dir)
        self.lock_timeout = lock_timeout
        if self.dir.exists() and not self.dir.is_dir():
            raise InputError(
                f"the index folder {self.dir} is a file, not a folder; choose another with "
                "--index or RAG_INDEX_DIR"
            )

    @property
    def snapshots_dir(self) -> Path:
        return self.dir / "snapshots"

    def exists(self) -> bool:
        return (self.dir / "CURRENT").is_file()

    def current_snapshot(self) -> Path:
        """The folder of the committed snapshot; raises IndexMissing / CorruptIndex."""
        pointer = self.dir / "CURRENT"
        if not self.dir.exists():
            raise IndexMissing.at(self.dir)
        if not pointer.is_file():
            snaps = (
                {p.name for p in self.snapshots_dir.glob("snap-*")}
                if self.snapshots_dir.is_dir()
                else set()
            )
            # The first commit renames its folder into place before it writes CURRENT: a crash
            # in between leaves exactly that folder, and no index was ever committed.
            if snaps - {FIRST_SNAPSHOT}:
                raise CorruptIndex(f"{pointer} is missing; {rebuild_hint(self.dir)}")
            raise IndexMissing.at(self.dir)
        try:
            name = json.loads(pointer.read_text(encoding="utf-8"))["snapshot"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CorruptIndex(f"{pointer} is unreadable ({e}); {rebuild_hint(self.dir)}") from e
        snap = self.snapshots_dir / str(name)
        if not str(name).startswith("snap-") or not snap.is_dir():
            raise CorruptIndex(
                f"{pointer} names a missing snapshot {name!r}; {rebuild_hint(self.dir)}"
            )
        return snap

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file where the folder should be, no permission, a full disk
            raise InputError(
                f"cannot use {self.dir} as the index folder ({e.strerror or e}); choose another "
                "with --index or RAG_INDEX_DIR"
            ) from e
        lock = FileLock(str(self.dir / "writer.lock"), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout as e:
            raise IndexBusy(
                f"index {self.dir} is busy: another process is writing to it (waited "
                f"{self.lock_timeout:g} s; set RAG_LOCK_TIMEOUT to wait longer)"
            ) from e
        try:
            yield
        finally:
            lock.release()

    def next_snapshot_name(self) -> str:
        numbers = [
            int(p.name[5:]) for p in self.snapshots_dir.glob("snap-*") if p.name[5:].isdigit()
        ]
        return f"snap-{max(numbers, default=0) + 1:08d}"

    def publish(self, staging: Path) -> Path:
        """Rename a fully written staging folder into place and make it current (lock held)."""
        previous = self.current_snapshot().name if self.exists() else None
        final = self.snapshots_dir / self.next_snapshot_name()
        os.replace(staging, final)
        fsync_dir(self.snapshots_dir)
        atomic_write_text(self.dir / "CURRENT", json.dumps({"snapshot": final.name}))
        self.collect_garbage(keep={final.name} | ({previous} if previous else set()))
        return final

    def tidy(self) -> None:
        """Drop what a crashed writer left behind (lock held): staging folders, a snapshot renamed
        into place whose commit never switched CURRENT, snapshots a killed commit did not collect.
        The current snapshot and the one before it stay."""
        for tmp in self.dir.glob(".CURRENT.*.tmp"):  # a pointer update killed before its rename
            tmp.unlink(missing_ok=True)
        if not self.exists():
            return  # nothing committed yet: the first commit collects what lies around
        current = self.current_snapshot().name
        older = sorted(p.name for p in self.snapshots_dir.glob("snap-*") if p.name < current)
        self.collect_garbage(keep={current, *older[-1:]})

    def collect_garbage(self, keep: set[str]) -> None:
        """Drop abandoned staging folders and every snapshot but ``keep`` (lock held).

        ``keep`` is the new current snapshot and the one it replaced (a reader may be loading it
        right now). A folder left by a commit that crashed before switching CURRENT goes too.
        """
        for tmp in self.snapshots_dir.glob("tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        for old in self.snapshots_dir.glob("snap-*"):
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)


def open_metadata(path: Path, readonly: bool) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro&immutable=1" if readonly else f"file:{path}"
    try:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        db.row_factory = sqlite3.Row
        if readonly:
            db.execute("SELECT count(*) FROM articles").fetchone()
        return db
    except sqlite3.DatabaseError as e:
        raise CorruptIndex(f"metadata {path} is unreadable ({e})") from e


def load_vectors(path: Path) -> faiss.Index:
    if not path.is_file():
        raise CorruptIndex(f"vector file {path} is missing")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as e:
        raise CorruptIndex(f"vector file {path} is damaged ({str(e).splitlines()[0][:120]})") from e


def empty_vectors(dimension: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def check_model(manifest: Manifest, model_id: str | None, index_dir: Path) -> None:
    if model_id is not None and manifest.model_id != model_id:
        raise ModelMismatch(
            f"index {index_dir} was built with model {manifest.model_id}, but the configured model is "
            f"{model_id}: set RAG_MODEL to the index's model, or {rebuild_hint(index_dir)}"
        )


# Files up to this size have their checksum verified every time a snapshot is opened (about 0.2 s
# for the largest); bigger ones only their size. ``rag check`` verifies every checksum.
CHECKSUM_ON_OPEN_BYTES = 64 * 1024 * 1024


def check_files(snap: Path, manifest: Manifest, checksum_limit: int) -> list[str]:
    """Files of a snapshot that are missing, resized, or (when at most ``checksum_limit`` bytes)
    whose content differs from what was committed."""
    problems: list[str] = []
    for name, info in sorted(manifest.files.items()):
        path = snap / name
        try:
            size = path.stat().st_size
            if size != info.get("size"):
                problems.append(f"{name}: size {size} != recorded {info.get('size')}")
            elif size <= checksum_limit and file_sha256(path) != info.get("sha256"):
                problems.append(f"{name}: checksum differs from the one recorded at commit")
        except FileNotFoundError:
            problems.append(f"{name}: missing")
        except OSError as e:
            problems.append(f"{name}: unreadable ({e.strerror or e})")
    return problems


def verify_snapshot(snap: Path, checksums: bool = False) -> list[str]:
    """Problems found in a snapshot folder: missing files, sizes, checksums, disagreeing counts."""
    try:
        manifest = Manifest.read(snap)
    except CorruptIndex as e:
        return [str(e)]
    problems = check_files(snap, manifest, checksum_limit=(1 << 62) if checksums else -1)
    if problems:
        return problems
    try:
        db = open_metadata(snap / "meta.sqlite", readonly=True)
        n_articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
        rowids = np.array(
            [r[0] for r in db.execute("SELECT rowid FROM chunks ORDER BY rowid")], np.int64
        )
        orphans = db.execute(
            "SELECT count(*) FROM chunks WHERE article_id NOT IN (SELECT id FROM articles)"
        ).fetchone()[0]
        db.close()
        vectors = load_vectors(snap / "vectors.faiss")
        lexical = lexical_files.load(snap / "lexical")
    except (CorruptIndex, sqlite3.DatabaseError) as e:
        return [str(e)]
    if n_articles != manifest.articles:
        problems.append(f"metadata has {n_articles} articles, manifest {manifest.articles}")
    if len(rowids) != manifest.chunks:
        problems.append(f"metadata has {len(rowids)} chunks, manifest {manifest.chunks}")
    if vectors.ntotal != len(rowids):
        problems.append(f"vector index has {vectors.ntotal} vectors for {len(rowids)} chunks")
    if vectors.d != manifest.dimension:
        problems.append(f"vector dimension {vectors.d} != manifest {manifest.dimension}")
    if len(lexical) != len(rowids):
        problems.append(f"lexical index has {len(lexical)} passages for {len(rowids)} chunks")
    if not problems:
        try:
            vec_ids = np.sort(ids_of(vectors))
        except ValueError as e:
            return [f"vector file: {e}"]
        if not np.array_equal(vec_ids, rowids):
            problems.append("vector ids differ from chunk ids in the metadata")
        if not np.array_equal(np.sort(lexical.ids().astype(np.int64)), rowids):
            problems.append("lexical ids differ from chunk ids in the metadata")
    if orphans:
        problems.append(f"{orphans} chunks belong to no article")
    return problems


def new_staging(store: IndexStore) -> Path:
    store.snapshots_dir.mkdir(parents=True, exist_ok=True)
    staging = store.snapshots_dir / f"tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    return staging


def write_snapshot_files(
    staging: Path,
    db: sqlite3.Connection,
    vectors: faiss.Index,
    lexical: LexicalIndex,
    model_id: str,
) -> None:
    """Write vectors, lexical index and manifest into ``staging`` (metadata already there) and fsync."""
    n_articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    n_chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    db.commit()
    db.close()
    faiss.write_index(vectors, str(staging / "vectors.faiss"))
    lexical_files.save(lexical, staging / "lexical")
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        fsync_file(path)
        files[str(path.relative_to(staging))] = {
            "size": path.stat().st_size,
            "sha256": file_sha256(path),
        }
    manifest = {
        "format": FORMAT_VERSION,
        "model_id": model_id,
        "dimension": vectors.d,
        "articles": n_articles,
        "chunks": n_chunks,
        "created": time.time(),
        "files": files,
    }
    atomic_write_text(staging / "manifest.json", json.dumps(manifest, indent=1))
    for sub in {staging, *(p.parent for p in staging.rglob("*"))}:
        fsync_dir(sub)
