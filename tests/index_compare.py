"""What makes two indexes "the same index": passage ids and offsets, vectors, sources, groups.

Used by the Ray ingest tests and ``bench/bench_ray.py`` to hold a Ray ingest (into a local folder
or a Milvus Lite file) to a local one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.settings import Settings
from rag.store.base import StoreReader, open_store


@dataclass
class IndexPrint:
    """An index reduced to what must match: every passage with its article, id and offsets."""

    passages: dict[int, tuple[str, int, int, str]]  # id -> (article id, start, end, text hash)
    vectors: dict[int, np.ndarray]
    sources: dict[str, list[str]]  # article id -> its sources
    groups: set[frozenset[str]]  # near-duplicate groups (article ids), singletons left out


def index_print(index: Path | Settings) -> IndexPrint:
    """The print of a local index folder, or of the store ``index`` (Settings) names. A Milvus
    Lite file is let go afterwards (this process's engine for it stopped), so that another
    process can open it next."""
    settings = index if isinstance(index, Settings) else Settings(index_dir=index)
    store = open_store(settings)
    try:
        return _print(store.reader())
    finally:
        if settings.store == "milvus":
            from milvus_lite.server_manager import server_manager_instance

            from rag.store.milvus import MilvusStore

            assert isinstance(store, MilvusStore)
            if store.lite:
                server_manager_instance.release_server(store.uri)


def _print(reader: StoreReader) -> IndexPrint:
    passages: dict[int, tuple[str, int, int, str]] = {}
    sources: dict[str, list[str]] = {}
    by_group: dict[str, set[str]] = {}
    for row in reader.list_articles():
        aid = row["id"]
        sources[aid] = reader.sources_of(aid)
        if row.get("group_id"):
            by_group.setdefault(row["group_id"], set()).add(aid)
        ids = reader.passage_ids(aid)
        for pid, (chunk, _) in reader.passages(ids).items():
            passages[pid] = (aid, chunk.start, chunk.end, chunk.id)
    ids = sorted(passages)
    rows = reader.vectors_for(ids) if ids else np.zeros((0, 0), np.float32)
    return IndexPrint(
        passages,
        dict(zip(ids, rows, strict=True)),
        sources,
        {frozenset(g) for g in by_group.values() if len(g) > 1},
    )


def differences(a: IndexPrint, b: IndexPrint, min_cosine: float = 0.9999) -> list[str]:
    """Why ``b`` is not the same index as ``a`` (empty: it is)."""
    out = []
    if a.passages != b.passages:
        only_a = len(set(a.passages) - set(b.passages))
        only_b = len(set(b.passages) - set(a.passages))
        out.append(
            f"passages differ ({len(a.passages)} vs {len(b.passages)}; {only_a}/{only_b} ids only on one side)"
        )
    if a.sources != b.sources:
        out.append("article sources differ")
    if a.groups != b.groups:
        out.append(
            f"duplicate groups differ: {sorted(map(sorted, a.groups))} vs {sorted(map(sorted, b.groups))}"
        )
    worst = 1.0
    for pid in set(a.vectors) & set(b.vectors):
        u, v = a.vectors[pid], b.vectors[pid]
        cos = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
        worst = min(worst, cos)
    if worst < min_cosine:
        out.append(f"vectors differ: lowest cosine {worst:.6f} < {min_cosine}")
    return out
