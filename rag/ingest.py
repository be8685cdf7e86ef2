"""Ingestion: files and folders in, a committed index out, with a summary of what happened to each file."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.chunking import chunk_article
from rag.dedup import group_near_duplicates
from rag.errors import InputError, RagError, SkipFile
from rag.index import IndexWriter
from rag.loaders import SUPPORTED_SUFFIXES, load_file
from rag.settings import Settings
from rag.store import IndexStore
from rag.types import Article, Chunk, Document, content_hash
from rag.vectors import VectorPolicy

# (stage, done, total): stages are "read" (files) and "embed" (passages).
Progress = Callable[[str, int, int], None]
_COMMIT_EVERY_SECONDS = (
    60.0  # long ingests commit along the way, so a crash loses at most this much
)


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...
    @property
    def dimension(self) -> int: ...
    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} added",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
            f"{len(self.removed)} removed",
            f"{len(self.skipped)} skipped",
        ]
        line = ", ".join(parts) + f"; {self.chunks_embedded} passages embedded"
        if self.chunks_reused:
            line += f", {self.chunks_reused} reused"
        if not self.added and not self.updated and not self.removed and not self.renamed:
            line += " (nothing changed)"
        return line + f" in {self.seconds:.1f} s"

    def to_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "renamed": self.renamed,
            "removed": self.removed,
            "skipped": [{"source": s, "reason": r} for s, r in self.skipped],
            "chunks_embedded": self.chunks_embedded,
            "chunks_reused": self.chunks_reused,
            "seconds": round(self.seconds, 3),
        }


def embedding_text(title: str, passage: str) -> str:
    """What is embedded and lexically indexed for a passage: its article title carries the topic."""
    return f"{title}\n{passage}" if title else passage


def discover(paths: Iterable[Path | str]) -> list[tuple[Path, str | None]]:
    """Files to ingest, each with the folder it was found under (None for a file named directly)."""
    found: list[tuple[Path, str | None]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise InputError(f"no such file or folder: {raw}")
        path = path.resolve()
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES and not _hidden(f, path):
                    found.append((f, str(path)))
        elif path.is_file():
            found.append((path, None))
        else:
            raise InputError(f"not a regular file or folder: {raw}")
    return found


def _hidden(f: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in f.relative_to(root).parts)


def _read(path: Path, settings: Settings) -> list[Document] | SkipFile:
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return SkipFile(f"unsupported file type {path.suffix or '(none)'}")
    try:
        return load_file(path, settings)
    except SkipFile as e:
        return e
    except (OSError, RagError) as e:
        return SkipFile(f"cannot read: {e}")


def _prefetch(
    files: Sequence[tuple[Path, str | None]], settings: Settings
) -> Iterator[tuple[Path, str | None, list[Document] | SkipFile]]:
    """Load and clean files in a background thread while the caller embeds earlier ones."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = [(p, root, pool.submit(_read, p, settings)) for p, root in files]
        for p, root, fut in futures:
            yield p, root, fut.result()


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


class Ingestor:
    """Brings an index in line with files on disk. One instance per writer session."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        progress: Progress | None = None,
        commit_every: float = _COMMIT_EVERY_SECONDS,
    ) -> None:
        """``commit_every``: seconds between intermediate commits of a long ingest (0: after every
        embedding batch; crash tests use that to put many commits in a small ingest)."""
        if commit_every < 0:
            raise ValueError(f"commit_every must be >= 0, not {commit_every}")
        self.commit_every = commit_every
        self.settings = settings
        self.embedder = embedder
        self.progress = progress or (lambda stage, done, total: None)
        self.store = IndexStore(settings.index_dir, settings.lock_timeout)
        self.vector_policy = VectorPolicy.from_settings(settings)

    def run(self, paths: Iterable[Path | str], sync: bool = True) -> IngestReport:
        started = time.perf_counter()
        files = discover(paths)
        report = IngestReport()
        with self.store.write_lock():
            writer = IndexWriter(
                self.store, self.embedder.model_id, self.embedder.dimension, self.vector_policy
            )
            try:
                self._ingest(files, writer, report, sync)
            finally:
                writer.close()
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, sources: Sequence[str]) -> IngestReport:
        """Remove sources (file paths as stored) from the index."""
        report = IngestReport()
        with self.store.write_lock():
            writer = IndexWriter(
                self.store, self.embedder.model_id, self.embedder.dimension, self.vector_policy
            )
            try:
                for s in sources:
                    if writer.source_article(s) is None:
                        raise InputError(f"not in the index: {s}")
                    writer.remove_source(s)
                    report.removed.append(s)
                self._regroup(writer)
                writer.commit()
            finally:
                writer.close()
        return report

    def _ingest(
        self,
        files: Sequence[tuple[Path, str | None]],
        writer: IndexWriter,
        report: IngestReport,
        sync: bool,
    ) -> None:
        seen: set[str] = set()  # sources produced by this run
        loaded: set[str] = set()  # files read successfully (their missing records are gone)
        pending: list[_Pending] = []
        pending_chunks = 0
        last_commit = time.monotonic()
        total_files = len(files)
        for n, (path, root, result) in enumerate(_prefetch(files, self.settings), start=1):
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
            if pending_chunks >= 4 * self.settings.embed_batch_size:
                self._flush(pending, writer, report)
                pending, pending_chunks = [], 0
                if time.monotonic() - last_commit >= self.commit_every:
                    writer.commit()
                    last_commit = time.monotonic()
        self._flush(pending, writer, report)
        if sync:
            self._remove_missing(files, seen, loaded, writer, report)
        if writer.changed:
            self._regroup(writer)
            writer.commit()

    def _plan(
        self, doc: Document, root: str | None, writer: IndexWriter, report: IngestReport
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
        article = Article(
            id=article_id,
            source=doc.source,
            title=doc.title,
            text=doc.text,
            date=doc.date,
            author=doc.author,
            url=doc.url,
            site=doc.site,
        )
        chunks = chunk_article(
            article_id,
            doc.text,
            chunk_chars=self.settings.chunk_chars,
            overlap_sentences=self.settings.chunk_overlap_sentences,
            paragraph_fill=self.settings.chunk_paragraph_fill,
        )
        texts = [embedding_text(doc.title, c.text) for c in chunks]
        hashes = [content_hash(t) for t in texts]
        return _Pending(article, doc, doc.source, root, chunks, texts, hashes, old is not None)

    def _flush(self, pending: list[_Pending], writer: IndexWriter, report: IngestReport) -> None:
        if not pending:
            return
        all_hashes = [h for p in pending for h in p.hashes]
        cached = writer.cached_vectors(all_hashes)
        to_embed: dict[str, str] = {}
        for p in pending:
            for h, t in zip(p.hashes, p.texts, strict=True):
                if h not in cached:
                    to_embed.setdefault(h, t)
        total = len(to_embed)
        done = report.chunks_embedded  # progress counts passages over the whole run

        def tick(n: int) -> None:
            nonlocal done
            done += n
            self.progress("embed", done, report.chunks_embedded + total)

        if to_embed:
            vecs = self.embedder.embed(list(to_embed.values()), progress=tick)
            cached.update(zip(to_embed.keys(), vecs, strict=True))
        report.chunks_embedded += total
        report.chunks_reused += len(all_hashes) - total
        for p in pending:
            vectors = (
                np.vstack([cached[h] for h in p.hashes])
                if p.hashes
                else np.zeros((0, self.embedder.dimension), np.float32)
            )
            if p.is_update:
                writer.remove_source(p.source)
            if not writer.has_article(p.article.id):  # else: a copy of a file earlier in this run
                writer.add_article(p.article, p.doc.pages, p.chunks, vectors, p.hashes, p.texts)
            writer.add_source(p.source, p.article.id, p.root)
            (report.updated if p.is_update else report.added).append(p.source)

    def _remove_missing(
        self,
        files: Sequence[tuple[Path, str | None]],
        seen: set[str],
        loaded: set[str],
        writer: IndexWriter,
        report: IngestReport,
    ) -> None:
        """Drop sources under the synced folders whose file is gone or no longer yields them.

        A file that exists but failed to load this time keeps its indexed version.
        """
        roots = {root for _, root in files if root is not None}
        on_disk = {str(p) for p, _ in files}
        for source, root in writer.sources():
            if root not in roots or source in seen:
                continue
            file = source.split("#", 1)[0] if source not in on_disk else source
            if file not in on_disk or file in loaded:
                writer.remove_source(source)
                report.removed.append(source)

    def _regroup(self, writer: IndexWriter) -> None:
        groups = group_near_duplicates(
            writer.all_article_texts(), self.settings.duplicate_threshold
        )
        writer.set_groups(groups)
