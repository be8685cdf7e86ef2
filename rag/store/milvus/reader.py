"""Reading a Milvus index: one commit per thread, searches with filters, passages and articles.

Each thread sees the commit it first read (or last refreshed to): every query adds
``added <= v and removed > v`` for its version ``v``. Dense search is Milvus's vector search;
lexical search takes Milvus's BM25 candidates (the sparse field its BM25 function fills) and
scores them with exact statistics of the commit (``N`` and average length from the published
state, document frequencies from the terms collection), so scores equal the local store's:
Milvus's own BM25 statistics still count rows that later commits removed until they are
collected.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.errors import CorruptIndex, IndexMissing, ModelMismatch
from rag.store.base import passages_of
from rag.store.lexical import TUNED_B, TUNED_K1
from rag.store.milvus import rows
from rag.store.milvus.connect import Names
from rag.types import Article, Chunk, Filters

__all__ = ["MilvusReader", "read_state"]

_MAX_LIMIT = 16_384  # Milvus's largest top-k
_UNSEEN: list[str] = []  # a filter not resolved yet (another thread may clear the cache)
_CANDIDATES = 4  # BM25 candidates asked per result wanted, before exact scoring


def read_state(client: Any, names: Names) -> dict[str, Any] | None:
    """The published state (None before the first commit)."""
    if names.meta not in client.list_collections():
        return None
    found = client.query(names.meta, filter='key == "state"', output_fields=["value"])
    return json.loads(found[0]["value"]) if found else None


class MilvusReader:
    """Read access to the committed index; safe to share between threads."""

    def __init__(self, client: Any, names: Names, location: str, model_id: str | None) -> None:
        self.client, self.names, self.location, self.model_id = client, names, location, model_id
        self._lock = threading.Lock()
        self._latest = self._read()
        self._local = threading.local()
        self._articles: dict[tuple[int, str], Article] = {}
        self._df: dict[tuple[int, str], int] = {}
        self._sources: dict[tuple[int, str], list[str]] = {}
        # Rows by (commit, passage id): a dense search brings its vectors along for MMR, and the
        # retriever asks for the same passages more than once per question.
        self._rows: dict[tuple[int, int], dict[str, Any]] = {}
        self._filtered: dict[tuple[int, Filters], list[str] | None] = {}

    def _read(self) -> dict[str, Any]:
        state = read_state(self.client, self.names)
        if state is None or not state.get("version"):
            raise IndexMissing.at(self.location)
        if self.model_id is not None and state["model_id"] != self.model_id:
            raise ModelMismatch(
                f"index {self.location} was built with {state['model_id']}, not {self.model_id}"
            )
        return state

    @property
    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] | None = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = self._latest
        return state

    @property
    def _v(self) -> int:
        return int(self._state["version"])

    @property
    def version(self) -> str:
        return f"milvus-{self._v:08d}"

    def counts(self) -> tuple[int, int]:
        state = self._state
        return int(state["articles"]), int(state["passages"])

    def refresh(self) -> bool:
        before = self._state
        with self._lock:
            state = self._read()
            if state["version"] != self._latest["version"]:
                self._latest = state
            self._local.state = self._latest
        return self._latest is not before

    # --- search -------------------------------------------------------------------------------
    def _where(self, filters: Filters | None) -> str | None:
        """The filter of this thread's commit and ``filters``; None when nothing can pass."""
        where = rows.visible(self._v)
        if filters is None or not filters.active():
            return where
        key = (self._v, filters)
        articles = self._filtered.get(key, _UNSEEN)
        if articles is _UNSEEN:
            articles = self._articles_matching(filters.source) if filters.source else None
            if len(self._filtered) > 64:
                self._filtered.clear()
            self._filtered[key] = articles
        if articles is not None and not articles:
            return None
        return f"{where} and {rows.filter_expr(filters, articles)}"

    def _articles_matching(self, source: str) -> list[str]:
        """Ids of the articles with a source the glob (or piece of text) matches."""
        probe = Filters(source=source)
        glob = any(ch in source for ch in "*?[")
        expr = rows.visible(self._v)
        like = rows.like_prefilter(source) if glob else rows.like_prefilter(f"*{source}*")
        if like is not None:
            expr += f" and source like {rows.quote(like)}"
        found = rows.query_all(self.client, self.names.sources, expr, ["source", "article_id"])
        if glob:
            return sorted({r["article_id"] for r in found if probe.source_matches(r["source"])})
        return sorted({r["article_id"] for r in found if source in r["source"]})

    def dense_search(
        self, query: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        where = self._where(filters)
        if where is None or k <= 0:
            return []
        found = self.client.search(
            self.names.passages,
            data=[np.asarray(query, dtype=np.float32).tolist()],
            anns_field="vector",
            limit=min(k, _MAX_LIMIT),
            filter=where,
            output_fields=["pid", "vector"],
            search_params={"metric_type": "IP", "params": {"ef": max(64, min(k, _MAX_LIMIT))}},
        )[0]
        v = self._v
        self._remember([{"pid": h["pid"], "vector": h["entity"]["vector"]} for h in found], v)
        hits = [(int(h["pid"]), float(h["distance"])) for h in found]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits

    def _doc_freq(self, terms: Sequence[str]) -> dict[str, int]:
        v = self._v
        out = {t: n for t in terms if (n := self._df.get((v, t))) is not None}
        wanted = [t for t in terms if t not in out]
        if wanted:
            found = rows.get_in(self.client, self.names.terms, wanted, rows.TERM_FIELDS)
            known = {r["term"]: rows.df_at(r, v) for r in found}
            if len(self._df) > 100_000:  # another thread may clear it too: we keep our copy
                self._df.clear()
            for t in wanted:
                out[t] = self._df[(v, t)] = known.get(t, 0)
        return out

    def lexical_search(
        self, query: str, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        state = self._state
        n = int(state["passages"])
        terms = list(dict.fromkeys(rows.encode_terms(query)))
        where = self._where(filters)
        if where is None or k <= 0 or n == 0 or not terms:
            return []
        df = self._doc_freq(terms)
        terms = sorted((t for t in terms if df[t] > 0), key=lambda t: (df[t], t))
        if not terms:
            return []
        found = self.client.search(
            self.names.passages,
            data=[" ".join(terms)],
            anns_field="sparse",
            limit=min(max(_CANDIDATES * k, k + 50), _MAX_LIMIT),
            filter=where,
            output_fields=["terms", "dl"],
            search_params={"metric_type": "BM25", "params": {}},
        )[0]
        # Exact BM25 (Lucene form without the (k1 + 1) factor, rarest term first) as the local
        # store computes it, over the candidates Milvus found.
        k1, b = float(state.get("k1", TUNED_K1)), float(state.get("b", TUNED_B))
        avgdl = float(state["total_len"]) / n
        weights = {t: math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in terms}
        scored = []
        for h in found:
            entity = h["entity"]
            tf: dict[str, int] = {}
            for t in entity["terms"].split():
                tf[t] = tf.get(t, 0) + 1
            norm = k1 * (1.0 - b + b * int(entity["dl"]) / avgdl)
            score = 0.0
            for t in terms:
                f = tf.get(t, 0)
                if f:
                    score += weights[t] * f / (f + norm)
            if score > 0:
                scored.append((int(h["pid"]), score))
        scored.sort(key=lambda p: (-p[1], p[0]))
        return scored[:k]

    def idf(self, terms: Sequence[str]) -> list[float]:
        n = int(self._state["passages"])
        encoded = [rows.encode_term(t) for t in terms]
        df = self._doc_freq(list(dict.fromkeys(encoded)))
        return [math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in encoded]

    def vectors_for(self, ids: Sequence[int]) -> np.ndarray:
        found = self._by_pid(ids, ["pid", "vector"])
        by_id = {int(r["pid"]): r["vector"] for r in found}
        dim = int(self._state["dimension"])
        out = np.zeros((len(ids), dim), dtype=np.float32)
        for i, p in enumerate(ids):
            if int(p) in by_id:
                out[i] = by_id[int(p)]
        return out

    def _remember(self, found: Sequence[dict[str, Any]], v: int) -> None:
        if len(self._rows) > 50_000:  # another thread may clear it too: callers keep copies
            self._rows.clear()
        for r in found:
            key = (v, int(r["pid"]))
            self._rows[key] = {**self._rows.get(key, {}), **r}

    def _by_pid(self, ids: Sequence[int], fields: list[str]) -> list[dict[str, Any]]:
        """Passages of this thread's commit by id (with ``fields``): remembered, or looked up by
        key with the versions checked here (a filter expression would scan on Milvus Lite)."""
        v, out, missing = self._v, [], []
        for i in dict.fromkeys(int(i) for i in ids):
            row = self._rows.get((v, i))
            if row is not None and all(f in row for f in fields):
                out.append(row)
            else:
                missing.append(i)
        if missing:
            found = rows.get_in(self.client, self.names.passages, missing,
                                [*fields, "added", "removed"])  # fmt: skip
            live = [
                {f: r[f] for f in fields} for r in found if int(r["added"]) <= v < int(r["removed"])
            ]
            self._remember(live, v)
            out += live
        return out

    # --- rows ---------------------------------------------------------------------------------
    def article(self, article_id: str) -> Article:
        cached = self._articles.get((self._v, article_id))
        if cached is None:
            self._load_articles([article_id])
            cached = self._articles.get((self._v, article_id))
        if cached is None:
            raise KeyError(article_id)
        return cached

    def _load_articles(self, article_ids: Sequence[str]) -> None:
        """Read the articles not remembered for this commit, all in one query (each filter
        query scans the collection on Milvus Lite, so one per article would cost a scan each)."""
        v = self._v
        missing = [a for a in dict.fromkeys(article_ids) if (v, a) not in self._articles]
        if not missing:
            return
        found = self.client.query(
            self.names.articles,
            filter=f"article_id in {rows.id_list(missing)} and {rows.visible(v)}",
            output_fields=rows.ARTICLE_FIELDS,
        )
        by_id = rows.by_article(found)
        if len(self._articles) + len(by_id) > 2048:
            self._articles.clear()
        for article_id, parts in by_id.items():
            try:
                self._articles[(v, article_id)] = rows.article_from_rows(parts)
            except ValueError as e:
                raise CorruptIndex(f"{e}; run rag check") from None

    def passages(self, ids: Sequence[int]) -> dict[int, tuple[Chunk, Article]]:
        found = self._by_pid(ids, ["pid", "chunk_id", "article_id", "ordinal", "start", "end"])
        self._load_articles([r["article_id"] for r in found])
        return passages_of(
            ((r["pid"], r["chunk_id"], r["article_id"], r["ordinal"], r["start"], r["end"])
             for r in found),
            self.article,
        )  # fmt: skip

    def passage_ids(self, article_id: str) -> list[int]:
        found = rows.query_all(
            self.client, self.names.passages,
            f"article_id == {rows.quote(article_id)} and {rows.visible(self._v)}",
            ["pid", "ordinal"],
        )  # fmt: skip
        return [int(r["pid"]) for r in sorted(found, key=lambda r: int(r["ordinal"]))]

    def sources_of(self, article_id: str) -> list[str]:
        key = (self._v, article_id)
        cached = self._sources.get(key)
        if cached is None:
            found = rows.query_all(
                self.client, self.names.sources,
                f"article_id == {rows.quote(article_id)} and {rows.visible(self._v)}", ["source"],
            )  # fmt: skip
            if len(self._sources) > 8192:
                self._sources.clear()
            cached = self._sources[key] = sorted(r["source"] for r in found)
        return list(cached)

    def group_members(self, group_id: str) -> list[Article]:
        found = rows.query_all(
            self.client, self.names.articles,
            f"group_id == {rows.quote(group_id)} and part == 0 and {rows.visible(self._v)}",
            ["article_id"],
        )  # fmt: skip
        members = [self.article(r["article_id"]) for r in found]
        return sorted(members, key=lambda a: (-len(a.text), a.id))

    def _heads(self, extra: str = "") -> list[dict[str, Any]]:
        expr = f"part == 0 and {rows.visible(self._v)}" + (f" and {extra}" if extra else "")
        return list(rows.query_all(self.client, self.names.articles, expr,
                                   ["article_id", "meta", "group_id"]))  # fmt: skip

    def list_articles(self) -> list[dict[str, Any]]:
        out = []
        for r in self._heads():
            meta = json.loads(r["meta"])
            out.append({
                "id": r["article_id"], "source": meta["source"], "title": meta["title"],
                "date": meta["date"], "group_id": r["group_id"] or None, "chars": meta["chars"],
                "chunks": meta["chunks"],
            })  # fmt: skip
        return sorted(out, key=lambda a: (a["title"], a["id"]))

    def stats(self) -> dict[str, Any]:
        state = self._state
        groups = sorted({r["group_id"] for r in self._heads('group_id != ""')})
        return {
            "articles": int(state["articles"]),
            "chunks": int(state["passages"]),
            "model": state["model_id"],
            "dimension": int(state["dimension"]),
            "snapshot": self.version,
            "updated": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state["updated"])),
            "duplicate_groups": [
                {
                    "group": g,
                    "articles": [
                        {"title": a.title, "source": a.source, "chars": len(a.text)}
                        for a in self.group_members(g)
                    ],
                }
                for g in groups
            ],
            "index_dir": self.location,
            "store": "milvus",
        }
