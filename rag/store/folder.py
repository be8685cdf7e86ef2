"""The index folder: where each part lives, the writer lock, and safe writes.

Layout::

    rows.sqlite (+ -wal, -shm)   articles, sources, passages, groups, the live segments and
                                 their deletions, the commit record (rag.store.rows)
    segments/seg-00000042/       one immutable segment: vectors.faiss, ids.npy, lexical/
    writer.lock                  held by the one process that is writing
    uploads/                     files added on the page

A folder with ``CURRENT`` and ``snapshots/`` instead was written by the previous release (one
whole snapshot per commit); rag.store.upgrade converts it on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

from rag.errors import IndexBusy, InputError

ROWS = "rows.sqlite"
SEGMENTS = "segments"
# Files up to this size have their checksum verified every time a segment is opened (about 0.2 s
# for the largest); bigger ones only their size. ``rag check`` verifies every checksum.
CHECKSUM_ON_OPEN_BYTES = 64 * 1024 * 1024


def rebuild_hint(index_dir: Path | str) -> str:
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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_files(root: Path, files: dict[str, dict[str, Any]], checksum_limit: int) -> list[str]:
    """Files under ``root`` that are missing, resized, or (when at most ``checksum_limit`` bytes)
    whose content differs from what was recorded when they were written."""
    problems: list[str] = []
    for name, info in sorted(files.items()):
        path = root / name
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


class IndexFolder:
    """Locates the parts of an index folder and hands out the single writer lock."""

    def __init__(self, index_dir: Path | str, lock_timeout: float = 10.0) -> None:
        self.dir = Path(index_dir)
        self.lock_timeout = lock_timeout
        if self.dir.exists() and not self.dir.is_dir():
            raise InputError(
                f"the index folder {self.dir} is a file, not a folder; choose another with "
                "--index or RAG_INDEX_DIR"
            )

    @property
    def rows_path(self) -> Path:
        return self.dir / ROWS

    @property
    def segments_dir(self) -> Path:
        return self.dir / SEGMENTS

    def layout(self) -> Literal["none", "v1", "v2"]:
        """What the folder holds: nothing yet, the previous release's snapshots, or this format."""
        if self.rows_path.is_file():
            return "v2"
        if (self.dir / "CURRENT").is_file() or (self.dir / "snapshots").is_dir():
            return "v1"
        return "none"

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

    def collect_garbage(self, keep: set[str]) -> None:
        """Drop every segment folder but ``keep`` (lock held): staging folders and segments of a
        commit that never happened, and segments merged away before the previous commit.

        ``keep`` is the live segments of the newest commit and of the one before it (a reader
        may be loading that one right now). Leftovers of the previous format go too."""
        if self.segments_dir.is_dir():
            for path in self.segments_dir.iterdir():
                if path.name not in keep:
                    shutil.rmtree(path, ignore_errors=True)
        if self.rows_path.is_file():
            (self.dir / "CURRENT").unlink(missing_ok=True)
            shutil.rmtree(self.dir / "snapshots", ignore_errors=True)
            for tmp in self.dir.glob(f".{ROWS}.*"):
                tmp.unlink(missing_ok=True)
