"""Writing the local index: rows in one SQLite transaction, new passages in one new segment.

A session keeps a write transaction open. Added passages go to the rows file and to a buffer;
removed ones are deleted from the rows and, when a committed segment holds them, listed in
``deleted``. ``commit`` writes the buffer as one small segment, lets the merge policy merge a
few segments (bounded work), records the live segments and commits the transaction: the commit
costs what changed, not the size of the index. Nothing large is loaded: the big segments stay
on disk unless a merge or a reused vector needs them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

from rag.errors import CorruptIndex
from rag.store import grouping, rows
from rag.store.base import NewArticle
from rag.store.folder import CHECKSUM_ON_OPEN_BYTES, IndexFolder, check_files, rebuild_hint
from rag.store.lexical import TUNED_B, TUNED_K1, LexicalBuilder
from rag.store.merge import MergePolicy, SegmentSize, merge
from rag.store.segment import (
    VECTORS,
    Segment,
    SegmentInfo,
    load_ids,
    load_vectors,
    segment_name,
    write_segment,
)
from rag.store.vectors import VectorPolicy, maybe_upgrade, new_index, reconstruct_many
from rag.store.view import check_model
from rag.text.minhash import Sketch
from rag.text.tokens import tokenize


class _Buffer:
    """Passages added in this session, not yet in a segment."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.ids: list[int] = []
        self.vectors: list[np.ndarray] = []
        self.lexical = LexicalBuilder()
        self.row: dict[int, int] = {}  # passage id -> position, for live ones

    def add(self, ids: Sequence[int], vectors: np.ndarray, texts: Sequence[str]) -> None:
        for pid in ids:
            self.row[pid] = len(self.ids)
            self.ids.append(pid)
        self.vectors.extend(np.asarray(vectors, np.float32).reshape(len(ids), self.dimension))
        self.lexical.add([tokenize(t) for t in texts])

    def take(self, pids: Iterable[int]) -> set[int]:
        """Drop these passages if they are here; returns those that were."""
        return {p for p in pids if self.row.pop(p, None) is not None}

    def build(self, policy: VectorPolicy) -> tuple[np.ndarray, object, object]:
        rows_ = np.array(sorted(self.row.values()), np.int64)
        ids = np.array([self.ids[r] for r in rows_], np.int64)
        index = new_index(self.dimension)
        if len(ids):
            index.add_with_ids(np.stack([self.vectors[r] for r in rows_]), ids)
        return ids, maybe_upgrade(index, policy), self.lexical.build(rows_)


class LocalWriter:
    """One write session (hold the folder's writer lock while it lives)."""

    def __init__(
        self,
        folder: IndexFolder,
        model_id: str,
        dimension: int | None,
        vector_policy: VectorPolicy | None = None,
        merge_policy: MergePolicy | None = None,
    ) -> None:
        """``dimension``: of the model's vectors (None: the index's, which must exist)."""
        self.folder = folder
        self.vector_policy = vector_policy or VectorPolicy()
        self.merge_policy = merge_policy or MergePolicy()
        try:
            self.db = rows.open_writer(folder.rows_path)
        except CorruptIndex as e:
            raise CorruptIndex(f"{e}; {rebuild_hint(folder.dir)}") from e
        try:
            meta = rows.read_meta(self.db)
            check_model(meta, model_id, folder.dir)
            if meta and meta.get("format") != str(rows.FORMAT):
                raise CorruptIndex(f"index format {meta.get('format')!r} is not {rows.FORMAT}")
            self.db.execute("BEGIN IMMEDIATE")
            if not meta and dimension is None:
                raise CorruptIndex(f"index {folder.dir} holds no commit")
            if not meta:
                rows.write_meta(self.db, {
                    "format": str(rows.FORMAT), "model_id": model_id, "dimension": dimension,
                    "generation": 0, "next_pid": 1, "next_segment": 1, "articles": 0,
                    "passages": 0, "k1": TUNED_K1, "b": TUNED_B, "previous_segments": [],
                })  # fmt: skip
                meta = rows.read_meta(self.db)
            self.meta = meta
            self.dimension = rows.meta_int(meta, "dimension")
            self.segments = {
                i.name: i
                for i in map(SegmentInfo.from_row, self.db.execute("SELECT * FROM segments"))
            }
            problems = [
                f"{name}/{p}"
                for name, info in self.segments.items()
                for p in check_files(folder.segments_dir / name, info.files, CHECKSUM_ON_OPEN_BYTES)
            ]
            if problems:
                raise CorruptIndex(f"index {folder.dir} is damaged ({'; '.join(problems[:3])})")
            for info in self.segments.values():
                load_ids(folder.segments_dir, info)  # checks them against the record
        except (CorruptIndex, sqlite3.DatabaseError) as e:
            self.db.close()
            raise CorruptIndex(f"{e}; {rebuild_hint(folder.dir)}") from e
        except BaseException:
            self.db.close()
            raise
        self._previous = set(rows.json_list(meta, "previous_segments"))
        folder.collect_garbage(set(self.segments) | self._previous)
        self._session_added = 0  # passages added since the session opened: the merge budget
        self._start_session()

    def _start_session(self) -> None:
        self.buffer = _Buffer(self.dimension)
        self.changed = False
        self._next_pid = rows.meta_int(self.meta, "next_pid")
        self._next_segment = rows.meta_int(self.meta, "next_segment")
        self._articles = rows.meta_int(self.meta, "articles")
        self._passages = rows.meta_int(self.meta, "passages")
        self._added: dict[str, Sketch | None] = {}  # since the last regroup
        self._touched: set[str] = set()  # groups that lost members since the last regroup
        self._written: list[str] = []  # segment folders written by this commit
        self._vectors: dict[str, object] = {}  # segments' vector indexes read for reuse

    # --- queries ------------------------------------------------------------------------------
    def source_article(self, source: str) -> str | None:
        row = self.db.execute("SELECT article_id FROM sources WHERE source = ?", (source,))
        found = row.fetchone()
        return found[0] if found else None

    def sources(self, roots: Collection[str] | None = None) -> list[tuple[str, str | None]]:
        if roots is None:
            return [(r[0], r[1]) for r in self.db.execute("SELECT source, root FROM sources")]
        return [(r[0], r[1]) for r in _GroupRows(self.db)._in(
            "SELECT source, root FROM sources WHERE root IN ({})", sorted(roots))]  # fmt: skip

    def has_article(self, article_id: str) -> bool:
        found = self.db.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone()
        return found is not None

    def cached_vectors(self, embed_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for passages with these embedding-text hashes."""
        out: dict[str, np.ndarray] = {}
        for h in set(embed_hashes):
            found = self.db.execute(
                "SELECT pid FROM chunks WHERE embed_hash = ? ORDER BY pid DESC LIMIT 1", (h,)
            ).fetchone()
            if found is None:
                continue
            pid = int(found[0])
            row = self.buffer.row.get(pid)
            if row is not None:
                out[h] = self.buffer.vectors[row]
                continue
            name = self._segment_of(np.array([pid]))[0]
            if name is not None:
                if name not in self._vectors:
                    self._vectors[name] = load_vectors(self.folder.segments_dir / name / VECTORS)
                out[h] = reconstruct_many(self._vectors[name], [pid])[0]  # type: ignore[arg-type]
        return out

    def _segment_of(self, pids: np.ndarray) -> list[str | None]:
        out: list[str | None] = [None] * len(pids)
        for info in self.segments.values():
            near = np.flatnonzero((pids >= info.min_id) & (pids <= info.max_id))
            if len(near):
                ids = load_ids(self.folder.segments_dir, info)
                pos = np.searchsorted(ids, pids[near]).clip(max=len(ids) - 1)
                for j in near[ids[pos] == pids[near]].tolist():
                    out[j] = info.name
        return out

    # --- changes ------------------------------------------------------------------------------
    def add_articles(self, items: Sequence[NewArticle]) -> None:
        """Insert articles with their passages; vectors and BM25 terms go to the new segment."""
        sketches, keys = grouping.sketched(items)
        now = time.time()
        lsh: list[tuple[int, int | None]] = []
        chunk_rows: list[tuple[object, ...]] = []
        for i, item in enumerate(items):
            a, bands = item.article, keys.get(i)
            try:
                num = self.db.execute(
                    f"INSERT INTO articles ({rows.ARTICLE_COLUMNS}, bands, added_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (a.id, a.source, a.title, a.text, a.date, a.author, a.url, a.site, None,
                     rows.pages_json(a.pages), None if bands is None else bands.tobytes(), now),
                ).lastrowid  # fmt: skip
            except sqlite3.IntegrityError as e:
                raise ValueError(f"article {a.id} is already in the index") from e
            if bands is not None:
                lsh += [(k, num) for k in bands.tolist()]
            pids = list(range(self._next_pid, self._next_pid + len(item.chunks)))
            self._next_pid += len(pids)
            chunk_rows += [(p, c.id, c.article_id, c.ordinal, c.start, c.end, h)
                           for p, c, h in zip(pids, item.chunks, item.embed_hashes, strict=True)]  # fmt: skip
            self.buffer.add(pids, item.vectors, item.lexical_texts)
            self._articles += 1
            self._passages += len(pids)
            self._session_added += len(pids)
            self._added[a.id] = sketches[i]
            self.changed = True
        self.db.executemany("INSERT OR IGNORE INTO lsh (key, art) VALUES (?, ?)", lsh)
        self.db.executemany(
            'INSERT INTO chunks (pid, id, article_id, ordinal, start, "end", embed_hash) '
            "VALUES (?,?,?,?,?,?,?)",
            chunk_rows,
        )

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
        row = self.db.execute(
            "SELECT num, group_id, bands FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        if row is None:
            return
        pids = [r[0] for r in self.db.execute("SELECT pid FROM chunks WHERE article_id = ?",
                                              (article_id,))]  # fmt: skip
        pending = self.buffer.take(pids)
        self.db.executemany(
            "INSERT OR IGNORE INTO deleted (pid) VALUES (?)",
            [(p,) for p in pids if p not in pending],
        )
        if row["bands"]:
            keys = np.frombuffer(row["bands"], np.int64)
            self.db.executemany("DELETE FROM lsh WHERE key = ? AND art = ?",
                                [(int(k), row["num"]) for k in keys.tolist()])  # fmt: skip
        self.db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
        self.db.execute("DELETE FROM sources WHERE article_id = ?", (article_id,))
        self.db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        if row["group_id"]:
            self._touched.add(row["group_id"])
        self._added.pop(article_id, None)
        self._articles -= 1
        self._passages -= len(pids)
        self.changed = True

    def regroup(self, threshold: float) -> None:
        """Update the near-duplicate groups for what was added and removed since the last call."""
        added = {a: s for a, s in self._added.items() if s is not None}
        if added or self._touched:
            others = self._articles > len(added)  # stored articles a new one may be a version of
            grouping.regroup(_GroupRows(self.db), added, self._touched, threshold, others)
        self._added.clear()
        self._touched.clear()

    # --- commit -------------------------------------------------------------------------------
    def _sizes(self) -> tuple[list[SegmentSize], dict[str, np.ndarray]]:
        deleted = np.array([r[0] for r in self.db.execute("SELECT pid FROM deleted ORDER BY pid")],
                           np.int64)  # fmt: skip
        where = self._segment_of(deleted)
        by_segment = {name: deleted[[w == name for w in where]] for name in self.segments}
        sizes = [
            SegmentSize(n, i.docs, i.docs - len(by_segment[n])) for n, i in self.segments.items()
        ]
        return sizes, by_segment

    def _new_segment(self, ids: np.ndarray, vectors: object, lexical: object) -> None:
        name = segment_name(self._next_segment)
        self._next_segment += 1
        info = write_segment(self.folder.segments_dir, name, ids, vectors, lexical)  # type: ignore[arg-type]
        self._written.append(name)
        self.db.execute("INSERT INTO segments VALUES (?,?,?,?,?,?,?)", info.row())
        self.segments[name] = info

    def _merge(self, names: list[str], deleted: dict[str, np.ndarray]) -> None:
        parts = [
            (Segment.load(self.folder.segments_dir, self.segments[n]), deleted[n])
            for n in names
            if self.segments[n].docs > len(deleted[n])
        ]
        if parts:
            self._new_segment(*merge(parts, self.dimension, self.vector_policy))
        for n in names:
            self.db.execute("DELETE FROM segments WHERE name = ?", (n,))
            self.db.executemany("DELETE FROM deleted WHERE pid = ?",
                                [(int(p),) for p in deleted[n].tolist()])  # fmt: skip
            del self.segments[n]
            self._vectors.pop(n, None)

    def commit(self, compact: bool = False) -> str:
        """Publish everything since the last commit atomically; returns the new version.
        ``compact``: merge every segment into one, whatever it costs."""
        live_before = set(self.segments)
        if self.buffer.row:
            self._new_segment(*self.buffer.build(self.vector_policy))
        budget = max(self.merge_policy.inline_max, 4 * self._session_added)
        for _ in range(1000):  # a cascade of merges ends long before
            sizes, deleted = self._sizes()
            names = (
                self.merge_policy.plan_all(sizes)
                if compact
                else self.merge_policy.plan(sizes, budget)
            )
            if not names:
                break
            self._merge(names, deleted)
            compact = False
        generation = rows.meta_int(self.meta, "generation") + 1
        rows.write_meta(self.db, {
            "generation": generation, "next_pid": self._next_pid,
            "next_segment": self._next_segment, "articles": self._articles,
            "passages": self._passages, "updated": time.time(),
            "previous_segments": sorted(live_before),
        })  # fmt: skip
        self.db.execute("COMMIT")
        self.meta = rows.read_meta(self.db)
        self._previous = live_before
        self.folder.collect_garbage(set(self.segments) | live_before)
        self.db.execute("BEGIN IMMEDIATE")
        self._start_session()
        return f"commit-{generation:08d}"

    def close(self) -> None:
        """End the session: what was not committed is dropped, with the segments it wrote."""
        try:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
        finally:
            self.db.close()
        self.folder.collect_garbage(set(self.segments_committed()) | self._previous)

    def segments_committed(self) -> list[str]:
        return [n for n in self.segments if n not in self._written]


class _GroupRows:
    """The near-duplicate questions of rag.store.grouping, answered from the rows."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def _in(self, sql: str, values: Sequence[object]) -> list[sqlite3.Row]:
        out: list[sqlite3.Row] = []
        for lo in range(0, len(values), 900):
            part = list(values[lo : lo + 900])
            out += self.db.execute(sql.format(",".join("?" * len(part))), part).fetchall()
        return out

    def candidates(self, keys: Collection[int]) -> dict[int, set[str]]:
        sql = "SELECT l.key, a.id FROM lsh l JOIN articles a ON a.num = l.art WHERE l.key IN ({})"
        out: dict[int, set[str]] = {}
        for key, aid in self._in(sql, sorted(keys)):
            out.setdefault(key, set()).add(aid)
        return out

    def texts(self, ids: Collection[str]) -> dict[str, str]:
        return {r[0]: r[1] for r in self._in("SELECT id, text FROM articles WHERE id IN ({})",
                                             sorted(ids))}  # fmt: skip

    def groups_of(self, ids: Collection[str]) -> dict[str, str | None]:
        sql = "SELECT id, group_id FROM articles WHERE id IN ({})"
        return {r[0]: r[1] for r in self._in(sql, sorted(ids))}

    def members(self, group_id: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM articles WHERE group_id = ?",
                                              (group_id,))]  # fmt: skip

    def set_groups(
        self, changes: Mapping[str, str | None], sizes: Mapping[str, int], dropped: Collection[str]
    ) -> None:
        self.db.executemany("UPDATE articles SET group_id = ? WHERE id = ?",
                            [(g, a) for a, g in changes.items()])  # fmt: skip
        self.db.executemany("DELETE FROM groups WHERE id = ?", [(g,) for g in dropped])
        self.db.executemany("INSERT OR REPLACE INTO groups (id, size) VALUES (?, ?)",
                            list(sizes.items()))  # fmt: skip
