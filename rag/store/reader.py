"""Reading the local index: one commit per thread, searches with filters, passages and articles."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.errors import CorruptIndex, IndexMissing
from rag.store import rows
from rag.store.base import passages_of
from rag.store.folder import IndexFolder
from rag.store.segment import Segment
from rag.store.view import View
from rag.types import Article, Chunk, Filters

_OPEN_ATTEMPTS = 5


class LocalReader:
    """Read access to the committed index; safe to share between threads.

    Each thread sees one commit until it calls :meth:`refresh`, so the several lookups that
    make up one search (passage ids, then their rows) never mix two commits, even while another
    thread switches to a newer one. A thread that never refreshes keeps the commit it first saw.
    """

    def __init__(self, folder: IndexFolder, model_id: str | None = None) -> None:
        self.folder = folder
        self.model_id = model_id
        self._load_lock = threading.Lock()  # one thread opens a new view, the others wait
        self._loaded: dict[str, Segment] = {}  # segments in memory, shared by the views
        self._probe: sqlite3.Connection | None = None  # reads the newest generation number
        self._latest = self._open(None)
        self._local = threading.local()

    def _open(self, before: View | None) -> View:
        """Open the newest commit. A writer may commit twice while we load and so collect a
        segment we are reading: then the generation has moved on and we load the newer one."""
        if self.folder.layout() == "none":
            raise IndexMissing.at(self.folder.dir)
        for attempt in range(_OPEN_ATTEMPTS):
            seen = self._generation()
            try:
                view = View.open(self.folder, self.model_id, self._loaded, before)
                break
            except CorruptIndex:
                if attempt == _OPEN_ATTEMPTS - 1 or self._generation() == seen:
                    raise
        live = {s.seg.name for s in view.states}
        for name in [n for n in self._loaded if n not in live]:
            del self._loaded[name]  # views that still hold one keep it alive
        return view

    def _generation(self) -> int:
        try:
            if self._probe is None:
                self._probe = sqlite3.connect(
                    self.folder.rows_path, check_same_thread=False, isolation_level=None
                )
                self._probe.execute("PRAGMA query_only=ON")
            row = self._probe.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            return int(row[0]) if row else 0
        except (sqlite3.Error, ValueError):
            return -1

    @property
    def _view(self) -> View:
        view: View | None = getattr(self._local, "view", None)
        if view is None:
            view = self._local.view = self._latest
        return view

    @property
    def version(self) -> str:
        return f"commit-{self._view.generation:08d}"

    def counts(self) -> tuple[int, int]:
        view = self._view
        return view.articles_count, view.passages

    def refresh(self) -> bool:
        """Move this thread to the newest commit; True if what it sees changed."""
        before = self._view
        with self._load_lock:
            if self._generation() != self._latest.generation:
                self._latest = self._open(self._latest)
            self._local.view = self._latest
        return self._latest is not before

    # --- search -------------------------------------------------------------------------------
    def _allowed(self, filters: Filters | None) -> list[tuple[np.ndarray, np.ndarray]] | None:
        if filters is None or not filters.active():
            return None
        view = self._view
        cached = view.filtered.get(filters)
        if cached is None:
            cached = view.allowed(self._ids_matching(view, filters))
            if len(view.filtered) >= 8:
                view.filtered.clear()
            view.filtered[filters] = cached
        return cached

    def dense_search(
        self, query: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, cosine) among the passages that pass ``filters``."""
        return self._view.dense_search(query, k, self._allowed(filters))

    def lexical_search(
        self, query: str, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, BM25 score) among the passages that pass ``filters``."""
        return self._view.lexical_search(query, k, self._allowed(filters))

    def idf(self, terms: Sequence[str]) -> list[float]:
        return self._view.idf(terms)

    def vectors_for(self, ids: Sequence[int]) -> np.ndarray:
        view = self._view
        return view.vectors_for(ids, rows.meta_int(view.meta, "dimension"))

    # --- rows ---------------------------------------------------------------------------------
    def article(self, article_id: str) -> Article:
        self._load_articles({article_id})
        found = self._view.articles.get(article_id)
        if found is None:
            raise KeyError(article_id)
        return found

    def _load_articles(self, article_ids: set[str]) -> None:
        """Articles not cached yet, in one query (a search's hits come from a dozen articles)."""
        view = self._view
        missing = [a for a in article_ids if a not in view.articles]
        if not missing:
            return
        found = view.query_in(f"SELECT {rows.ARTICLE_COLUMNS} FROM articles", "id", missing)
        if len(view.articles) + len(found) > 2048:
            view.articles.clear()
        for r in found:
            view.articles[r["id"]] = rows.article_from_row(r)

    def passages(self, ids: Sequence[int]) -> dict[int, tuple[Chunk, Article]]:
        found = self._view.query_in(
            'SELECT pid, id, article_id, ordinal, start, "end" FROM chunks',
            "pid",
            [int(p) for p in ids],
        )
        self._load_articles({r["article_id"] for r in found})
        return passages_of(
            (
                (r["pid"], r["id"], r["article_id"], r["ordinal"], r["start"], r["end"])
                for r in found
            ),
            self.article,
        )

    def passage_ids(self, article_id: str) -> list[int]:
        found = self._view.query(
            "SELECT pid FROM chunks WHERE article_id = ? ORDER BY ordinal", (article_id,)
        )
        return [int(r[0]) for r in found]

    def sources_of(self, article_id: str) -> list[str]:
        found = self._view.query(
            "SELECT source FROM sources WHERE article_id = ? ORDER BY source", (article_id,)
        )
        return [r["source"] for r in found]

    def group_members(self, group_id: str) -> list[Article]:
        found = self._view.query(
            f"SELECT {rows.ARTICLE_COLUMNS} FROM articles WHERE group_id = ? "
            "ORDER BY length(text) DESC, id",
            (group_id,),
        )
        return [rows.article_from_row(r) for r in found]

    def _ids_matching(self, view: View, filters: Filters) -> np.ndarray:
        """Passage ids of the articles that pass ``filters``."""
        clauses, args = [], []
        if filters.date_from:
            clauses.append("a.date >= ?")
            args.append(filters.date_from)
        if filters.date_to:
            clauses.append("a.date <= ?")
            args.append(filters.date_to)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        found = view.query(
            f"SELECT c.pid AS pid, a.source AS source, a.id AS aid FROM chunks c "
            f"JOIN articles a ON a.id = c.article_id {where}",
            args,
        )
        if not filters.source:
            return np.array(sorted(r["pid"] for r in found), dtype=np.int64)
        by_article: dict[str, bool] = {}
        keep = []
        for r in found:
            aid = r["aid"]
            if aid not in by_article:
                by_article[aid] = any(
                    filters.source_matches(s) for s in [r["source"], *self.sources_of(aid)]
                )
            if by_article[aid]:
                keep.append(r["pid"])
        return np.array(sorted(keep), dtype=np.int64)

    def list_articles(self) -> list[dict[str, Any]]:
        found = self._view.query(
            "SELECT a.id, a.source, a.title, a.date, a.group_id, length(a.text) AS chars, "
            "(SELECT count(*) FROM chunks c WHERE c.article_id = a.id) AS chunks "
            "FROM articles a ORDER BY a.title"
        )
        return [dict(r) for r in found]

    def stats(self) -> dict[str, Any]:
        view = self._view
        groups = view.query("SELECT id FROM groups ORDER BY id")
        updated = float(view.meta.get("updated", "0"))
        return {
            "articles": view.articles_count,
            "chunks": view.passages,
            "model": view.meta.get("model_id"),
            "dimension": rows.meta_int(view.meta, "dimension"),
            "snapshot": self.version,
            "updated": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated)),
            "duplicate_groups": [
                {
                    "group": g["id"],
                    "articles": [
                        {"title": a.title, "source": a.source, "chars": len(a.text)}
                        for a in self.group_members(g["id"])
                    ],
                }
                for g in groups
            ],
            "index_dir": str(self.folder.dir),
        }

    def segments(self) -> list[dict[str, Any]]:
        """The segments of this thread's commit: name, passages, live passages, vector index."""
        return [
            {
                "name": s.seg.name,
                "docs": s.seg.info.docs,
                "live": s.live,
                "vectors": s.seg.info.vectors,
            }
            for s in self._view.states
        ]
