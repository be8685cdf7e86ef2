"""Which segments to merge, and merging them.

A size-tiered policy, after Lucene's TieredMergePolicy: segments are grouped in tiers by their
live passages (powers of ``factor`` above ``floor``); when a tier holds ``factor`` segments, its
smallest ``factor`` are merged into one of the next tier. So a commit adds one small segment and
a query searches about ``factor - 1`` segments per tier, a few tiers in all. A segment that has
lost more than ``deletes_max`` of its passages is rewritten without them.

A commit performs only merges that write at most ``budget`` passages: ``inline_max``, or four
times what the session added (a long ingest may then rewrite what it built). Larger merges
wait for ``rag compact`` (``Store.compact``), unless the index has more than ``max_segments``
segments. So adding one file never pays for rewriting a large index; the trained IVF of a large
segment is kept by merges into it (rag.store.vectors.merge_indexes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.settings import Settings
from rag.store.lexical import LexicalSegment
from rag.store.segment import Segment
from rag.store.vectors import VectorPolicy, merge_indexes

__all__ = ["MergePolicy", "SegmentSize", "merge"]


@dataclass(frozen=True)
class SegmentSize:
    name: str
    docs: int
    live: int


@dataclass(frozen=True)
class MergePolicy:
    factor: int = 10
    floor: int = 100  # segments up to this many passages share the lowest tier
    inline_max: int = 20_000  # passages a merge may write during a commit
    max_segments: int = 40  # beyond this, the cheapest merge happens whatever it costs
    deletes_max: float = 0.3

    @classmethod
    def from_settings(cls, settings: Settings) -> MergePolicy:
        return cls(factor=settings.merge_factor, inline_max=settings.merge_inline_max)

    def tier(self, live: int) -> int:
        return int(math.log(max(live, self.floor) / self.floor, self.factor) + 1e-9)

    def plan(self, segments: Sequence[SegmentSize], budget: int) -> list[str] | None:
        """The next merge to do (segment names), or None."""
        empty = [s.name for s in segments if s.live == 0]
        if empty:
            return empty  # nothing to write: the merge only drops them
        tiers: dict[int, list[SegmentSize]] = {}
        for s in segments:
            tiers.setdefault(self.tier(s.live), []).append(s)
        for tier in sorted(tiers):
            group = sorted(tiers[tier], key=lambda s: (s.live, s.name))
            if len(group) >= self.factor:
                pick = group[: self.factor]
                if sum(s.live for s in pick) <= budget:
                    return [s.name for s in pick]
        for s in sorted(segments, key=lambda s: s.live):
            if s.docs - s.live > self.deletes_max * s.docs and s.live <= budget:
                return [s.name]
        if len(segments) > self.max_segments:  # the cheapest merge, whatever it costs
            return [s.name for s in sorted(segments, key=lambda s: (s.live, s.name))[: self.factor]]
        return None

    def plan_all(self, segments: Sequence[SegmentSize]) -> list[str] | None:
        """Everything into one segment (compaction), unless that is what there is."""
        if len(segments) > 1 or any(s.live < s.docs for s in segments):
            return [s.name for s in segments]
        return None


def merge(
    parts: Sequence[tuple[Segment, np.ndarray]], dimension: int, policy: VectorPolicy
) -> tuple[np.ndarray, object, LexicalSegment]:
    """(ids, vector index, BM25 segment) of the live passages of ``parts`` (segment, its deleted
    passage ids), in ascending id order. The parts' vector indexes may be changed."""
    keeps = []
    for seg, deleted in parts:
        found, dropped_rows = seg.rows_of(deleted)
        rows = np.setdiff1d(np.arange(seg.info.docs), dropped_rows)
        keeps.append(rows)
    ids = np.concatenate([seg.ids[rows] for (seg, _), rows in zip(parts, keeps, strict=True)])
    order = np.argsort(ids, kind="stable")
    vectors = merge_indexes(
        [(seg.vectors, seg.ids[rows]) for (seg, _), rows in zip(parts, keeps, strict=True)],
        dimension,
        policy,
    )
    lexical = LexicalSegment.merge(
        [(seg.lexical, rows) for (seg, _), rows in zip(parts, keeps, strict=True)], order
    )
    return ids[order], vectors, lexical
