"""The local store: an index folder on this machine (the default backend, ``RAG_STORE=local``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rag.settings import Settings
from rag.store.folder import IndexStore, verify_snapshot
from rag.store.reader import IndexReader
from rag.store.vectors import VectorPolicy
from rag.store.writer import IndexWriter


class LocalStore:
    """An index folder: snapshots committed atomically, one writer at a time, many readers."""

    def __init__(
        self,
        index_dir: Path | str,
        lock_timeout: float = 10.0,
        vector_policy: VectorPolicy | None = None,
    ) -> None:
        self.folder = IndexStore(index_dir, lock_timeout)
        self.vector_policy = vector_policy or VectorPolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStore:
        return cls(settings.index_dir, settings.lock_timeout, VectorPolicy.from_settings(settings))

    @property
    def location(self) -> str:
        return str(self.folder.dir)

    def exists(self) -> bool:
        return self.folder.exists()

    def reader(self, model_id: str | None = None) -> IndexReader:
        return IndexReader(self.folder, model_id)

    @contextlib.contextmanager
    def writer(self, model_id: str, dimension: int) -> Iterator[IndexWriter]:
        with self.folder.write_lock():
            writer = IndexWriter(self.folder, model_id, dimension, self.vector_policy)
            try:
                yield writer
            finally:
                writer.close()

    def check(self) -> list[str]:
        return verify_snapshot(self.folder.current_snapshot(), checksums=True)

    def compact(self, model_id: str) -> None:
        """Nothing to merge: every commit writes one whole snapshot."""
