"""Ingestion: files and folders in, a committed index out, with a summary of what happened to each file."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedder import Embedder
from rag.errors import InputError, SkipFile
from rag.ingest.chunking import chunk_article
from rag.ingest.discovery import discover, prefetch
from rag.ingest.report import IngestReport
from rag.settings import Settings
from rag.store.base import NewArticle, StoreWriter, open_store
from rag.text.minhash import sketch_texts
from rag.types import Article, Chunk, Document, content_hash

# (stage, done, total): stages are "read" (files) and "embed" (passages).
Progress = Callable[[str, int, int], None]
_PROGRESS_SECONDS = 0.2  # how often embedding progress is reported while waiting for the worker


# What the reading stage yields: (file, root folder, its documents or why it was skipped).
Reading = Generator[tuple[Path, str | None, list[Document] | SkipFile], None, None]


def chunk_passages(article_id: str, doc: Document, settings: Settings) -> list[Chunk]:
    """The passages of an article, as every ingest (local or Ray) cuts them."""
    return chunk_article(
        article_id,
        doc.text,
        chunk_chars=settings.chunk_chars,
        overlap_sentences=settings.chunk_overlap_sentences,
        paragraph_fill=settings.chunk_paragraph_fill,
    )


def embedding_text(title: str, passage: str) -> str:
    """What is embedded and lexically indexed for a passage: its article title carries the topic."""
    return f"{title}\n{passage}" if title else passage


@dataclass
class _Pending:
    article: Article
    doc: Document
    source: str
    root: str | None
    chunks: list[Chunk]
    texts: list[str]
    hashes: list[str]
    is_update: bool
    copy: bool = False  # same text as an article planned earlier in this run, not yet written


def texts_to_embed(pending: Iterable[_Pending], have: Collection[str]) -> dict[str, str]:
    """Embed hash -> text of the passages of ``pending`` whose vector is not in ``have``, once
    each."""
    texts: dict[str, str] = {}
    for p in pending:
        for h, t in zip(p.hashes, p.texts, strict=True):
            if h not in have:
                texts.setdefault(h, t)
    return texts


class _Cancelled(Exception):
    """Raised in the embedding worker when the ingest it works for has failed."""


class _Counter:
    """Passages embedded so far in this run, counted by the worker, read by the ingest thread."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self.cancelled = False

    def tick(self, n: int) -> None:
        if self.cancelled:
            raise _Cancelled
        self.done += n


@dataclass
class _Batch:
    """Planned articles whose new passages are being embedded by the worker."""

    pending: list[_Pending]
    texts: dict[str, str]  # embed hash -> text, sent to the worker
    known: dict[str, np.ndarray]  # embed hash -> vector: from the index, then from the worker
    future: Future[Any] | None
    earlier: _Batch | None  # the batch in flight when this one was queued (shares its texts)


class Ingestor:
    """Brings an index in line with files on disk. One instance per writer session."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        progress: Progress | None = None,
        commit_every: float | None = None,
        flush_passages: int | None = None,
    ) -> None:
        """``commit_every``: seconds between intermediate commits of a long ingest (default
        RAG_COMMIT_SECONDS; 0: after every batch, which crash tests use to put many commits in a
        small ingest). ``flush_passages``:
        passages planned before they go to the embedding worker as one batch (default 16 embedding
        batches: large enough that the worker rarely waits, small enough to commit often)."""
        if commit_every is None:
            commit_every = settings.commit_seconds
        if commit_every < 0:
            raise ValueError(f"commit_every must be >= 0, not {commit_every}")
        if flush_passages is not None and flush_passages < 1:
            raise ValueError(f"flush_passages must be >= 1, not {flush_passages}")
        self.commit_every = commit_every
        self.flush_passages = flush_passages or 16 * settings.embed_batch_size
        self.settings = settings
        self.embedder = embedder
        self.progress = progress or (lambda stage, done, total: None)
        self.store = open_store(settings)
        self._planned: set[str] = set()  # article ids planned in the current run

    def run(self, paths: Iterable[Path | str], sync: bool = True) -> IngestReport:
        started = time.perf_counter()
        files = discover(paths)
        report = IngestReport()
        # Reading starts before the writer opens: a Ray ingest's reading tasks then run while
        # its actors load the model (the writer needs the model's dimension).
        reading = self._reading(files)
        with (
            contextlib.closing(reading),
            self.store.writer(self.embedder.model_id, self.embedder.dimension) as writer,
        ):
            self._ingest(files, reading, writer, report, sync)
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, sources: Sequence[str]) -> IngestReport:
        """Remove sources (file paths as stored) from the index."""
        report = IngestReport()
        with self.store.writer(self.embedder.model_id, self.embedder.dimension) as writer:
            for s in sources:
                if writer.source_article(s) is None:
                    raise InputError(f"not in the index: {s}")
                writer.remove_source(s)
                report.removed.append(s)
            writer.regroup(self.settings.duplicate_threshold)
            writer.commit()
        return report

    def _ingest(
        self,
        files: Sequence[tuple[Path, str | None]],
        reading: Reading,
        writer: StoreWriter,
        report: IngestReport,
        sync: bool,
    ) -> None:
        """Read, plan and write in this thread; embed in a worker thread meanwhile.

        While the worker embeds one batch of passages, this thread writes the batch before it
        into the index (BM25 terms, vectors, rows) and reads and chunks the files of the batch
        after it. Only this thread touches the writer; a batch is written (and may be
        committed) once its vectors are back, in file order.
        """
        seen: set[str] = set()  # sources produced by this run
        loaded: set[str] = set()  # files read successfully (their missing records are gone)
        pending: list[_Pending] = []
        pending_chunks = 0
        last_commit = time.monotonic()
        total_files = len(files)
        embedded = _Counter()
        self._planned = set()
        queued: list[_Batch] = []  # submitted, not yet written: at most two, oldest first
        submitted = 0
        first_batch = max(1, self.settings.embed_batch_size)
        # closing(): after an error the reader stops at once, not when the frame is freed.
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-embed") as pool,
            contextlib.closing(reading),
        ):
            try:
                for n, (path, root, result) in enumerate(reading, start=1):
                    self.progress("read", n, total_files)
                    if isinstance(result, SkipFile):
                        report.skipped.append((str(path), str(result)))
                        continue
                    loaded.add(str(path))
                    for doc in result:
                        seen.add(doc.source)
                        item = self._plan(doc, root, writer, report)
                        if item is not None:
                            pending.append(item)
                            pending_chunks += len(item.chunks)
                    # The first batches are small, so the worker starts after a few files rather
                    # than a full batch's worth; then they double up to flush_passages.
                    if pending_chunks < min(self.flush_passages, first_batch << min(submitted, 20)):
                        continue
                    # Queue this batch behind the one in flight, then write that one while
                    # the worker goes straight on to this.
                    self._submit(pool, pending, writer, report, queued, embedded)
                    pending, pending_chunks = [], 0
                    submitted += 1
                    if len(queued) > 1:
                        self._write(queued.pop(0), writer, report, embedded)
                        if time.monotonic() - last_commit >= self.commit_every:
                            self._settle(queued, writer, report, embedded)
                            # Group what this commit publishes: a commit ends the writer's
                            # session, and with it the list of articles still to be grouped.
                            writer.regroup(self.settings.duplicate_threshold)
                            writer.commit()
                            last_commit = time.monotonic()
                if pending:
                    self._submit(pool, pending, writer, report, queued, embedded)
                while queued:
                    self._write(queued.pop(0), writer, report, embedded)
            finally:
                # After an error here: drop what the worker has not started, stop what it has.
                embedded.cancelled = True
                for b in queued:
                    if b.future is not None:
                        b.future.cancel()
        if sync:
            self._remove_missing(files, seen, loaded, writer, report)
        if writer.changed:
            writer.regroup(self.settings.duplicate_threshold)
            writer.commit()

    def _plan(
        self, doc: Document, root: str | None, writer: StoreWriter, report: IngestReport
    ) -> _Pending | None:
        article_id = content_hash(doc.text)
        old = writer.source_article(doc.source)
        if old == article_id:
            report.unchanged.append(doc.source)
            return None
        if writer.has_article(article_id):
            # Same text already indexed under another name: a rename or a copy. No embedding.
            writer.add_source(doc.source, article_id, root)
            report.renamed.append(doc.source)
            report.unchanged.append(doc.source)
            return None
        copy = article_id in self._planned  # its first copy is still on its way to the index
        self._planned.add(article_id)
        article = Article(
            id=article_id,
            source=doc.source,
            title=doc.title,
            text=doc.text,
            date=doc.date,
            author=doc.author,
            url=doc.url,
            site=doc.site,
            pages=doc.pages,
        )
        if copy:
            return _Pending(article, doc, doc.source, root, [], [], [], old is not None, copy=True)
        chunks = self._chunks(article_id, doc)
        texts = [embedding_text(doc.title, c.text) for c in chunks]
        hashes = [content_hash(t) for t in texts]
        return _Pending(article, doc, doc.source, root, chunks, texts, hashes, old is not None)

    def _reading(self, files: Sequence[tuple[Path, str | None]]) -> Reading:
        """Each file loaded and cleaned, in file order (a Ray ingest reads on the cluster)."""
        return prefetch(files, self.settings)

    def _chunks(self, article_id: str, doc: Document) -> list[Chunk]:
        """The passages of a new article (a Ray ingest has them chunked with the reading)."""
        return chunk_passages(article_id, doc, self.settings)

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        pending: list[_Pending],
        writer: StoreWriter,
        report: IngestReport,
        queued: list[_Batch],
        embedded: _Counter,
    ) -> None:
        """Send the passages of ``pending`` that have no vector yet to the worker, and append
        the batch to ``queued``.

        Vectors come from the index (passages embedded before, by any run), from the batch
        queued before this one (still being embedded) or from this batch's own embedding.
        """
        earlier = queued[-1] if queued else None
        all_hashes = [h for p in pending for h in p.hashes]
        known = writer.cached_vectors(all_hashes)
        coming = earlier.texts if earlier is not None else {}  # being embedded already
        texts = texts_to_embed(pending, known.keys() | coming.keys())
        embedded.total += len(texts)
        future = (
            pool.submit(self.embedder.embed, list(texts.values()), embedded.tick) if texts else None
        )
        queued.append(_Batch(pending, texts, known, future, earlier))

    def _settle(
        self, queued: list[_Batch], writer: StoreWriter, report: IngestReport, embedded: _Counter
    ) -> None:
        """Before an intermediate commit: what must be written first (nothing, here; a Ray
        ingest whose workers write the passages waits for them)."""

    def _wait(self, batch: _Batch, embedded: _Counter) -> Any:
        """The result of ``batch``'s worker job, reporting progress while it runs."""
        if batch.future is None:
            return None
        while True:
            try:
                result = batch.future.result(timeout=_PROGRESS_SECONDS)
                break
            except FutureTimeout:
                self.progress("embed", embedded.done, embedded.total)
        self.progress("embed", embedded.done, embedded.total)
        return result

    def _write(
        self, batch: _Batch, writer: StoreWriter, report: IngestReport, embedded: _Counter
    ) -> None:
        """Wait for ``batch``'s vectors (reporting progress meanwhile), then write it."""
        vectors = batch.known
        result = self._wait(batch, embedded)
        if result is not None:
            vectors.update(zip(batch.texts.keys(), result, strict=True))
        all_hashes = [h for p in batch.pending for h in p.hashes]
        if batch.earlier is not None:  # written before this one, so its vectors are all there
            vectors.update((h, batch.earlier.known[h]) for h in all_hashes if h not in vectors)
            batch.earlier = None  # let the earlier batch's vectors go
        report.chunks_embedded += len(batch.texts)
        report.chunks_reused += len(all_hashes) - len(batch.texts)
        self._apply(batch.pending, vectors, writer, report, writer.add_articles)

    def _apply(
        self,
        pending: list[_Pending],
        vectors: dict[str, np.ndarray],
        writer: StoreWriter,
        report: IngestReport,
        add: Callable[[list[NewArticle]], Any],
    ) -> None:
        """Planned articles written with their vectors, ``add`` writing the new ones."""
        # Old versions go first, then the new articles as one batch (one vector and one BM25
        # add), then the sources pointing at them, in file order.
        new: dict[str, _Pending] = {}
        for p in pending:
            if p.copy:
                continue
            if p.is_update:
                writer.remove_source(p.source)
            if p.article.id not in new and not writer.has_article(p.article.id):
                new[p.article.id] = p
        # Near-duplicate sketches are made here, while the worker embeds the next batch, so the
        # grouping at the end has only the candidate lookups left to do.
        sketches = sketch_texts([p.article.text for p in new.values()])
        items = []
        for p, sketch in zip(new.values(), sketches, strict=True):
            rows = (
                np.vstack([vectors[h] for h in p.hashes])
                if p.hashes
                else np.zeros((0, self.embedder.dimension), np.float32)
            )
            items.append(NewArticle(p.article, p.chunks, rows, p.hashes, p.texts, sketch))
        add(items)
        for p in pending:
            writer.add_source(p.source, p.article.id, p.root)
            if p.copy:  # written like a rename now that the first copy is in the index
                report.renamed.append(p.source)
                report.unchanged.append(p.source)
            else:
                (report.updated if p.is_update else report.added).append(p.source)

    def _remove_missing(
        self,
        files: Sequence[tuple[Path, str | None]],
        seen: set[str],
        loaded: set[str],
        writer: StoreWriter,
        report: IngestReport,
    ) -> None:
        """Drop sources under the synced folders whose file is gone or no longer yields them.

        A file that exists but failed to load this time keeps its indexed version.
        """
        roots = {root for _, root in files if root is not None}
        if not roots:
            return  # only files were named: nothing is synced
        on_disk = {str(p) for p, _ in files}
        for source, root in writer.sources(roots):
            if root not in roots or source in seen:
                continue
            file = source.split("#", 1)[0] if source not in on_disk else source
            if file not in on_disk or file in loaded:
                writer.remove_source(source)
                report.removed.append(source)
