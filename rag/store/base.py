"""The store interface: what the rest of the system needs of an index, whatever engine holds it.

Three small protocols. A :class:`Store` is one index (a local folder, a Milvus collection set);
it hands out :class:`StoreReader` views for questions and one :class:`StoreWriter` session at a
time for ingestion. Passages are named by ``int`` ids (int64) chosen by the store; articles by
their content hash. Searches take the :class:`~rag.types.Filters` value, so an engine that can
filter inside its search does. :func:`open_store` picks the backend named by ``RAG_STORE``.

A store that other processes can reach (a server) may also hand out a :class:`PassageSink`,
through which Ray workers write the passage rows of the one write session themselves.

Every backend passes the contract suite in ``tests/store_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag.errors import CorruptIndex
from rag.types import Article, Chunk, Filters

if TYPE_CHECKING:
    from rag.settings import Settings
    from rag.text.minhash import Sketch

__all__ = [
    "NewArticle",
    "PassageRow",
    "PassageSink",
    "SinkWriter",
    "Store",
    "StoreReader",
    "StoreWriter",
    "open_store",
    "passages_of",
]

# (passage id, score), best first: cosine for dense search, BM25 for lexical search.
ScoredIds = list[tuple[int, float]]


@dataclass(frozen=True)
class NewArticle:
    """An article to add, with its passages; the four passage sequences line up."""

    article: Article  # its pages (PDF page spans) are stored with it
    chunks: Sequence[Chunk]
    vectors: np.ndarray  # one row per passage
    embed_hashes: Sequence[str]
    lexical_texts: Sequence[str]  # what BM25 indexes for each passage
    sketch: Sketch | None = None  # near-duplicate sketch of the text (made here when missing)


class StoreReader(Protocol):
    """A point-in-time view of the committed index; safe to share between threads.

    Each thread sees one commit until it calls :meth:`refresh`, so the lookups that make up one
    search never mix two commits.
    """

    @property
    def version(self) -> str:
        """Names the commit this thread sees (changes with every commit)."""
        ...

    def counts(self) -> tuple[int, int]:
        """(articles, passages) in the commit this thread sees."""
        ...

    def refresh(self) -> bool:
        """Move this thread to the newest commit; True if what it sees changed."""
        ...

    def dense_search(self, query: np.ndarray, k: int, filters: Filters | None = None) -> ScoredIds:
        """Top ``k`` (passage id, cosine) among the passages that pass ``filters``."""
        ...

    def lexical_search(self, query: str, k: int, filters: Filters | None = None) -> ScoredIds:
        """Top ``k`` (passage id, BM25 score > 0) among the passages that pass ``filters``."""
        ...

    def idf(self, terms: Sequence[str]) -> list[float]:
        """BM25 idf of already tokenised terms over the whole index (unknown terms: highest)."""
        ...

    def passages(self, ids: Sequence[int]) -> dict[int, tuple[Chunk, Article]]:
        """The passages with these ids and their articles; unknown ids are left out."""
        ...

    def vectors_for(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these passages, one row each (float32)."""
        ...

    def article(self, article_id: str) -> Article:
        """One article; KeyError when it is not in the index."""
        ...

    def passage_ids(self, article_id: str) -> list[int]:
        """The passages of an article, in text order."""
        ...

    def sources_of(self, article_id: str) -> list[str]:
        """Every source (file path, ``file#record``) that holds this article's text, sorted."""
        ...

    def group_members(self, group_id: str) -> list[Article]:
        """The articles of a near-duplicate group, fullest first."""
        ...

    def list_articles(self) -> list[dict[str, Any]]:
        """``{id, source, title, date, group_id, chars, chunks}`` per article, by title."""
        ...

    def stats(self) -> dict[str, Any]:
        """What ``rag stats --json`` prints."""
        ...


class StoreWriter(Protocol):
    """The one write session of an index; nothing is visible to readers before :meth:`commit`."""

    @property
    def changed(self) -> bool:
        """Whether anything was changed since the last commit."""
        ...

    def source_article(self, source: str) -> str | None: ...

    def sources(self, roots: Collection[str] | None = None) -> list[tuple[str, str | None]]:
        """Every (source, root folder it was synced from or None); with ``roots``, only the
        sources synced from those folders."""
        ...

    def has_article(self, article_id: str) -> bool: ...

    def cached_vectors(self, embed_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for passages with these embedding-text hashes."""
        ...

    def add_articles(self, items: Sequence[NewArticle]) -> None:
        """Insert articles (not yet in the index) with their passages, vectors and BM25 texts."""
        ...

    def add_source(self, source: str, article_id: str, root: str | None) -> None:
        """Point ``source`` at an article, dropping whatever it pointed at before."""
        ...

    def remove_source(self, source: str) -> None:
        """Forget a source; its article leaves the index when no other source holds it."""
        ...

    def remove_article(self, article_id: str) -> None: ...

    def regroup(self, threshold: float) -> None:
        """Bring the near-duplicate groups up to date with the articles added and removed since
        the last call (groups: connected components of pairs whose shingle containment is at
        least ``threshold``; the group id is its fullest article's id)."""
        ...

    def commit(self) -> str:
        """Publish every change atomically; returns the new version."""
        ...

    def close(self) -> None:
        """End the session; changes not committed are dropped."""
        ...


# A passage row as a store writes it, handed out by SinkWriter.add_articles_deferred: opaque to
# the caller but for its "embed_hash" (the hash of the text its vector is made of).
PassageRow = dict[str, Any]


class SinkWriter(StoreWriter, Protocol):
    """The write session of a store with a :class:`PassageSink`."""

    def add_articles_deferred(self, items: Sequence[NewArticle]) -> list[PassageRow]:
        """:meth:`StoreWriter.add_articles` but for the passage rows, which are returned for a
        :class:`PassageSink` to write before the commit. Their ids are taken now, in order, and
        the session counts them: the commit publishes them, a roll-back removes them. The
        vectors of ``items`` may be placeholders for the rows the sink is given vectors for."""
        ...


class PassageSink(Protocol):
    """Writes the passage rows of a store's write session from another process (a Ray worker).
    Sent there by pickling: it holds where the store is, never an open connection."""

    def connect(self) -> None:
        """Reach the store now (StoreUnavailable when it cannot), so a worker that cannot is
        found before it is sent anything."""
        ...

    def write(self, rows: Sequence[PassageRow], vectors: Mapping[str, np.ndarray]) -> None:
        """Write the rows, each row whose embed hash is in ``vectors`` taking that vector. Rows
        are written by id: writing one twice (a retried call) leaves one."""
        ...


class Store(Protocol):
    """One index, wherever it lives."""

    @property
    def location(self) -> str:
        """Where the index is, as the user named it (a folder, a URI)."""
        ...

    def exists(self) -> bool:
        """Whether anything was ever committed."""
        ...

    def reader(self, model_id: str | None = None) -> StoreReader:
        """A view of the newest commit; IndexMissing, CorruptIndex or ModelMismatch if it
        cannot be read with ``model_id``."""
        ...

    def writer(self, model_id: str, dimension: int) -> AbstractContextManager[StoreWriter]:
        """The write session, exclusive (IndexBusy after ``RAG_LOCK_TIMEOUT``); closed on exit."""
        ...

    def check(self) -> list[str]:
        """Everything found wrong with the stored index (empty: consistent)."""
        ...

    def compact(self, model_id: str) -> None:
        """Merge the stored index into as few parts as it allows (a maintenance step)."""
        ...

    def passage_sink(self) -> PassageSink | None:
        """A sink other processes can write this index's passages through (then the writers
        are each a :class:`SinkWriter`); None when only the writing process can write it (a
        folder, an embedded engine's file)."""
        ...


def open_store(settings: Settings) -> Store:
    """The store ``settings.store`` names: the folder ``settings.index_dir``, or Milvus at
    ``settings.milvus_uri`` (nothing is opened yet)."""
    if settings.store == "local":
        from rag.store.local import LocalStore

        return LocalStore.from_settings(settings)
    if settings.store == "milvus":
        from rag.store.milvus import MilvusStore

        return MilvusStore.from_settings(settings)
    raise ValueError(f"unknown store {settings.store!r}")  # Settings validates it first


def passages_of(
    found: Iterable[tuple[int, str, str, int, int, int]], article: Callable[[str], Article]
) -> dict[int, tuple[Chunk, Article]]:
    """Passage id -> (Chunk, Article) from stored (pid, chunk id, article id, ordinal, start, end):
    the text is the article's slice, and a passage whose article is missing is damage."""
    out: dict[int, tuple[Chunk, Article]] = {}
    for pid, chunk_id, article_id, ordinal, start, end in found:
        try:
            a = article(article_id)
        except KeyError:
            raise CorruptIndex(f"passage {pid} belongs to no article; run rag check") from None
        start, end = int(start), int(end)
        out[int(pid)] = (
            Chunk(chunk_id, article_id, int(ordinal), start, end, a.text[start:end]),
            a,
        )
    return out
