"""Segments and their merges: the policy's choices, what merging keeps, and compaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.settings import Settings
from rag.store.local import LocalStore
from rag.store.merge import MergePolicy, SegmentSize
from rag.system import System
from tests.conftest import HashEmbedder
from tests.store_contract import MODEL, corpus, fill
from tests.synthetic import write_articles


def sizes(*lives: int, docs: int | None = None) -> list[SegmentSize]:
    return [SegmentSize(f"s{i}", docs or n, n) for i, n in enumerate(lives)]


def test_policy_merges_a_full_tier_within_the_budget() -> None:
    policy = MergePolicy(factor=3, floor=10)
    assert policy.plan(sizes(1, 2), budget=100) is None  # tier 0 not full
    assert policy.plan(sizes(5, 1, 2), budget=100) == ["s1", "s2", "s0"]  # smallest first
    # Tiers by live passages: 10-29 is tier 0 (the floor), 30-89 tier 1, 90-269 tier 2.
    assert policy.tier(9) == policy.tier(29) == 0 and policy.tier(30) == 1 and policy.tier(90) == 2
    assert policy.plan(sizes(40, 50, 60, 1), budget=100) is None  # tier 1 full, over budget
    assert policy.plan(sizes(40, 50, 60, 1), budget=150) == ["s0", "s1", "s2"]
    # An empty segment is dropped at no cost; a segment that lost a third is rewritten.
    assert policy.plan([SegmentSize("gone", 50, 0), *sizes(60)], budget=1) == ["gone"]
    assert policy.plan([SegmentSize("holes", 100, 60), *sizes(500)], budget=100) == ["holes"]
    assert policy.plan([SegmentSize("holes", 100, 60)], budget=50) is None
    # Past max_segments the cheapest merge happens whatever the budget.
    crowded = MergePolicy(factor=3, floor=10, max_segments=4)
    assert crowded.plan(sizes(1000, 2000, 3000, 4000, 5000), budget=1) == ["s0", "s1", "s2"]
    assert policy.plan_all(sizes(7)) is None and policy.plan_all(sizes(7, 8)) == ["s0", "s1"]


def test_many_small_commits_keep_few_segments_and_large_merges_wait(tmp_path: Path) -> None:
    settings = {"merge_factor": 3, "merge_inline_max": 40}
    store = LocalStore.from_settings(Settings(index_dir=tmp_path / "i", **settings))  # type: ignore[arg-type]
    items = corpus(36, seed=4)
    counts = []
    for i in range(0, len(items), 2):
        fill(store, items[i : i + 2])
        counts.append(len(store.reader(MODEL).segments()))
    assert max(counts) <= 8  # without merging it would be 18
    segs = store.reader(MODEL).segments()
    # The ones past the inline budget wait for compaction, which merges everything.
    assert any(s["live"] > 10 for s in segs) and len(segs) > 1
    before = {q: store.reader(MODEL).lexical_search(q, 5) for q in ("bridge", "ferry cost")}
    store.compact(MODEL)
    reader = store.reader(MODEL)
    assert len(reader.segments()) == 1 and store.check() == []
    assert {q: reader.lexical_search(q, 5) for q in before} == before
    folder = tmp_path / "i" / "segments"
    with store.writer(MODEL, 64) as w:  # the next commit collects the merged-away folders
        w.commit()
    assert len(list(folder.iterdir())) <= 2


def test_merging_keeps_a_trained_ivf_and_drops_deleted_passages(
    tmp_path: Path, corpus_dir: Path
) -> None:
    emb = HashEmbedder()
    system = System(Settings(index_dir=tmp_path / "index", vector_exact_max=6), embedder=emb)
    more = tmp_path / "more"
    write_articles(more, 6, seed=1)
    system.ingest([more])  # more than 6 passages: an IVF segment
    first = system.reader().segments()  # type: ignore[attr-defined]
    assert len(first) == 1 and first[0]["vectors"].startswith("ivf")
    system.ingest([corpus_dir])  # a small flat segment beside it
    system.delete([str(p) for p in sorted(more.iterdir())[:2]])
    reader = system.reader()
    segs = reader.segments()  # type: ignore[attr-defined]
    assert len(segs) == 2 and segs[0]["live"] < segs[0]["docs"]
    lexical = reader.lexical_search("bridge repair", 5)
    top = system.search("bridge repair", k=1)[0].chunk.id
    system.compact()
    reader = system.reader()
    (merged,) = reader.segments()  # type: ignore[attr-defined]
    assert merged["vectors"] == first[0]["vectors"]  # same lists, same nprobe: not retrained
    assert merged["live"] == merged["docs"] == reader.counts()[1]  # deletions dropped
    # BM25 is exact across segments; vectors moved into the IVF are now 8-bit codes.
    assert reader.lexical_search("bridge repair", 5) == lexical
    assert system.search("bridge repair", k=1)[0].chunk.id == top
    assert system.store.check() == []


@pytest.mark.parametrize("factor", [2, 10])
def test_a_reader_sees_the_same_answers_before_and_after_merges(
    tmp_path: Path, factor: int
) -> None:
    items = corpus(24, seed=8)
    store = LocalStore.from_settings(Settings(index_dir=tmp_path / "i", merge_factor=factor))
    reader = None
    for i in range(0, len(items), 3):
        fill(store, items[i : i + 3])
        if reader is None:
            reader = store.reader(MODEL)
    assert reader is not None
    old = reader.lexical_search("harbour wall", 6)
    reader.refresh()
    new = reader.lexical_search("harbour wall", 6)
    fresh = LocalStore(tmp_path / "i").reader(MODEL).lexical_search("harbour wall", 6)
    assert new == fresh and old != new
