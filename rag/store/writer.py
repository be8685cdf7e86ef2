"""Writing the index: changes staged in a private copy of the current snapshot, then one atomic commit."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence

import numpy as np

from rag.store.base import NewArticle
from rag.store.folder import (
    ARTICLE_COLUMNS,
    SCHEMA,
    IndexStore,
    empty_vectors,
    new_staging,
    open_metadata,
    write_snapshot_files,
)
from rag.store.lexical import TUNED_B, TUNED_K1, LexicalIndex
from rag.store.snapshot import Snapshot
from rag.store.vectors import VectorPolicy, maybe_upgrade, remove_ids
from rag.text.minhash import Sketch


class IndexWriter:
    """Stages changes in a private copy of the current snapshot; ``commit`` publishes them atomically.

    Use only while holding ``store.write_lock()``.
    """

    def __init__(
        self,
        store: IndexStore,
        model_id: str,
        dimension: int,
        vector_policy: VectorPolicy | None = None,
    ) -> None:
        self.store = store
        self.model_id = model_id
        self.vector_policy = vector_policy or VectorPolicy()
        store.tidy()
        self.staging = new_staging(store)
        self.changed = False
        self._sketches: dict[str, Sketch] = {}  # of the articles added by this session
        if store.exists():
            snap = Snapshot.open_current(store, model_id)
            src = snap.db
            self.db = sqlite3.connect(self.staging / "meta.sqlite", check_same_thread=False)
            src.backup(self.db)
            self.vectors, self.lexical = snap.vectors, snap.lexical
        else:
            self.db = sqlite3.connect(self.staging / "meta.sqlite", check_same_thread=False)
            self.vectors, self.lexical = empty_vectors(dimension), LexicalIndex(TUNED_K1, TUNED_B)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    # --- queries used while planning an ingest --------------------------------------------------
    def source_article(self, source: str) -> str | None:
        row = self.db.execute(
            "SELECT article_id FROM sources WHERE source = ?", (source,)
        ).fetchone()
        return row[0] if row else None

    def sources(self) -> list[tuple[str, str | None]]:
        return [(r[0], r[1]) for r in self.db.execute("SELECT source, root FROM sources")]

    def has_article(self, article_id: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone()
            is not None
        )

    def cached_vectors(self, embed_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already in the index for passages with these embedding-text hashes."""
        out: dict[str, np.ndarray] = {}
        for h in set(embed_hashes):
            row = self.db.execute(
                "SELECT rowid FROM chunks WHERE embed_hash = ? LIMIT 1", (h,)
            ).fetchone()
            if row is not None:
                out[h] = np.asarray(self.vectors.reconstruct(int(row[0])), dtype=np.float32)
        return out

    def all_article_texts(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.db.execute("SELECT id, text FROM articles")]

    # --- changes ------------------------------------------------------------------------------
    def add_articles(self, items: Sequence[NewArticle]) -> None:
        """Insert articles with their passages; vectors and BM25 terms go in as one batch."""
        for item in items:
            if not (
                len(item.chunks)
                == len(item.vectors)
                == len(item.embed_hashes)
                == len(item.lexical_texts)
            ):
                raise ValueError("chunks, vectors, embed_hashes and lexical_texts must align")
        rowids = []
        for item in items:
            article, pages = item.article, item.article.pages
            self.db.execute(
                f"INSERT INTO articles ({ARTICLE_COLUMNS}, added_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    article.id,
                    article.source,
                    article.title,
                    article.text,
                    article.date,
                    article.author,
                    article.url,
                    article.site,
                    None,
                    json.dumps([[p.start, p.end, p.page] for p in pages]) if pages else None,
                    time.time(),
                ),
            )
            for c, h in zip(item.chunks, item.embed_hashes, strict=True):
                cur = self.db.execute(
                    'INSERT INTO chunks (id, article_id, ordinal, start, "end", embed_hash) '
                    "VALUES (?,?,?,?,?,?)",
                    (c.id, c.article_id, c.ordinal, c.start, c.end, h),
                )
                rowids.append(cur.lastrowid)
            self.changed = True
            if item.sketch is not None:
                self._sketches[article.id] = item.sketch
        if rowids:
            # One FAISS add and one BM25 add for the whole batch: made per article, their
            # fixed per-call costs showed up in a profile of a BBC ingest.
            ids = np.array(rowids, dtype=np.int64)
            vectors = np.concatenate([np.asarray(i.vectors, np.float32) for i in items])
            self.vectors.add_with_ids(np.ascontiguousarray(vectors), ids)
            self.lexical.add(ids.tolist(), [t for i in items for t in i.lexical_texts])

    def add_source(self, source: str, article_id: str, root: str | None) -> None:
        """Point ``source`` at an article, dropping whatever it pointed at before."""
        old = self.source_article(source)
        if old == article_id:
            return
        if old is not None:
            self.remove_source(source)
        self.db.execute(
            "INSERT INTO sources (source, article_id, root) VALUES (?,?,?)",
            (source, article_id, root),
        )
        self.changed = True

    def remove_source(self, source: str) -> None:
        """Forget a source; its article leaves the index when no other source holds it."""
        article_id = self.source_article(source)
        if article_id is None:
            return
        self.db.execute("DELETE FROM sources WHERE source = ?", (source,))
        remaining = self.db.execute(
            "SELECT source FROM sources WHERE article_id = ? ORDER BY source", (article_id,)
        ).fetchall()
        if remaining:
            self.db.execute(
                "UPDATE articles SET source = ? WHERE id = ?", (remaining[0][0], article_id)
            )
        else:
            self.remove_article(article_id)
        self.changed = True

    def remove_article(self, article_id: str) -> None:
        rowids = [
            r[0]
            for r in self.db.execute("SELECT rowid FROM chunks WHERE article_id = ?", (article_id,))
        ]
        if rowids:
            ids = np.array(rowids, dtype=np.int64)
            remove_ids(self.vectors, ids)
            self.lexical.remove(ids)
        self.db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
        self.db.execute("DELETE FROM sources WHERE article_id = ?", (article_id,))
        self.db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        self.changed = True

    def regroup(self, threshold: float) -> None:
        """Group near-duplicates again over every article (sketches of this session's reused)."""
        from rag.ingest.dedup import group_near_duplicates

        self.set_groups(group_near_duplicates(self.all_article_texts(), threshold, self._sketches))

    def set_groups(self, groups: dict[str, str]) -> None:
        current = dict(self.db.execute("SELECT id, group_id FROM articles").fetchall())
        for aid, old in current.items():
            new = groups.get(aid)
            if new != old:
                self.db.execute("UPDATE articles SET group_id = ? WHERE id = ?", (new, aid))
                self.changed = True

    # --- commit -------------------------------------------------------------------------------
    def commit(self) -> str:
        """Publish the staged state as the new current snapshot, then keep staging on top of it."""
        # Past the exact-search threshold the vectors move to a trained IVF index (see rag/vectors).
        self.vectors = maybe_upgrade(self.vectors, self.vector_policy)
        write_snapshot_files(self.staging, self.db, self.vectors, self.lexical, self.model_id)
        final = self.store.publish(self.staging)
        self.staging = new_staging(self.store)
        self.db = sqlite3.connect(self.staging / "meta.sqlite", check_same_thread=False)
        open_metadata(final / "meta.sqlite", readonly=True).backup(self.db)
        self.db.row_factory = sqlite3.Row
        self.changed = False
        return final.name

    def close(self) -> None:
        import shutil

        self.db.close()
        shutil.rmtree(self.staging, ignore_errors=True)
