"""Ingesting on a Ray cluster (``rag ingest --ray``): the same index as a local ingest, with the
reading, cleaning, chunking and embedding spread over the cluster's machines.

The driver (this process) stays the one writer, and does what a local ingest does between
reading and embedding: it decides from the content hashes what is unchanged, renamed or already
embedded, so a rerun embeds only what is new. Around that decision it hands work to the cluster:

- **reading**: the driver reads each file's bytes (no shared file system needed) and Ray tasks,
  a group of files each and a bounded window of groups ahead, decode, clean and chunk them;
  results come back in file order, as the local reader yields them;
- **embedding**: an actor pool in which every actor loads the model once (the same backends as
  a local ingest, ``rag.embedder``): by default one actor per node holding all the node's CPUs,
  or ``RAG_RAY_ACTORS`` actors of one CPU each; the actors start loading at once and the first
  reading tasks run meanwhile. A batch of passages is sorted by length, cut into pieces of
  ``RAG_EMBED_BATCH_SIZE`` texts per CPU of the actor and spread over the actors, two pieces
  in flight per actor;
- **writing**: the batches stream back to the driver, which writes them through the store
  interface and commits exactly as :class:`~rag.ingest.pipeline.Ingestor` does (it is a
  subclass that swaps the reader, the chunker and the embedder; nothing else differs). Into a
  store on a server (one with a :class:`~rag.store.base.PassageSink`), the actors write the
  passage rows themselves (``RAG_RAY_WORKER_WRITES``): the driver writes the rest of a batch as
  it sends it, and waits for the actors before a commit.

Ray retries a task whose worker died and restarts a dead actor and re-runs its call; reading and
embedding are pure functions of their input, and an actor writes its rows by id (``upsert``),
so a retry never duplicates anything.
"""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import numpy as np

from embeddings.backends import resolve_backend
from rag.embedder import CheckedEmbeddings, Embedder
from rag.errors import ClusterUnavailable, RagError, SkipFile
from rag.ingest.discovery import parse_raw, read_raw
from rag.ingest.pipeline import (
    Ingestor,
    Progress,
    Reading,
    _Batch,
    _Counter,
    _Pending,
    chunk_passages,
    texts_to_embed,
)
from rag.ingest.ray_cluster import connect, ray_failure
from rag.ingest.report import IngestReport
from rag.settings import Settings
from rag.store.base import NewArticle, PassageRow, PassageSink, SinkWriter, StoreWriter
from rag.types import Chunk, Document, content_hash

__all__ = ["RayIngestor"]

_GROUP_FILES = 32  # files per reading task
_GROUP_BYTES = 8 << 20  # and at most this many bytes
_READ_AHEAD_BYTES = 256 << 20  # file bytes sent ahead of the writer, as a local ingest reads
_IN_FLIGHT_PER_ACTOR = 2  # embedding calls queued per actor, so none waits for the driver
_ACTOR_START_SECONDS = 600.0  # model load on a busy cluster; longer means it cannot be placed
_SETTLE_SECONDS = 120.0  # after an error, the wait for calls that were already running
_RETRIES = 3  # Ray's retries of a task or actor call whose process died

# One file's outcome from a reading task: its documents each with its passages, or the skip.
FileResult = list[tuple[Document, list[Chunk]]] | SkipFile


def read_group(items: Sequence[tuple[str, bytes]], settings: Settings) -> list[FileResult]:
    """A reading task: each file's bytes decoded, cleaned and chunked (runs on the cluster)."""
    out: list[FileResult] = []
    for name, data in items:
        docs = parse_raw(Path(name), data, settings)
        if isinstance(docs, SkipFile):
            out.append(docs)
        else:
            out.append([(d, chunk_passages(content_hash(d.text), d, settings)) for d in docs])
    return out


class EmbedActor:
    """One embedding model, loaded once when the actor starts, embedding what it is sent; with
    a ``sink`` it also writes passage rows into the store (a server) through it."""

    def __init__(self, settings: Settings, sink: PassageSink | None = None) -> None:
        self.embedder = CheckedEmbeddings(settings)
        self.info = (self.embedder.model_id, self.embedder.dimension)  # loads the model now
        self.sink = sink

    def describe(self) -> tuple[str, int]:
        if self.sink is not None:  # the store is reached now, before anything is to be written
            try:
                self.sink.connect()
            except RagError as e:
                raise type(e)(
                    f"a Ray worker on {socket.gethostname()}: {e}; every node must reach the "
                    "store's server (or set RAG_RAY_WORKER_WRITES=false)"
                ) from None
        return self.info

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed(texts)

    def write(self, rows: list[PassageRow], texts: dict[str, str]) -> None:
        """Embed ``texts`` (embed hash -> text) and write the rows, each with the vector of
        its hash (an actor Ray restarted connects again on its first write)."""
        assert self.sink is not None, "write() is for actors given a sink"
        vectors = self.embedder.embed(list(texts.values())) if texts else np.zeros((0, 0))
        self.sink.write(rows, dict(zip(texts, vectors, strict=True)))


class _PoolEmbedder:
    """The Embedder the ingest loop sees: each call spread over the actor pool.

    The actors load the model in the background; the first use of ``dimension`` or ``embed``
    waits for them (and checks their model is the driver's), so the driver reads meanwhile.
    """

    def __init__(
        self, ray: ModuleType, actors: list[tuple[Any, int]], model_id: str, batch: int, why: str
    ) -> None:
        """``actors``: (actor, its CPUs); ``why``: what to say if they do not start in time."""
        self._ray = ray
        self.actors = [a for a, _ in actors]
        self._cpus = [c for _, c in actors]
        self._starting: list[Any] | None = [a.describe.remote() for a in self.actors]
        self._model_id = model_id
        self._dimension = 0
        self._batch = batch
        self._why = why

    def _ready(self) -> None:
        if self._starting is None:
            return
        ray = self._ray
        try:
            infos = ray.get(self._starting, timeout=_ACTOR_START_SECONDS)
        except ray.exceptions.GetTimeoutError:
            raise ClusterUnavailable(
                f"{len(self.actors)} embedding actors did not start within "
                f"{_ACTOR_START_SECONDS:.0f} s ({self._why})"
            ) from None
        for actor_model, _ in infos:
            if actor_model != self._model_id:
                raise ClusterUnavailable(
                    f"the cluster's embedding model ({actor_model}) is not this machine's "
                    f"({self._model_id}): install the same model on every node"
                )
        self._dimension = int(infos[0][1])
        self._starting = None

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        self._ready()
        return self._dimension

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)

        def done(piece: list[int], vectors: np.ndarray) -> None:
            out[piece] = vectors
            if progress is not None:
                progress(len(piece))

        self._spread(
            [len(t) for t in texts],
            lambda a, piece: a.embed.remote([texts[i] for i in piece]),
            done,
        )
        return out

    def write(
        self,
        rows: Sequence[PassageRow],
        texts: dict[str, str],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Passage rows (from ``add_articles_deferred``) embedded and written by the actors:
        ``texts`` are the texts of the rows whose vector is still to be made, by embed hash.
        Each call is sent the texts its rows need; a call
        re-run after its actor died writes the same rows again, under the same ids."""

        def send(actor: Any, piece: list[int]) -> Any:
            part = [rows[i] for i in piece]
            wanted = {r["embed_hash"]: texts[r["embed_hash"]] for r in part
                      if r["embed_hash"] in texts}  # fmt: skip
            return actor.write.remote(part, wanted)

        def done(piece: list[int], _: None) -> None:
            if progress is not None:  # counted in passages, as a local ingest counts them
                progress(sum(rows[i]["embed_hash"] in texts for i in piece))

        lengths = [len(texts.get(r["embed_hash"], "")) for r in rows]
        self._spread(lengths, send, done)

    def _spread(
        self,
        lengths: Sequence[int],
        send: Callable[[Any, list[int]], Any],
        done: Callable[[list[int], Any], None],
    ) -> None:
        """Items cut into pieces and spread over the actors, two pieces in flight per actor;
        ``send(actor, piece)`` starts a call on a piece (item indexes), ``done`` takes its result.
        """
        self._ready()
        ray = self._ray
        # Longest first, as the local embedder batches: similar lengths pad less per piece.
        # An actor of several CPUs gets pieces as many times larger, so its backend's own
        # batching keeps all its threads busy within one call.
        todo = deque(sorted(range(len(lengths)), key=lambda i: -lengths[i]))
        busy = {i: 0 for i in range(len(self.actors))}
        flying: dict[Any, tuple[list[int], int]] = {}
        try:
            while todo or flying:
                while todo and min(busy.values()) < _IN_FLIGHT_PER_ACTOR:
                    a = min(busy, key=lambda k: busy[k])
                    size = self._batch * self._cpus[a]
                    piece = [todo.popleft() for _ in range(min(size, len(todo)))]
                    flying[send(self.actors[a], piece)] = (piece, a)
                    busy[a] += 1
                finished, _ = ray.wait(list(flying), num_returns=1)
                for ref in finished:
                    piece, a = flying.pop(ref)
                    busy[a] -= 1
                    done(piece, ray.get(ref))
        finally:
            # After an error: what has not run yet need not run; what is running is waited
            # for, so a call writing rows ends before the session that owns them is undone.
            for ref in flying:
                with contextlib.suppress(Exception):  # never hide the error that got us here
                    ray.cancel(ref)
            if flying:
                with contextlib.suppress(Exception):
                    _, running = ray.wait(
                        list(flying), num_returns=len(flying), timeout=_SETTLE_SECONDS
                    )
                    for ref in running:  # still running: its actor goes, and its call with it
                        ray.kill(self.actors[flying[ref][1]], no_restart=True)


class RayIngestor(Ingestor):
    """An :class:`Ingestor` whose reading and embedding run on a Ray cluster."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        progress: Progress | None = None,
        address: str | None = None,
        **kwargs: Any,
    ) -> None:
        """``address``: the cluster (see :mod:`rag.ingest.ray_cluster`); None: RAG_RAY_ADDRESS."""
        super().__init__(settings, embedder, progress, **kwargs)
        self.address = settings.ray_address if address is None else address
        self._ray: ModuleType | None = None
        self._chunked: dict[int, tuple[Document, list[Chunk]]] = {}
        self.sink: PassageSink | None = None  # set by run() for a store on a server

    def run(self, paths: Iterable[Path | str], sync: bool = True) -> IngestReport:
        paths = list(paths)
        # A store on a server is reached by the workers too: they write the passages into it.
        # It is reached from here first, so an address nobody can reach is said plainly.
        self.sink = self.store.passage_sink() if self.settings.ray_worker_writes else None
        if self.sink is not None:
            self.sink.connect()
        ray, owned = connect(self.address)
        local = self.embedder
        try:
            self._ray = ray
            self.embedder = self._start_pool(ray, local.model_id)
            return super().run(paths, sync)
        except Exception as e:
            failure = ray_failure(e)
            if failure is None:
                raise
            raise failure from None
        finally:
            self.embedder = local
            self._ray = None
            if owned:
                ray.shutdown()

    def _start_pool(self, ray: ModuleType, model_id: str) -> _PoolEmbedder:
        """The actors, asked to start (not waited for): RAG_RAY_ACTORS of one CPU each, or by
        default one per node holding all that node's CPUs, so the backend's threads match the
        CPUs it has (OpenVINO sizes its threads by the machine, not by Ray's share)."""
        nodes = [
            (n["NodeID"], int(n.get("Resources", {}).get("CPU", 0)))
            for n in ray.nodes()
            if n.get("Alive") and int(n.get("Resources", {}).get("CPU", 0)) >= 1
        ]
        cpus = sum(c for _, c in nodes) or 1
        # "auto" is settled here, on the driver: nodes with other CPUs would otherwise pick
        # other backends, and one index would mix their (slightly different) vectors.
        backend = resolve_backend(self.settings.embed_backend)
        settings = self.settings.model_copy(update={"embed_backend": backend})
        options = {"max_restarts": _RETRIES, "max_task_retries": _RETRIES}
        actors: list[tuple[Any, int]] = []
        if self.settings.ray_actors or not nodes:
            remote = ray.remote(num_cpus=1, **options)(EmbedActor)
            actors = [
                (remote.remote(settings, self.sink), 1)
                for _ in range(self.settings.ray_actors or 1)
            ]
            why = f"the cluster has {cpus} CPUs; set RAG_RAY_ACTORS lower"
        else:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            for node, n in nodes:
                # soft: an actor whose node died may be restarted on another one
                where = NodeAffinitySchedulingStrategy(node, soft=True)
                remote = ray.remote(num_cpus=n, scheduling_strategy=where, **options)(EmbedActor)
                actors.append((remote.remote(settings, self.sink), n))
            why = f"one per node, each with all the node's CPUs ({cpus} in all)"
        return _PoolEmbedder(ray, actors, model_id, self.settings.embed_batch_size, why)

    # --- passages written by the workers (a store on a server) -----------------------------------
    def _submit(
        self,
        pool: ThreadPoolExecutor,
        pending: list[_Pending],
        writer: StoreWriter,
        report: IngestReport,
        queued: list[_Batch],
        embedded: _Counter,
    ) -> None:
        """Into a server: the batch written now, in file order, all but its passage rows, which
        the workers embed and write while this thread goes on (:meth:`_PoolEmbedder.write`)."""
        if self.sink is None:
            super()._submit(pool, pending, writer, report, queued, embedded)
            return
        assert isinstance(self.embedder, _PoolEmbedder)
        deferring = cast(SinkWriter, writer)  # a store with a sink has writers that defer
        hashes = [h for p in pending for h in p.hashes]
        known = writer.cached_vectors(hashes)
        texts = texts_to_embed(pending, known.keys())
        rows: list[PassageRow] = []

        def add(items: list[NewArticle]) -> None:
            rows.extend(deferring.add_articles_deferred(items))

        unknown = np.zeros(self.embedder.dimension, dtype=np.float32)  # each filled by a worker
        self._apply(pending, {h: known.get(h, unknown) for h in hashes}, writer, report, add)
        report.chunks_embedded += len(texts)
        report.chunks_reused += len(hashes) - len(texts)
        report.worker_writes += len(rows)
        embedded.total += sum(r["embed_hash"] in texts for r in rows)
        future = pool.submit(self.embedder.write, rows, texts, embedded.tick) if rows else None
        queued.append(_Batch(pending, texts, {}, future, None))

    def _write(
        self, batch: _Batch, writer: StoreWriter, report: IngestReport, embedded: _Counter
    ) -> None:
        if self.sink is None:
            super()._write(batch, writer, report, embedded)
            return
        self._wait(batch, embedded)  # the rest of the batch was written when it was sent

    def _settle(
        self, queued: list[_Batch], writer: StoreWriter, report: IngestReport, embedded: _Counter
    ) -> None:
        """A commit publishes what the workers wrote, so it waits for every batch they have."""
        if self.sink is not None:
            while queued:
                self._write(queued.pop(0), writer, report, embedded)

    def _reading(self, files: Sequence[tuple[Path, str | None]]) -> Reading:
        """Files read here, parsed and chunked by Ray tasks a window ahead, yielded in order.
        The first window is sent now, not at the first ``next()``: it runs while the actors
        load the model."""
        ray = self._ray
        assert ray is not None, "RayIngestor reads only inside run()"
        task = ray.remote(num_cpus=0, max_retries=_RETRIES)(read_group)
        window = max(2, int(ray.cluster_resources().get("CPU", 1)))
        todo = deque(files)
        flying: deque[tuple[list[tuple[Path, str | None]], int, Any]] = deque()
        sent = [0]  # file bytes in flight

        def send() -> None:
            while todo and len(flying) < window and sent[0] < _READ_AHEAD_BYTES:
                group, raws, size = self._next_group(todo)
                items = [(str(p), d) for (p, _), d in zip(group, raws, strict=True)]
                ref = task.remote([i for i in items if isinstance(i[1], bytes)], self.settings)
                skips = [r if isinstance(r, SkipFile) else None for r in raws]  # bytes sent
                flying.append((group, size, (ref, skips)))
                sent[0] += size

        def results() -> Reading:
            try:
                while todo or flying:
                    send()
                    group, size, (ref, skips) = flying.popleft()
                    sent[0] -= size
                    parsed = iter(ray.get(ref))
                    for (path, root), skip in zip(group, skips, strict=True):
                        result = skip if skip is not None else next(parsed)
                        self._chunked = {}
                        if isinstance(result, SkipFile):
                            yield path, root, result
                            continue
                        self._chunked = {id(d): (d, chunks) for d, chunks in result}
                        yield path, root, [d for d, _ in result]
            finally:
                self._chunked = {}
                for _, _, (ref, _) in flying:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref)

        send()
        return results()

    def _next_group(
        self, todo: deque[tuple[Path, str | None]]
    ) -> tuple[list[tuple[Path, str | None]], list[bytes | SkipFile], int]:
        group: list[tuple[Path, str | None]] = []
        raws: list[bytes | SkipFile] = []
        size = 0
        while todo and len(group) < _GROUP_FILES and (not group or size < _GROUP_BYTES):
            item = todo.popleft()
            raw = read_raw(item[0], self.settings)
            group.append(item)
            raws.append(raw)
            size += len(raw) if isinstance(raw, bytes) else 0
        return group, raws, size

    def _chunks(self, article_id: str, doc: Document) -> list[Chunk]:
        found = self._chunked.get(id(doc))
        if found is not None and found[0] is doc:
            return found[1]
        return super()._chunks(article_id, doc)
