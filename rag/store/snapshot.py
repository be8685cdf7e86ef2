"""One committed snapshot loaded into memory, its three parts (FAISS, BM25, SQLite) cross-checked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from rag.errors import CorruptIndex
from rag.store import lexical_files
from rag.store.folder import (
    CHECKSUM_ON_OPEN_BYTES,
    IndexStore,
    Manifest,
    check_files,
    check_model,
    load_vectors,
    open_metadata,
    rebuild_hint,
)
from rag.store.vectors import ids_of
from rag.types import Article, Filters

_REQUIRED = ("meta.sqlite", "vectors.faiss")
_OPEN_ATTEMPTS = 5


class Snapshot:
    """One loaded, immutable snapshot; its vectors and lexical index live in memory."""

    def __init__(
        self, store: IndexStore, path: Path, model_id: str | None, read_only: bool = False
    ) -> None:
        self.path = path
        self.manifest = Manifest.read(self.path)
        check_model(self.manifest, model_id, store.dir)
        problems = [f"{n}: not in the manifest" for n in _REQUIRED if n not in self.manifest.files]
        problems += check_files(self.path, self.manifest, CHECKSUM_ON_OPEN_BYTES)
        if problems:
            raise CorruptIndex(
                f"index snapshot {self.path} is damaged ({'; '.join(problems[:3])}); "
                f"{rebuild_hint(store.dir)}"
            )
        try:
            self.vectors = load_vectors(self.path / "vectors.faiss")
            self.lexical = lexical_files.load(self.path / "lexical")
            # SQLite opens the file now and keeps it open: the folder may be collected later.
            self.db = open_metadata(self.path / "meta.sqlite", readonly=True)
        except CorruptIndex as e:
            raise CorruptIndex(f"{e}; {rebuild_hint(store.dir)}") from e
        if not (self.vectors.ntotal == len(self.lexical) == self.manifest.chunks):
            raise CorruptIndex(
                f"index parts disagree ({self.vectors.ntotal} vectors, {len(self.lexical)} lexical "
                f"entries, {self.manifest.chunks} chunks); {rebuild_hint(store.dir)}"
            )
        # The three parts must name the same passages, or a hit would show another passage's
        # text. Comparing ids costs a fraction of loading the vectors.
        try:
            rowids = np.fromiter(
                (r[0] for r in self.db.execute("SELECT rowid FROM chunks ORDER BY rowid")), np.int64
            )
            orphans = self.db.execute(
                "SELECT count(*) FROM chunks WHERE article_id NOT IN (SELECT id FROM articles)"
            ).fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise CorruptIndex(f"metadata is unreadable ({e}); {rebuild_hint(store.dir)}") from e
        try:
            vector_ids = np.sort(ids_of(self.vectors))
        except ValueError as e:
            raise CorruptIndex(
                f"vector file holds no passage ids; {rebuild_hint(store.dir)}"
            ) from e
        lexical_ids = np.sort(self.lexical.ids().astype(np.int64))
        if orphans or not (
            np.array_equal(rowids, vector_ids) and np.array_equal(rowids, lexical_ids)
        ):
            raise CorruptIndex(
                f"index parts name different passages (vectors, lexical index and metadata "
                f"disagree); {rebuild_hint(store.dir)}"
            )
        if read_only:  # a reader only searches BM25: the postings are all it keeps, once built
            self.lexical.make_read_only()
        self.articles: dict[str, Article] = {}  # cache; articles never change within a snapshot
        self.filtered: dict[Filters, np.ndarray] = {}  # passage ids that pass recent filters

    @classmethod
    def open_current(
        cls, store: IndexStore, model_id: str | None, read_only: bool = False
    ) -> Snapshot:
        """Load the committed snapshot. A writer may commit twice while we load and so collect the
        folder we are reading: then CURRENT has moved on and we load the newer one instead."""
        for attempt in range(_OPEN_ATTEMPTS):
            path = store.current_snapshot()
            try:
                return cls(store, path, model_id, read_only)
            except CorruptIndex:
                if attempt == _OPEN_ATTEMPTS - 1 or store.current_snapshot() == path:
                    raise
        raise AssertionError("unreachable")
