"""One commit as a reader sees it: its live segments with their deletions, and its rows.

A view opens a read transaction on the rows file (so every later lookup sees this commit, however
many commits land meanwhile) and takes the segments that commit names, loading only those not
already in memory: segments never change, so a view after a small commit costs the new small
segment and the new deletions. Searches run per segment and are merged; BM25 statistics are
summed over the live passages of all segments (rag.store.lexical).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import CorruptIndex, IndexMissing, ModelMismatch
from rag.store import lexical, rows
from rag.store.folder import IndexFolder, rebuild_hint
from rag.store.lexical import LexicalView
from rag.store.segment import Segment, SegmentInfo
from rag.store.vectors import Exclusion, reconstruct_many
from rag.store.vectors import search as vector_search
from rag.text.tokens import tokenize
from rag.types import Article, Filters

_MAX_VARIABLES = 900  # per statement; SQLite's limit is 999 in older builds

__all__ = ["SegmentState", "View", "check_model"]


def check_model(meta: dict[str, str], model_id: str | None, index_dir: Path) -> None:
    stored = meta.get("model_id")
    if model_id is not None and stored is not None and stored != model_id:
        raise ModelMismatch(
            f"index {index_dir} was built with model {stored}, but the configured model is "
            f"{model_id}: set RAG_MODEL to the index's model, or {rebuild_hint(index_dir)}"
        )


def _check_rows(db: sqlite3.Connection, passages: int) -> None:
    try:
        n = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        orphans = db.execute(
            "SELECT count(*) FROM chunks WHERE article_id NOT IN (SELECT id FROM articles)"
        ).fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise CorruptIndex(f"metadata is unreadable ({e})") from e
    if n != passages:
        raise CorruptIndex(f"metadata has {n} passages, the segments {passages}")
    if orphans:
        raise CorruptIndex(f"{orphans} passages belong to no article")


class SegmentState:
    """A loaded segment with the deletions of one commit."""

    def __init__(self, seg: Segment, deleted: np.ndarray, rows_deleted: np.ndarray) -> None:
        self.seg = seg
        self.deleted = deleted  # passage ids, ascending
        self.lex = LexicalView(seg.lexical, seg.ids, rows_deleted)
        self.exclusion = Exclusion(deleted) if len(deleted) else None

    @property
    def live(self) -> int:
        return self.seg.info.docs - len(self.deleted)


class View:
    """A commit: its segments in memory, its rows through one read transaction."""

    def __init__(
        self, db: sqlite3.Connection, meta: dict[str, str], states: list[SegmentState]
    ) -> None:
        self.db = db
        self.meta = meta
        self.states = states
        self.generation = rows.meta_int(meta, "generation")
        self.k1 = float(meta.get("k1", lexical.TUNED_K1))
        self.b = float(meta.get("b", lexical.TUNED_B))
        self.lock = threading.RLock()  # one SQLite query at a time on this connection
        self.articles: dict[str, Article] = {}  # cache; articles never change within a commit
        self.filtered: dict[Filters, list[tuple[np.ndarray, np.ndarray]]] = {}

    @classmethod
    def open(
        cls,
        folder: IndexFolder,
        model_id: str | None,
        loaded: dict[str, Segment],
        before: View | None = None,
    ) -> View:
        """The newest commit. ``loaded``: segments already in memory by name (new ones are added
        to it); ``before``: the previous view, whose deletion work is reused where unchanged.
        Without one (a reader's first view), the rows are also counted and checked for passages
        without an article: what a commit writes is consistent, so later views skip that."""
        db = rows.open_reader(folder.rows_path)
        try:
            meta = rows.read_meta(db)
            if rows.meta_int(meta, "generation", 0) < 1:
                raise IndexMissing.at(folder.dir)
            if meta.get("format") != str(rows.FORMAT):
                raise CorruptIndex(f"index format {meta.get('format')!r} is not {rows.FORMAT}")
            check_model(meta, model_id, folder.dir)
            try:
                infos = [SegmentInfo.from_row(r) for r in db.execute("SELECT * FROM segments")]
                deleted = np.array(
                    [r[0] for r in db.execute("SELECT pid FROM deleted ORDER BY pid")], np.int64
                )
            except sqlite3.DatabaseError as e:
                raise CorruptIndex(f"metadata is unreadable ({e})") from e
            old = {s.seg.name: s for s in before.states} if before is not None else {}
            states, placed = [], 0
            for info in sorted(infos, key=lambda i: (i.min_id, i.name)):
                seg = loaded.get(info.name)
                if seg is None:
                    seg = loaded[info.name] = Segment.load(folder.segments_dir, info)
                found, drows = seg.rows_of(deleted)
                mine = deleted[found]
                prev = old.get(info.name)
                if prev is not None and np.array_equal(prev.deleted, mine):
                    states.append(prev)  # same deletions: keep its BM25 statistics and caches
                else:
                    states.append(SegmentState(seg, mine, drows))
                placed += len(mine)
            if placed != len(deleted):
                raise CorruptIndex(f"{len(deleted) - placed} deleted passages are in no segment")
            live = sum(s.live for s in states)
            if live != rows.meta_int(meta, "passages"):
                raise CorruptIndex(
                    f"the segments hold {live} passages, the commit record {meta.get('passages')}"
                )
            if before is None:
                _check_rows(db, live)
        except CorruptIndex as e:
            db.close()
            raise CorruptIndex(f"{e}; {rebuild_hint(folder.dir)}") from e
        except BaseException:
            db.close()
            raise
        return cls(db, meta, states)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # --- rows ----------------------------------------------------------------------------------
    def query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            try:
                return self.db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as e:
                raise CorruptIndex(f"metadata is unreadable ({e})") from e

    def query_in(self, select: str, column: str, values: Sequence[Any]) -> list[sqlite3.Row]:
        """Rows of ``select ... WHERE column IN values``, in batches below SQLite's variable limit."""
        out: list[sqlite3.Row] = []
        for lo in range(0, len(values), _MAX_VARIABLES):
            part = list(values[lo : lo + _MAX_VARIABLES])
            out += self.query(f"{select} WHERE {column} IN ({','.join('?' * len(part))})", part)
        return out

    @property
    def passages(self) -> int:
        return rows.meta_int(self.meta, "passages")

    @property
    def articles_count(self) -> int:
        return rows.meta_int(self.meta, "articles")

    # --- search --------------------------------------------------------------------------------
    def allowed(self, ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per segment: (the ``ids`` it holds, a mask of their rows)."""
        out = []
        for state in self.states:
            found, seg_rows = state.seg.rows_of(ids)
            mask = np.zeros(state.seg.info.docs, np.bool_)
            mask[seg_rows] = True
            out.append((ids[found], mask))
        return out

    def dense_search(
        self,
        query: np.ndarray,
        k: int,
        allowed: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> list[tuple[int, float]]:
        hits: list[tuple[int, float]] = []
        for i, state in enumerate(self.states):
            if allowed is None:
                hits += vector_search(state.seg.vectors, query, k, excluded=state.exclusion)
            elif len(allowed[i][0]):
                hits += vector_search(state.seg.vectors, query, k, allowed=allowed[i][0])
        if len(self.states) > 1:
            hits.sort(key=lambda h: -h[1])  # stable: within a segment, FAISS's order
        return hits[:k]

    def lexical_search(
        self, query: str, k: int, allowed: list[tuple[np.ndarray, np.ndarray]] | None = None
    ) -> list[tuple[int, float]]:
        masks = None if allowed is None else [m for _, m in allowed]
        views = [s.lex for s in self.states]
        return lexical.search(views, tokenize(query), k, self.k1, self.b, masks)

    def idf(self, terms: Sequence[str]) -> list[float]:
        return lexical.idf([s.lex for s in self.states], terms)

    def vectors_for(self, ids: Sequence[int], dimension: int) -> np.ndarray:
        keys = np.asarray(ids, np.int64).reshape(-1)
        out = np.zeros((len(keys), dimension), np.float32)
        for state in self.states:
            found, _ = state.seg.rows_of(keys)
            if found.any():
                out[found] = reconstruct_many(state.seg.vectors, keys[found])
        return out
