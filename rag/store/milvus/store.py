"""MilvusStore: the index in Milvus collections (``RAG_STORE=milvus``), Lite or server.

One writer at a time: inside a process a lock per index; across processes, on a server, a lease
row in the meta collection (renewed while the session works, expiring when its holder dies). A
Milvus Lite file needs no lease: the engine locks the file, so only one process opens it at all
(a second one gets :class:`~rag.errors.StoreLocked`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rag.errors import IndexBusy, IndexMissing, StoreUnavailable
from rag.settings import Settings
from rag.store.milvus import rows
from rag.store.milvus.connect import LIVE, Names, connect, create_collections, resolve_uri
from rag.store.milvus.reader import MilvusReader, read_state
from rag.store.milvus.writer import MilvusWriter, ServerSink

__all__ = ["MilvusStore"]

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
_LEASE_SECONDS = 120.0


def _process_lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


class MilvusStore:
    """One index: five collections named after a prefix, in a Milvus Lite file or a server."""

    def __init__(self, uri: str, token: str = "", prefix: str = "rag", index_dir: Path | None = None,
                 lock_timeout: float = 10.0) -> None:  # fmt: skip
        self._bad: StoreUnavailable | None = None  # said when the store is first used
        try:
            self.uri, self.lite = resolve_uri(uri, index_dir or Path("rag_index"))
        except StoreUnavailable as e:
            self.uri, self.lite, self._bad = uri, False, e
        self._default = not uri.strip()  # milvus.db in the index folder: made on first ingest
        self.token, self.names, self.lock_timeout = token, Names(prefix), lock_timeout
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MilvusStore:
        return cls(settings.milvus_uri, settings.milvus_token, settings.milvus_collection,
                   settings.index_dir, settings.lock_timeout)  # fmt: skip

    @property
    def location(self) -> str:
        return self.uri if self.names.prefix == "rag" else f"{self.uri}#{self.names.prefix}"

    def client(self, create: bool = False) -> Any:
        if self._bad is not None:
            raise self._bad
        if self._client is None:
            client = connect(self.uri, self.token, self.lite, create)
            # Milvus Lite opens a file with its collections released: load ours before queries.
            for name in set(self.names.all()) & set(client.list_collections()):
                client.load_collection(name)
            self._client = client
        return self._client

    def _missing_file(self) -> bool:
        """A Milvus Lite file not made yet: no index (and nothing to start)."""
        return self.lite and not Path(self.uri).exists()

    def exists(self) -> bool:
        if self._missing_file():
            return False
        state = read_state(self.client(), self.names)
        return state is not None and int(state.get("version", 0)) > 0

    def reader(self, model_id: str | None = None) -> MilvusReader:
        if self._missing_file():
            raise IndexMissing.at(self.location)
        return MilvusReader(self.client(), self.names, self.location, model_id)

    @contextlib.contextmanager
    def writer(self, model_id: str, dimension: int) -> Iterator[MilvusWriter]:
        client = self.client(create=self._default)
        local = _process_lock(f"{self.uri}#{self.names.prefix}")
        if not local.acquire(timeout=self.lock_timeout):
            raise IndexBusy(f"index {self.location} is busy: another writer is running")
        try:
            create_collections(client, self.names, dimension, self.lite)
            with self._lease(client) as renew:
                writer = MilvusWriter(client, self.names, model_id, dimension, renew, self.lite)
                try:
                    yield writer
                finally:
                    writer.close()
        finally:
            local.release()

    @contextlib.contextmanager
    def _lease(self, client: Any) -> Iterator[Callable[[], None]]:
        """Across processes on a server: a lease row no other live writer holds. Yields the
        function that renews it (the session calls it as it works)."""
        if self.lite:
            yield lambda: None
            return
        me, deadline = uuid.uuid4().hex, time.monotonic() + self.lock_timeout

        def holder() -> dict[str, Any] | None:
            found = client.query(self.names.meta, filter='key == "writer"', output_fields=["value"])
            return json.loads(found[0]["value"]) if found else None

        while (held := holder()) is not None and held["expires"] >= time.time():
            if time.monotonic() > deadline:
                raise IndexBusy(f"index {self.location} is busy: another writer holds it")
            time.sleep(0.2)
        renewed = [0.0]

        def renew() -> None:
            if time.monotonic() - renewed[0] < _LEASE_SECONDS / 4:
                return
            lease = json.dumps({"owner": me, "expires": time.time() + _LEASE_SECONDS})
            client.upsert(self.names.meta, [{"key": "writer", "value": lease, "_v": [0.0, 0.0]}])
            renewed[0] = time.monotonic()

        renew()
        try:
            yield renew
        finally:
            held = holder()
            if held is not None and held["owner"] == me:  # not a lease that expired and moved on
                client.delete(self.names.meta, ids=["writer"])

    def passage_sink(self) -> ServerSink | None:
        """On a server, Ray workers write passages too; a Lite file is this process's alone."""
        if self._bad is not None:
            raise self._bad
        return None if self.lite else ServerSink(self.uri, self.token, self.names)

    def check(self) -> list[str]:
        """Counts and ids agree between the collections of the published commit."""
        if self._missing_file():
            raise IndexMissing.at(self.location)
        client = self.client()
        state = read_state(client, self.names)
        if state is None or not state.get("version"):
            raise IndexMissing.at(self.location)
        v, problems = int(state["version"]), []
        vis = rows.visible(v)
        heads: dict[str, dict[str, Any]] = {}
        parts: dict[str, int] = {}
        for r in rows.query_all(client, self.names.articles, vis, ["article_id", "part", "parts",
                                                                   "meta"]):  # fmt: skip
            parts[r["article_id"]] = parts.get(r["article_id"], 0) + 1
            if int(r["part"]) == 0:
                heads[r["article_id"]] = {"parts": int(r["parts"]), **json.loads(r["meta"])}
        passages: dict[str, int] = {}
        total = 0
        df: dict[str, int] = {}
        for r in rows.query_all(client, self.names.passages, vis, ["article_id", "dl", "terms"]):
            passages[r["article_id"]] = passages.get(r["article_id"], 0) + 1
            total += int(r["dl"])
            for t in set(r["terms"].split()):
                df[t] = df.get(t, 0) + 1
        terms = rows.query_all(client, self.names.terms, "df > 0 or df_before > 0",
                               rows.TERM_FIELDS)  # fmt: skip
        stored = {r["term"]: n for r in terms if (n := rows.df_at(r, v))}
        wrong = sorted(t for t in set(df) | set(stored) if df.get(t) != stored.get(t))
        if wrong:
            problems.append(f"{len(wrong)} BM25 term counts disagree with the passages "
                            f"(first: {wrong[0]!r})")  # fmt: skip
        sources: dict[str, list[str]] = {}
        for r in rows.query_all(client, self.names.sources, vis, ["source", "article_id"]):
            sources.setdefault(r["article_id"], []).append(r["source"])
        if len(heads) != int(state["articles"]):
            problems.append(f"{len(heads)} articles stored, the state says {state['articles']}")
        if sum(passages.values()) != int(state["passages"]):
            problems.append(
                f"{sum(passages.values())} passages stored, the state says {state['passages']}"
            )
        if total != int(state["total_len"]):
            problems.append(f"BM25 length total {total}, the state says {state['total_len']}")
        for aid, head in heads.items():
            if parts[aid] != head["parts"]:
                problems.append(f"article {aid}: {parts[aid]} of {head['parts']} text parts")
            if passages.get(aid, 0) != head["chunks"]:
                problems.append(
                    f"article {aid}: {passages.get(aid, 0)} passages of {head['chunks']}"
                )
            if not sources.get(aid):
                problems.append(f"article {aid} has no source")
        for aid in sorted(set(parts) - set(heads)):
            problems.append(f"article {aid}: text parts without part 0")
        for aid in sorted(set(passages) - set(heads)):
            problems.append(f"{passages[aid]} passages of article {aid}, which is not stored")
        for aid in sorted(set(sources) - set(heads)):
            problems.append(f"sources {sorted(sources[aid])} point at missing article {aid}")
        return problems

    def compact(self, model_id: str) -> None:
        """Delete every row no commit shows any more and let Milvus merge its segments."""
        if not self.exists():
            raise IndexMissing.at(self.location)
        with self.writer(model_id, 0) as w:
            for coll in self.names.versioned():
                w.client.delete(coll, filter=f"removed <= {w.v} and removed < {LIVE}")
                with contextlib.suppress(Exception):  # not every deployment offers it
                    w.client.compact(coll)

    def drop(self) -> None:
        """Delete the index's collections (tests and `rag` maintenance)."""
        client = self.client()
        for name in self.names.all():
            if client.has_collection(name):
                client.drop_collection(name)
