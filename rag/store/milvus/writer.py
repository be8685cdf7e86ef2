"""Writing a Milvus index: one session of changes, published by one state row.

A session writes its rows straight into the collections under the next version ``w`` (readers,
on an older version, do not see them) and marks removed rows ``removed = w``. :meth:`commit`
flushes, then upserts the ``state`` row naming ``w``: that single row is the atomic publication.
Rows removed by commits older than the one before are then deleted for good. A session that
ends without committing (closed, or killed) is undone: the next writer, or :meth:`close`, deletes
the rows added above the published version and restores the rows marked removed above it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rag.errors import ModelMismatch
from rag.store import grouping
from rag.store.base import NewArticle
from rag.store.lexical import TUNED_B, TUNED_K1
from rag.store.milvus import rows
from rag.store.milvus.connect import LIVE, Names, connect
from rag.store.milvus.groups import SessionGroups
from rag.store.milvus.reader import read_state
from rag.text.minhash import Sketch

__all__ = ["MilvusWriter", "ServerSink", "roll_back"]

PASSAGE_FIELDS = ["pid", "article_id", "chunk_id", "ordinal", "start", "end", "source", "title",
                  "date", "embed_hash", "terms", "vector", "dl", "added", "removed"]  # fmt: skip
SOURCE_FIELDS = ["key", "source", "article_id", "root", "added", "removed"]
_BATCH = 512


def _full_fields(client: Any, names: Names, collection: str) -> list[str]:
    if collection == names.passages:
        return PASSAGE_FIELDS
    if collection == names.articles:
        return rows.ARTICLE_FIELDS
    return SOURCE_FIELDS


def _insert(client: Any, collection: str, items: Sequence[dict[str, Any]]) -> None:
    for i in range(0, len(items), _BATCH):
        client.insert(collection, list(items[i : i + _BATCH]))


class ServerSink:
    """The :class:`~rag.store.base.PassageSink` of an index on a Milvus server: another process
    (a Ray worker) writes passage rows from :meth:`MilvusWriter.add_articles_deferred` with
    ``upsert``, by id."""

    def __init__(self, uri: str, token: str, names: Names) -> None:
        self.uri, self.token, self.names = uri, token, names
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri, "token": self.token, "names": self.names, "_client": None}

    def connect(self) -> None:
        if self._client is None:
            self._client = connect(self.uri, self.token, lite=False, create=False)

    def write(self, rows: Sequence[dict[str, Any]], vectors: Mapping[str, np.ndarray]) -> None:
        self.connect()
        for row in rows:
            vec = vectors.get(row["embed_hash"])
            if vec is not None:
                row["vector"] = np.asarray(vec, dtype=np.float32).tolist()
        for i in range(0, len(rows), _BATCH):  # a failure is one line (connect._Guarded)
            self._client.upsert(self.names.passages, list(rows[i : i + _BATCH]))


def _with_dummy(row: dict[str, Any], names: Names, collection: str) -> dict[str, Any]:
    if collection != names.passages:
        row["_v"] = [0.0, 0.0]
    return row


def roll_back(client: Any, names: Names, version: int) -> None:
    """Undo everything written above the published ``version`` (an unfinished session)."""
    for coll in names.versioned():
        client.delete(coll, filter=f"added > {version}")
        marked = list(rows.query_all(client, coll, f"removed > {version} and removed < {LIVE}",
                                     _full_fields(client, names, coll)))  # fmt: skip
        restored = [_with_dummy({**r, "removed": LIVE}, names, coll) for r in marked]
        for i in range(0, len(restored), _BATCH):
            client.upsert(coll, restored[i : i + _BATCH])
    changed = list(rows.query_all(client, names.terms, f"version > {version}", rows.TERM_FIELDS))
    new = [r["term"] for r in changed if int(r["version_before"]) == 0]
    if new:
        client.delete(names.terms, ids=new)
    back = [{"term": r["term"], "df": r["df_before"], "version": r["version_before"],
             "df_before": r["df_before"], "version_before": r["version_before"], "_v": [0.0, 0.0]}
            for r in changed if int(r["version_before"]) > 0]  # fmt: skip
    for i in range(0, len(back), _BATCH):
        client.upsert(names.terms, back[i : i + _BATCH])


class MilvusWriter:
    """The one write session of a Milvus index."""

    def __init__(self, client: Any, names: Names, model_id: str, dimension: int | None,
                 renew: Callable[[], None] = lambda: None, cache: bool = False) -> None:  # fmt: skip
        self.client, self.names, self.renew = client, names, renew
        # Milvus Lite scans for every scalar lookup, so there the session keeps which articles
        # and sources its view holds (one scan each, then kept up to date); a server looks them
        # up in its scalar indexes instead.
        self.cache = cache
        self._articles: set[str] | None = None
        self._sources: dict[str, str] | None = None
        self._new_sources: list[dict[str, Any]] = []  # inserted in batches, before any query
        state = read_state(client, names)
        if state is not None and state.get("model_id") not in (None, model_id):
            raise ModelMismatch(f"the index was built with {state['model_id']}, not {model_id}")
        if state is None:
            if dimension is None:
                raise ValueError("dimension is needed to create an index")
            state = {"version": 0, "model_id": model_id, "dimension": dimension, "articles": 0,
                     "passages": 0, "total_len": 0, "next_pid": 1, "k1": TUNED_K1, "b": TUNED_B,
                     "updated": 0.0}  # fmt: skip
        self.state = state
        roll_back(client, names, int(state["version"]))
        self._fresh_session()

    def _fresh_session(self) -> None:
        self.v = int(self.state["version"])  # published
        self.w = self.v + 1  # this session's rows
        self.work = dict(self.state)
        self.changed = False
        self._added: dict[str, Sketch | None] = {}
        self._touched: set[str] = set()
        self._df: dict[str, int] = {}  # change of each term's document frequency

    # --- lookups in the session's view --------------------------------------------------------
    def _vis(self) -> str:
        return rows.visible(self.w)

    def _source_map(self) -> dict[str, str] | None:
        if self.cache and self._sources is None:
            self._flush_sources()
            found = rows.query_all(self.client, self.names.sources, self._vis(),
                                   ["source", "article_id"])  # fmt: skip
            self._sources = {r["source"]: r["article_id"] for r in found}
        return self._sources

    def source_article(self, source: str) -> str | None:
        known = self._source_map()
        if known is not None:
            return known.get(source)
        self._flush_sources()
        found = self.client.query(self.names.sources, output_fields=["article_id"],
                                  filter=f"source == {rows.quote(source)} and {self._vis()}")  # fmt: skip
        return found[0]["article_id"] if found else None

    def sources(self, roots: Collection[str] | None = None) -> list[tuple[str, str | None]]:
        self._flush_sources()
        expr = self._vis()
        if roots is not None:
            if not roots:
                return []
            expr += f" and root in {rows.id_list(sorted(roots))}"
        found = rows.query_all(self.client, self.names.sources, expr, ["source", "root"])
        return sorted((r["source"], r["root"] or None) for r in found)

    def has_article(self, article_id: str) -> bool:
        if self.cache and self._articles is None:
            found = rows.query_all(self.client, self.names.articles,
                                   f"part == 0 and {self._vis()}", ["article_id"])  # fmt: skip
            self._articles = {r["article_id"] for r in found}
        if self._articles is not None:
            return article_id in self._articles
        return bool(self._heads([article_id], ["article_id"]))

    def _heads(self, ids: Collection[str], fields: list[str]) -> list[dict[str, Any]]:
        return rows.query_in(self.client, self.names.articles, "article_id", sorted(ids),
                             f"part == 0 and {self._vis()}", fields)  # fmt: skip

    def cached_vectors(self, embed_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        found = rows.query_in(self.client, self.names.passages, "embed_hash", list(embed_hashes),
                              self._vis(), ["embed_hash", "vector"])  # fmt: skip
        return {r["embed_hash"]: np.asarray(r["vector"], dtype=np.float32) for r in found}

    # --- changes ------------------------------------------------------------------------------
    def _retire(self, collection: str, found: Sequence[dict[str, Any]]) -> None:
        """Remove rows from the session's view: this session's own rows go at once, older rows
        are marked removed by this session (readers of older commits keep them)."""
        own = [r for r in found if int(r["added"]) == self.w]
        older = [_with_dummy({**r, "removed": self.w}, self.names, collection)
                 for r in found if int(r["added"]) != self.w]  # fmt: skip
        key = "pid" if collection == self.names.passages else "key"
        if own:
            self.client.delete(collection, ids=[r[key] for r in own])
        for i in range(0, len(older), _BATCH):
            self.client.upsert(collection, older[i : i + _BATCH])

    def add_articles(self, items: Sequence[NewArticle]) -> None:
        _insert(self.client, self.names.passages, self.add_articles_deferred(items))

    def add_articles_deferred(self, items: Sequence[NewArticle]) -> list[dict[str, Any]]:
        """:meth:`add_articles` but for the passage rows, returned for a :class:`ServerSink`
        to write (see :class:`~rag.store.base.SinkWriter`); the roll-back of a session that
        does not commit deletes them like its own rows, by their version."""
        sketches, keys = grouping.sketched(items)
        passages, articles = [], []
        pid = int(self.work["next_pid"])
        for i, item in enumerate(items):
            a = item.article
            bands = keys[i].tolist() if i in keys else []
            articles += rows.article_rows(a, rows.article_meta(a, len(item.chunks)), bands,
                                          self.w, None)  # fmt: skip
            date = rows.date_number(a.date)
            for chunk, vec, h, lex in zip(item.chunks, item.vectors, item.embed_hashes,
                                          item.lexical_texts, strict=True):  # fmt: skip
                terms = rows.encode_terms(lex)
                passages.append({
                    "pid": pid, "article_id": a.id, "chunk_id": chunk.id,
                    "ordinal": chunk.ordinal, "start": chunk.start, "end": chunk.end,
                    "source": _clip(a.source, 8192), "title": _clip(a.title, 4096), "date": date,
                    "embed_hash": h, "terms": " ".join(terms),
                    "vector": np.asarray(vec, dtype=np.float32).tolist(), "dl": len(terms),
                    "added": self.w, "removed": LIVE,
                })  # fmt: skip
                pid += 1
                self.work["total_len"] += len(terms)
                for t in set(terms):
                    self._df[t] = self._df.get(t, 0) + 1
            self.work["articles"] += 1
            self.work["passages"] += len(item.chunks)
            self._added[a.id] = sketches[i]
            if self._articles is not None:
                self._articles.add(a.id)
        _insert(self.client, self.names.articles, articles)
        self.work["next_pid"] = pid
        self.changed = self.changed or bool(items)
        self.renew()
        return passages

    def add_source(self, source: str, article_id: str, root: str | None) -> None:
        old = self.source_article(source)
        if old == article_id:
            return
        if old is not None:
            self.remove_source(source)
        row = {"key": rows.row_key(self.w, source), "source": source, "article_id": article_id,
               "root": root or "", "added": self.w, "removed": LIVE, "_v": [0.0, 0.0]}  # fmt: skip
        self._new_sources.append(row)
        if len(self._new_sources) >= _BATCH:
            self._flush_sources()
        if self._sources is not None:
            self._sources[source] = article_id
        self.changed = True

    def _flush_sources(self) -> None:
        if self._new_sources:
            _insert(self.client, self.names.sources, self._new_sources)
            self._new_sources = []

    def _source_rows(self, expr: str) -> list[dict[str, Any]]:
        self._flush_sources()
        return list(rows.query_all(self.client, self.names.sources, f"{expr} and {self._vis()}",
                                   SOURCE_FIELDS))  # fmt: skip

    def remove_source(self, source: str) -> None:
        found = self._source_rows(f"source == {rows.quote(source)}")
        if not found:
            return
        article_id = found[0]["article_id"]
        self._retire(self.names.sources, found)
        if self._sources is not None:
            self._sources.pop(source, None)
        remaining = sorted(r["source"] for r in self._source_rows(
            f"article_id == {rows.quote(article_id)}"))  # fmt: skip
        if remaining:
            self._replace_head(article_id, source=remaining[0])
        else:
            self.remove_article(article_id)
        self.changed = True

    def _replace_head(self, article_id: str, source: str | None = None,
                      group: tuple[str | None] | None = None) -> None:  # fmt: skip
        """A new version of an article's part 0 with another primary source or group."""
        found = self._heads([article_id], rows.ARTICLE_FIELDS)
        if not found:
            return
        head = found[0]
        changes: dict[str, Any] = {}
        if source is not None:
            meta = json.loads(head["meta"])
            if meta["source"] == source:
                return
            meta["source"] = source
            changes["meta"] = json.dumps(meta, ensure_ascii=False)
        if group is not None:
            changes["group_id"] = group[0] or ""
        if int(head["added"]) == self.w:  # this session's row: change it in place
            self.client.upsert(
                self.names.articles,
                [_with_dummy({**head, **changes}, self.names, self.names.articles)],
            )
            return
        self._retire(self.names.articles, [head])
        self.client.insert(self.names.articles, [rows.fresh(head, self.w, **changes)])

    def remove_article(self, article_id: str) -> None:
        quoted = rows.quote(article_id)
        parts = list(rows.query_all(self.client, self.names.articles,
                                    f"article_id == {quoted} and {self._vis()}",
                                    rows.ARTICLE_FIELDS))  # fmt: skip
        if not parts:
            return
        passages = list(rows.query_all(self.client, self.names.passages,
                                       f"article_id == {quoted} and {self._vis()}",
                                       PASSAGE_FIELDS))  # fmt: skip
        self._retire(self.names.passages, passages)
        held = self._source_rows(f"article_id == {quoted}")
        self._retire(self.names.sources, held)
        self._retire(self.names.articles, parts)
        if self._sources is not None:
            for r in held:
                self._sources.pop(r["source"], None)
        if self._articles is not None:
            self._articles.discard(article_id)
        group = next((p["group_id"] for p in parts if int(p["part"]) == 0), "")
        if group:
            self._touched.add(group)
        self._added.pop(article_id, None)
        self.work["articles"] -= 1
        self.work["passages"] -= len(passages)
        self.work["total_len"] -= sum(int(p["dl"]) for p in passages)
        for p in passages:
            for t in set(p["terms"].split()):
                self._df[t] = self._df.get(t, 0) - 1
        self.changed = True

    def regroup(self, threshold: float) -> None:
        added = {a: s for a, s in self._added.items() if s is not None}
        if added or self._touched:
            others = int(self.work["articles"]) > len(added)
            grouping.regroup(SessionGroups(self), added, self._touched, threshold, others)
        self._added.clear()
        self._touched.clear()

    # --- commit -------------------------------------------------------------------------------
    def _write_df(self) -> None:
        """The document frequencies this session changed, each keeping the value before."""
        changed = sorted(t for t, d in self._df.items() if d)
        old = {r["term"]: r for r in rows.get_in(self.client, self.names.terms, changed,
                                                 rows.TERM_FIELDS)}  # fmt: skip
        new = []
        for t in changed:
            was = old.get(t)
            df, version = (int(was["df"]), int(was["version"])) if was else (0, 0)
            new.append({"term": t, "df": df + self._df[t], "version": self.w, "df_before": df,
                        "version_before": version, "_v": [0.0, 0.0]})  # fmt: skip
        for i in range(0, len(new), _BATCH):
            self.client.upsert(self.names.terms, new[i : i + _BATCH])
        self._df.clear()

    def commit(self) -> str:
        """Publish the session (one state row), then collect rows no reader needs any more."""
        if not self.changed and not self._df and self.v > 0:
            return f"milvus-{self.v:08d}"
        self.renew()
        self._flush_sources()
        self._write_df()
        for name in self.names.all():
            self.client.flush(name)
        self.work.update(version=self.w, updated=time.time())
        self.client.upsert(self.names.meta, [{"key": "state", "value": json.dumps(self.work),
                                              "_v": [0.0, 0.0]}])  # fmt: skip
        self.client.flush(self.names.meta)
        published = self.v
        self.state = dict(self.work)
        self._fresh_session()
        # Readers of the commit before this one still see what it removed; older rows go.
        for coll in self.names.versioned():
            self.client.delete(coll, filter=f"removed <= {published}")
        return f"milvus-{self.v:08d}"

    def close(self) -> None:
        """End the session; what it did not commit is undone."""
        self._flush_sources()  # so that the roll-back finds them too
        if self.changed or self._added or self._df:
            roll_back(self.client, self.names, self.v)
        self._articles = self._sources = None
        self.changed = False


def _clip(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes (a VARCHAR's length is counted in bytes)."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")
