"""One segment: an immutable folder of passages with their vectors and BM25 postings.

    segments/seg-00000042/ ids.npy          the passage ids, ascending (row r holds ids[r])
                           vectors.faiss    FAISS index over the same ids (flat, or trained IVF)
                           lexical/         BM25 postings and per-row terms (rag.store.lexical)

A segment is written once, into a staging folder that is synced and renamed into place before
the commit that names it; it is never changed afterwards. Deletions are kept apart (the
``deleted`` rows of rag.store.rows) until a merge writes the surviving passages into a new
segment. Sizes and checksums of its files are recorded with the commit.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.errors import CorruptIndex
from rag.store import lexical_files
from rag.store.folder import CHECKSUM_ON_OPEN_BYTES, check_files, file_sha256, fsync_dir, fsync_file
from rag.store.lexical import LexicalSegment
from rag.store.vectors import describe, ids_of

__all__ = ["Segment", "SegmentInfo", "load_ids", "segment_name", "write_segment"]

VECTORS, IDS, LEXICAL = "vectors.faiss", "ids.npy", "lexical"


def segment_name(number: int) -> str:
    return f"seg-{number:08d}"


@dataclass(frozen=True)
class SegmentInfo:
    """What the commit records of a segment (a row of the ``segments`` table)."""

    name: str
    docs: int
    min_id: int
    max_id: int
    vectors: str  # "flat" or "ivf<nlist>-sq8 nprobe=<n>"
    files: dict[str, dict[str, Any]]
    created: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SegmentInfo:
        try:
            files = json.loads(row["files"])
            if not isinstance(files, dict):
                raise ValueError("not an object")
            return cls(row["name"], int(row["docs"]), int(row["min_id"]), int(row["max_id"]),
                       str(row["vectors"]), files, float(row["created"]))  # fmt: skip
        except (TypeError, ValueError) as e:
            raise CorruptIndex(f"the record of segment {row['name']} is unreadable ({e})") from e

    def row(self) -> tuple[Any, ...]:
        return (self.name, self.docs, self.min_id, self.max_id, self.vectors,
                json.dumps(self.files, sort_keys=True), self.created)  # fmt: skip


def write_segment(
    root: Path, name: str, ids: np.ndarray, vectors: faiss.Index, lexical: LexicalSegment
) -> SegmentInfo:
    """Write a segment folder ``root/name`` (staged, synced, renamed into place)."""
    if not (len(ids) == vectors.ntotal == lexical.n_docs):
        raise ValueError("ids, vectors and lexical rows must describe the same passages")
    if len(ids) > 1 and not np.all(np.diff(ids) > 0):
        raise ValueError("segment ids must be ascending and distinct")
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        with open(staging / IDS, "wb") as f:
            np.save(f, np.asarray(ids, np.int64), allow_pickle=False)
        faiss.write_index(vectors, str(staging / VECTORS))
        lexical_files.save(lexical, staging / LEXICAL)
        files = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            fsync_file(path)
            files[str(path.relative_to(staging))] = {
                "size": path.stat().st_size,
                "sha256": file_sha256(path),
            }
        fsync_dir(staging / LEXICAL)
        fsync_dir(staging)
        final = root / name
        if final.exists():  # left by a commit that never happened: its name was not taken
            shutil.rmtree(final)
        staging.rename(final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SegmentInfo(
        name=name,
        docs=len(ids),
        min_id=int(ids[0]) if len(ids) else 0,
        max_id=int(ids[-1]) if len(ids) else -1,
        vectors=describe(vectors),
        files=files,
        created=time.time(),
    )


def load_ids(root: Path, info: SegmentInfo, mmap: bool = True) -> np.ndarray:
    """A segment's passage ids (memory-mapped by default), checked against its record."""
    path = root / info.name / IDS
    try:
        ids = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise CorruptIndex(f"segment {info.name}: {IDS} is missing") from None
    except (OSError, ValueError, EOFError) as e:
        raise CorruptIndex(f"segment {info.name}: {IDS} is unreadable ({e})") from e
    if ids.ndim != 1 or ids.dtype != np.int64 or len(ids) != info.docs:
        raise CorruptIndex(f"segment {info.name}: {IDS} does not hold {info.docs} passage ids")
    if len(ids) and (int(ids[0]) != info.min_id or int(ids[-1]) != info.max_id):
        raise CorruptIndex(f"segment {info.name}: its passage ids differ from its record")
    return ids


def load_vectors(path: Path) -> faiss.Index:
    if not path.is_file():
        raise CorruptIndex(f"vector file {path} is missing")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as e:
        raise CorruptIndex(f"vector file {path} is damaged ({str(e).splitlines()[0][:120]})") from e


class Segment:
    """A segment loaded into memory: ids, vectors and BM25 postings, cross-checked."""

    def __init__(
        self, info: SegmentInfo, ids: np.ndarray, vectors: faiss.Index, lexical: LexicalSegment
    ) -> None:
        self.info = info
        self.ids = ids
        self.vectors = vectors
        self.lexical = lexical

    @property
    def name(self) -> str:
        return self.info.name

    @classmethod
    def load(
        cls, root: Path, info: SegmentInfo, checksum_limit: int = CHECKSUM_ON_OPEN_BYTES
    ) -> Segment:
        """Load and cross-check a segment; any damage raises CorruptIndex naming the file."""
        folder = root / info.name
        problems = check_files(folder, info.files, checksum_limit)
        if problems:
            raise CorruptIndex(f"segment {info.name} is damaged ({'; '.join(problems[:3])})")
        ids = load_ids(root, info, mmap=False)
        if len(ids) > 1 and not np.all(np.diff(ids) > 0):
            raise CorruptIndex(f"segment {info.name}: its passage ids are not ascending")
        vectors = load_vectors(folder / VECTORS)
        lexical = lexical_files.load(folder / LEXICAL)
        if not (vectors.ntotal == lexical.n_docs == info.docs):
            raise CorruptIndex(
                f"segment {info.name}: its parts disagree ({vectors.ntotal} vectors, "
                f"{lexical.n_docs} lexical rows, {info.docs} passages)"
            )
        try:
            same = np.array_equal(np.sort(ids_of(vectors)), ids)
        except ValueError:
            same = False
        if not same:
            raise CorruptIndex(f"segment {info.name}: its vectors name other passages")
        return cls(info, ids, vectors, lexical)

    def rows_of(self, pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of ``pids`` held here, their rows)."""
        pids = np.asarray(pids, np.int64)
        if len(self.ids) == 0:
            return np.zeros(len(pids), np.bool_), np.zeros(0, np.int64)
        pos = np.searchsorted(self.ids, pids).clip(max=len(self.ids) - 1)
        found = self.ids[pos] == pids
        return found, pos[found]
