"""Reading the index: the committed snapshot's vectors, BM25 and metadata, one snapshot per thread."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.store.folder import ARTICLE_COLUMNS, IndexStore, Manifest
from rag.store.snapshot import Snapshot
from rag.store.vectors import reconstruct_many
from rag.store.vectors import search as vector_search
from rag.types import Article, Chunk, Filters, PageSpan


def _article_from_row(row: sqlite3.Row) -> Article:
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
        pages=_pages(row["pages"]),
    )


def _pages(stored: str | None) -> tuple[PageSpan, ...]:
    """PDF page spans as the writer stores them: JSON ``[[start, end, page], ...]`` or NULL."""
    if not stored:
        return ()
    try:
        return tuple(PageSpan(int(a), int(b), int(page)) for a, b, page in json.loads(stored))
    except (TypeError, ValueError):
        return ()  # damaged page data costs the page numbers, not the article


class IndexReader:
    """Read access to the committed index; safe to share between threads.

    Each thread sees one snapshot until it calls :meth:`refresh`, so the several lookups that
    make up one search (vector ids, then their rows) never mix two commits, even while another
    thread switches to a newer one. A thread that never refreshes keeps the snapshot it first saw.
    """

    def __init__(self, store: IndexStore, model_id: str | None = None) -> None:
        self.store = store
        self.model_id = model_id
        self._lock = threading.RLock()  # one SQLite query at a time per reader
        self._load_lock = threading.Lock()  # one thread loads a new snapshot, the others wait
        self._latest = Snapshot.open_current(store, model_id, read_only=True)
        self._local = threading.local()

    @property
    def _snap(self) -> Snapshot:
        snap: Snapshot | None = getattr(self._local, "snap", None)
        if snap is None:
            snap = self._local.snap = self._latest
        return snap

    @property
    def manifest(self) -> Manifest:
        return self._snap.manifest

    @property
    def version(self) -> str:
        return self._snap.manifest.snapshot

    def counts(self) -> tuple[int, int]:
        m = self._snap.manifest
        return m.articles, m.chunks

    def refresh(self) -> bool:
        """Move this thread to the newest committed snapshot; True if what it sees changed."""
        before = self._snap
        with self._load_lock:
            if self.store.current_snapshot() != self._latest.path:
                self._latest = Snapshot.open_current(self.store, self.model_id, read_only=True)
            self._local.snap = self._latest
        return self._latest is not before

    # --- search -------------------------------------------------------------------------------
    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        return self.rowids_matching(filters) if filters is not None and filters.active() else None

    def dense_search(
        self, query: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, cosine) among the passages that pass ``filters``."""
        return vector_search(self._snap.vectors, query, k, self._allowed(filters))

    def lexical_search(
        self, query: str, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, BM25 score) among the passages that pass ``filters``."""
        allowed = self._allowed(filters)
        if allowed is None:
            return self._snap.lexical.search(query, k)
        keep = set(allowed.tolist())
        # Filtered lexical search: over-fetch, then keep only allowed ids.
        fetch = max(k * 4, k + len(keep) // 2)
        hits = self._snap.lexical.search(query, fetch)
        kept = [(i, s) for i, s in hits if i in keep]
        if len(kept) < k and len(hits) == fetch:  # the filter kept too few: score them all
            hits = self._snap.lexical.search(query, len(self._snap.lexical))
            kept = [(i, s) for i, s in hits if i in keep]
        return kept[:k]

    def idf(self, terms: Sequence[str]) -> list[float]:
        return self._snap.lexical.idf(terms)

    def vectors_for(self, rowids: Sequence[int]) -> np.ndarray:
        return reconstruct_many(self._snap.vectors, rowids)

    # --- metadata ------------------------------------------------------------------------------
    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        snap = self._snap
        with self._lock:
            return snap.db.execute(sql, args).fetchall()

    def article(self, article_id: str) -> Article:
        cache = self._snap.articles
        cached = cache.get(article_id)
        if cached is not None:
            return cached
        rows = self._query(f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = ?", (article_id,))
        if not rows:
            raise KeyError(article_id)
        article = _article_from_row(rows[0])
        if len(cache) > 2048:
            cache.clear()
        cache[article_id] = article
        return article

    def passages(self, rowids: Sequence[int]) -> dict[int, tuple[Chunk, Article]]:
        if not rowids:
            return {}
        marks = ",".join("?" * len(rowids))
        rows = self._query(
            f'SELECT rowid, id, article_id, ordinal, start, "end" FROM chunks WHERE rowid IN ({marks})',
            [int(r) for r in rowids],
        )
        out: dict[int, tuple[Chunk, Article]] = {}
        for r in rows:
            article = self.article(r["article_id"])
            chunk = Chunk(
                id=r["id"],
                article_id=r["article_id"],
                ordinal=r["ordinal"],
                start=r["start"],
                end=r["end"],
                text=article.text[r["start"] : r["end"]],
            )
            out[int(r["rowid"])] = (chunk, article)
        return out

    def passage_ids(self, article_id: str) -> list[int]:
        rows = self._query(
            "SELECT rowid FROM chunks WHERE article_id = ? ORDER BY ordinal", (article_id,)
        )
        return [int(r[0]) for r in rows]

    def sources_of(self, article_id: str) -> list[str]:
        rows = self._query(
            "SELECT source FROM sources WHERE article_id = ? ORDER BY source", (article_id,)
        )
        return [r["source"] for r in rows]

    def group_members(self, group_id: str) -> list[Article]:
        rows = self._query(
            f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE group_id = ? ORDER BY length(text) DESC",
            (group_id,),
        )
        return [_article_from_row(r) for r in rows]

    def rowids_matching(self, filters: Filters) -> np.ndarray:
        """Passage ids of the articles that pass ``filters`` (remembered per snapshot)."""
        snap = self._snap
        cached = snap.filtered.get(filters)
        if cached is not None:
            return cached
        clauses, args = [], []
        if filters.date_from:
            clauses.append("a.date >= ?")
            args.append(filters.date_from)
        if filters.date_to:
            clauses.append("a.date <= ?")
            args.append(filters.date_to)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            f"SELECT c.rowid AS rowid, a.source AS source, a.id AS aid FROM chunks c "
            f"JOIN articles a ON a.id = c.article_id {where}",
            args,
        )
        if filters.source:
            by_article: dict[str, bool] = {}
            keep = []
            for r in rows:
                aid = r["aid"]
                if aid not in by_article:
                    by_article[aid] = any(
                        filters.source_matches(s) for s in [r["source"], *self.sources_of(aid)]
                    )
                if by_article[aid]:
                    keep.append(r["rowid"])
            allowed = np.array(keep, dtype=np.int64)
        else:
            allowed = np.array([r["rowid"] for r in rows], dtype=np.int64)
        if len(snap.filtered) >= 8:
            snap.filtered.clear()
        snap.filtered[filters] = allowed
        return allowed

    def list_articles(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT a.id, a.source, a.title, a.date, a.group_id, length(a.text) AS chars, "
            "(SELECT count(*) FROM chunks c WHERE c.article_id = a.id) AS chunks "
            "FROM articles a ORDER BY a.title"
        )
        return [dict(r) for r in rows]

    def stats(self) -> dict[str, Any]:
        groups = self._query(
            "SELECT group_id, count(*) AS n FROM articles WHERE group_id IS NOT NULL GROUP BY group_id"
        )
        m = self.manifest
        return {
            "articles": m.articles,
            "chunks": m.chunks,
            "model": m.model_id,
            "dimension": m.dimension,
            "snapshot": m.snapshot,
            "updated": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.created)),
            "duplicate_groups": [
                {
                    "group": g["group_id"],
                    "articles": [
                        {"title": a.title, "source": a.source, "chars": len(a.text)}
                        for a in self.group_members(g["group_id"])
                    ],
                }
                for g in groups
            ],
            "index_dir": str(self.store.dir),
        }
