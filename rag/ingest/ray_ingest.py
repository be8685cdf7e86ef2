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
  subclass that swaps the reader, the chunker and the embedder; nothing else differs).

Ray retries a task whose worker died and restarts a dead actor and re-runs its call; both are
pure functions of their input and only the driver writes, so a retry never duplicates anything.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from embeddings.backends import resolve_backend
from rag.embedder import CheckedEmbeddings, Embedder
from rag.errors import ClusterUnavailable, SkipFile
from rag.ingest.discovery import parse_raw, read_raw
from rag.ingest.pipeline import Ingestor, Progress, Reading, chunk_passages
from rag.ingest.ray_cluster import connect, ray_failure
from rag.ingest.report import IngestReport
from rag.settings import Settings
from rag.types import Chunk, Document, content_hash

__all__ = ["RayIngestor"]

_GROUP_FILES = 32  # files per reading task
_GROUP_BYTES = 8 << 20  # and at most this many bytes
_READ_AHEAD_BYTES = 256 << 20  # file bytes sent ahead of the writer, as a local ingest reads
_IN_FLIGHT_PER_ACTOR = 2  # embedding calls queued per actor, so none waits for the driver
_ACTOR_START_SECONDS = 600.0  # model load on a busy cluster; longer means it cannot be placed
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
    """One embedding model, loaded once when the actor starts, embedding what it is sent."""

    def __init__(self, settings: Settings) -> None:
        self.embedder = CheckedEmbeddings(settings)
        self.info = (self.embedder.model_id, self.embedder.dimension)  # loads the model now

    def describe(self) -> tuple[str, int]:
        return self.info

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed(texts)


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
        self._ready()
        ray = self._ray
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        # Longest first, as the local embedder batches: similar lengths pad less per piece.
        # An actor of several CPUs gets pieces as many times larger, so its backend's own
        # batching keeps all its threads busy within one call.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        todo = deque(order)
        busy = {i: 0 for i in range(len(self.actors))}
        flying: dict[Any, tuple[list[int], int]] = {}
        try:
            while todo or flying:
                while todo and min(busy.values()) < _IN_FLIGHT_PER_ACTOR:
                    a = min(busy, key=lambda k: busy[k])
                    size = self._batch * self._cpus[a]
                    piece = [todo.popleft() for _ in range(min(size, len(todo)))]
                    ref = self.actors[a].embed.remote([texts[i] for i in piece])
                    flying[ref] = (piece, a)
                    busy[a] += 1
                done, _ = ray.wait(list(flying), num_returns=1)
                for ref in done:
                    piece, a = flying.pop(ref)
                    busy[a] -= 1
                    out[piece] = ray.get(ref)
                    if progress is not None:
                        progress(len(piece))
        finally:
            for ref in flying:  # after an error: what has not run yet need not run
                with contextlib.suppress(Exception):  # never hide the error that got us here
                    ray.cancel(ref)
        return out


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

    def run(self, paths: Iterable[Path | str], sync: bool = True) -> IngestReport:
        paths = list(paths)
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
            actors = [(remote.remote(settings), 1) for _ in range(self.settings.ray_actors or 1)]
            why = f"the cluster has {cpus} CPUs; set RAG_RAY_ACTORS lower"
        else:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            for node, n in nodes:
                # soft: an actor whose node died may be restarted on another one
                where = NodeAffinitySchedulingStrategy(node, soft=True)
                remote = ray.remote(num_cpus=n, scheduling_strategy=where, **options)(EmbedActor)
                actors.append((remote.remote(settings), n))
            why = f"one per node, each with all the node's CPUs ({cpus} in all)"
        return _PoolEmbedder(ray, actors, model_id, self.settings.embed_batch_size, why)

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
