"""The local store: an index folder on this machine (the default backend, ``RAG_STORE=local``).

Rows in SQLite, passages in immutable segments (FAISS + BM25), commits that cost what changed;
see rag.store.folder for the layout. A folder of the previous format is converted on first use.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from rag.errors import CorruptIndex, IndexMissing
from rag.settings import Settings
from rag.store import upgrade
from rag.store.check import check_index
from rag.store.folder import IndexFolder, rebuild_hint
from rag.store.merge import MergePolicy
from rag.store.reader import LocalReader
from rag.store.vectors import VectorPolicy
from rag.store.writer import LocalWriter

__all__ = ["LocalStore"]


class LocalStore:
    """An index folder: one writer at a time, many readers, each on one commit."""

    def __init__(
        self,
        index_dir: Path | str,
        lock_timeout: float = 10.0,
        vector_policy: VectorPolicy | None = None,
        merge_policy: MergePolicy | None = None,
    ) -> None:
        self.folder = IndexFolder(index_dir, lock_timeout)
        self.vector_policy = vector_policy or VectorPolicy()
        self.merge_policy = merge_policy or MergePolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStore:
        return cls(
            settings.index_dir,
            settings.lock_timeout,
            VectorPolicy.from_settings(settings),
            MergePolicy.from_settings(settings),
        )

    @property
    def location(self) -> str:
        return str(self.folder.dir)

    def _layout(self) -> str:
        layout = self.folder.layout()
        segs = self.folder.segments_dir
        if layout == "none" and segs.is_dir() and any(p.name[:4] == "seg-" for p in segs.iterdir()):
            # The rows file is made before any segment: segments without it are damage.
            raise CorruptIndex(
                f"{self.folder.rows_path} is missing; {rebuild_hint(self.folder.dir)}"
            )
        return layout

    def exists(self) -> bool:
        layout = self._layout()
        if layout != "v2":
            return layout == "v1" and (self.folder.dir / "CURRENT").is_file()
        try:
            db = sqlite3.connect(self.folder.rows_path, isolation_level=None)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            finally:
                db.close()
        except sqlite3.DatabaseError as e:
            raise CorruptIndex(
                f"metadata {self.folder.rows_path} is unreadable ({e}); "
                f"{rebuild_hint(self.folder.dir)}"
            ) from e
        return row is not None and int(row[0]) > 0

    def _upgrade(self) -> None:
        """Convert a folder of the previous format (lock held); nothing to do otherwise."""
        if self._layout() == "v1":
            upgrade.convert(self.folder)

    def reader(self, model_id: str | None = None) -> LocalReader:
        if self._layout() == "v1":
            with self.folder.write_lock():
                self._upgrade()
        elif not self.exists():
            raise IndexMissing.at(self.folder.dir)
        return LocalReader(self.folder, model_id)

    @contextlib.contextmanager
    def writer(self, model_id: str, dimension: int) -> Iterator[LocalWriter]:
        with self.folder.write_lock():
            self._upgrade()
            writer = LocalWriter(
                self.folder, model_id, dimension, self.vector_policy, self.merge_policy
            )
            try:
                yield writer
            finally:
                writer.close()

    def check(self) -> list[str]:
        try:
            if self._layout() == "v1":
                return upgrade.check_v1(self.folder)
            if not self.exists():
                raise IndexMissing.at(self.folder.dir)
        except CorruptIndex as e:
            return [str(e)]
        return check_index(self.folder)

    def compact(self, model_id: str) -> None:
        """Merge every segment into one, dropping deleted passages (the trained IVF is kept while
        the index has not outgrown it)."""
        if not self.exists():
            raise IndexMissing.at(self.folder.dir)
        with self.folder.write_lock():
            self._upgrade()
            writer = LocalWriter(self.folder, model_id, None, self.vector_policy, self.merge_policy)
            try:
                writer.commit(compact=True)
            finally:
                writer.close()

    def passage_sink(self) -> None:
        """None: only the process holding the folder's write lock writes it."""
        return None
