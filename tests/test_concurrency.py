"""Concurrent use: readers during commits, two writer processes, refresh, collected segments."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rag.retrieval.retriever
import rag.store.segment
from rag.errors import IndexBusy
from rag.ingest.pipeline import Ingestor, embedding_text
from rag.settings import Settings
from rag.store.local import LocalStore
from rag.system import System
from rag.types import content_hash
from tests.conftest import HashEmbedder
from tests.synthetic import questions, write_articles

SEED = 4242
_CTX = mp.get_context("forkserver")
_CTX.set_forkserver_preload([__name__])


def _settings(index: Path, **kw: Any) -> Settings:
    return Settings(index_dir=index, embed_batch_size=1, **kw)


def _base(tmp_path: Path, count: int = 30) -> tuple[Path, Path]:
    folder, index = tmp_path / "articles", tmp_path / "index"
    write_articles(folder, count, seed=SEED)
    Ingestor(_settings(index), HashEmbedder()).run([folder])
    return folder, index


def _writer(index: str, folder: str, rounds: int) -> None:
    """Child process: rewrite, add and delete articles, committing after every small batch."""
    root = Path(folder)
    for r in range(rounds):
        # Rewriting the newest articles frees the highest chunk row ids, which the next ones reuse.
        write_articles(root, 3, seed=SEED, version=r + 1, first=27)
        write_articles(root, 2, seed=SEED, version=r + 1, first=(4 * r) % 20)
        write_articles(root, 1, seed=SEED, first=100 + r)
        if r >= 2:
            (root / f"article_{100 + r - 2:03d}.txt").unlink()
        Ingestor(
            _settings(Path(index), lock_timeout=60),
            HashEmbedder(),
            commit_every=0.0,
            flush_passages=4,
        ).run([root])


def _hold_lock(index: str, locked: str, release: str) -> None:
    """Child process: hold the writer lock until ``release`` exists."""
    with LocalStore(index).folder.write_lock():
        Path(locked).touch()
        deadline = time.monotonic() + 30
        while not Path(release).exists() and time.monotonic() < deadline:
            time.sleep(0.01)


def _ingest(index: str, folder: str) -> None:
    Ingestor(
        _settings(Path(index), lock_timeout=60), HashEmbedder(), commit_every=0.0, flush_passages=4
    ).run([folder], sync=False)


def _check_hits(system: System, emb: HashEmbedder, question: str) -> int:
    """Every hit is one snapshot's truth: its text slices its article, its article id is the hash
    of its text, and its dense score is the similarity of the question to that very passage."""
    hits = system.search(question, k=8)
    qvec = emb.embed([question])[0]
    checked = 0
    for h in hits:
        assert h.article.text[h.chunk.start : h.chunk.end] == h.chunk.text
        assert h.article.id == content_hash(h.article.text)
        if h.dense_score is not None and not h.also_in and not h.article.group_id:
            vec = emb.embed([embedding_text(h.article.title, h.chunk.text)])[0]
            assert abs(float(vec @ qvec) - h.dense_score) < 1e-4, (h.chunk.id, h.dense_score)
            checked += 1
    return checked


def test_readers_never_see_a_half_written_index(processes: None, tmp_path: Path) -> None:
    folder, index = _base(tmp_path)
    emb = HashEmbedder()
    system = System(_settings(index), embedder=emb)  # one System shared by threads, as the page
    errors: list[BaseException] = []
    seen: list[set[str]] = []
    checked = [0]
    done = threading.Event()

    def read(n: int) -> None:
        snaps: set[str] = set()
        qs = questions(SEED + n, 50)
        i = 0
        try:
            while not done.is_set() or i < 5:
                q = qs[i % len(qs)]
                checked[0] += _check_hits(system, emb, q)
                answer = system.ask(q)
                reader = system.reader()
                for c in answer.citations:
                    offset = c.start - c.passage_start
                    assert c.passage[offset : offset + len(c.quote)] == c.quote
                    try:  # ids are content hashes: same id, same text, in any snapshot
                        text = reader.article(c.article_id).text
                    except KeyError:
                        continue  # removed by a commit since the answer was made
                    assert text[c.start : c.end] == c.quote
                assert len(reader.list_articles()) == reader.counts()[0]
                snaps.add(reader.version)
                i += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            traceback.print_exc()
            errors.append(e)
        seen.append(snaps)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    writer = _CTX.Process(target=_writer, args=(str(index), str(folder), 6))
    writer.start()
    writer.join(120)
    done.set()
    for t in threads:
        t.join(60)
    assert writer.exitcode == 0
    assert not errors, repr(errors[0])
    assert checked[0] > 50
    # Readers picked up new commits without a restart, and finish on the newest one.
    assert all(len(s) >= 2 for s in seen), [len(s) for s in seen]
    store = LocalStore(index)
    assert system.reader().version == store.reader().version
    assert store.check() == []


def test_second_writer_process_gets_index_busy_then_succeeds_when_waiting(
    processes: None,
    tmp_path: Path,
) -> None:
    folder, index = _base(tmp_path, 5)
    write_articles(folder, 1, seed=SEED, first=50)
    locked, release = tmp_path / "locked", tmp_path / "release"
    holder = _CTX.Process(target=_hold_lock, args=(str(index), str(locked), str(release)))
    holder.start()
    try:
        deadline = time.monotonic() + 30
        while not locked.exists():
            assert time.monotonic() < deadline and holder.exitcode is None
            time.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(IndexBusy) as info:
            Ingestor(_settings(index, lock_timeout=0.3), HashEmbedder()).run([folder])
        assert time.monotonic() - started >= 0.3
        message = str(info.value)
        assert "busy" in message and "RAG_LOCK_TIMEOUT" in message and str(index) in message
        assert LocalStore(index).reader().counts()[0] == 5  # untouched

        # With a long enough timeout the second writer waits for the first and then succeeds.
        threading.Timer(0.5, release.touch).start()
        started = time.monotonic()
        report = Ingestor(_settings(index, lock_timeout=30), HashEmbedder()).run([folder])
        assert time.monotonic() - started >= 0.4
        assert len(report.added) == 1
    finally:
        release.touch()
        holder.join(30)
    assert holder.exitcode == 0


def test_two_writer_processes_are_serialised(processes: None, tmp_path: Path) -> None:
    folder, index = _base(tmp_path, 5)
    a, b = tmp_path / "a", tmp_path / "b"
    write_articles(a, 12, seed=SEED + 1, first=200)
    write_articles(b, 12, seed=SEED + 2, first=300)
    procs = [_CTX.Process(target=_ingest, args=(str(index), str(f))) for f in (a, b)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    store = LocalStore(index)
    assert store.check() == []
    # Neither writer lost the other's articles.
    assert store.reader().counts()[0] == 5 + 12 + 12


def test_collected_snapshot_stays_readable_by_a_reader_holding_it(tmp_path: Path) -> None:
    folder, index = _base(tmp_path, 10)
    system = System(_settings(index), embedder=HashEmbedder())
    reader = system.reader()
    old_version, old_counts = reader.version, reader.counts()
    old_path = LocalStore(index).folder.segments_dir / reader._view.states[0].seg.name
    q = questions(SEED, 1)[0]
    before = [(h.chunk.id, round(h.score, 6)) for h in system.search(q)]
    ids = [a["id"] for a in reader.list_articles()]
    article_texts = {i: reader.article(i).text for i in ids}
    reader._view.articles.clear()  # make the next lookups go to SQLite, not the cache

    # Another "process" commits three times, merging every pair of segments: the segment the
    # reader has is merged away and its folder deleted while the reader has it.
    for n in range(3):
        write_articles(folder, 1, seed=SEED, first=60 + n)
        System(_settings(index, merge_factor=2), embedder=HashEmbedder()).ingest([folder])
    assert not old_path.exists()

    # This thread still sees the old commit in full, from memory and its read transaction.
    assert reader.version == old_version
    assert {i: reader.article(i).text for i in ids} == article_texts
    assert len(reader.list_articles()) == old_counts[0]
    retriever = rag.retrieval.retriever.Retriever(reader, system.embedder, system.settings)
    assert [(h.chunk.id, round(h.score, 6)) for h in retriever.search(q)] == before

    # A refresh moves it to the newest commit.
    assert system.reader() is reader and reader.counts()[0] == old_counts[0] + 3


def test_a_thread_keeps_its_snapshot_while_another_refreshes(tmp_path: Path) -> None:
    folder, index = _base(tmp_path, 10)
    reader = LocalStore(index).reader("hash-64")
    emb = HashEmbedder()
    q = emb.embed(["When will the bridge in Ashford reopen?"])[0]
    hits = reader.dense_search(q, 50)
    rows_before = reader.passages([i for i, _ in hits])
    # Rewrite every article: in the new commit these passage ids are gone.
    write_articles(folder, 10, seed=SEED, version=9)
    Ingestor(_settings(index), emb).run([folder])
    other: dict[str, Any] = {}

    def refresh_elsewhere() -> None:
        other["switched"] = reader.refresh()
        other["rows"] = reader.passages([i for i, _ in hits])
        other["snapshot"] = reader.version

    t = threading.Thread(target=refresh_elsewhere)
    t.start()
    t.join()
    assert other["switched"] and other["snapshot"] != reader.version
    assert other["rows"] != rows_before
    assert reader.passages([i for i, _ in hits]) == rows_before  # but not for this thread
    assert reader.refresh() and reader.version == other["snapshot"]


def test_reader_loading_a_segment_that_gets_collected_retries_the_newer_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, index = _base(tmp_path, 5)
    real_load = rag.store.segment.load_vectors
    raced = []

    def racing_load(path: Path) -> Any:
        if not raced:
            raced.append(path)
            # Two commits land between reading the commit and loading the segment it names,
            # and merge it away: its folder is collected.
            for n in range(2):
                write_articles(folder, 1, seed=SEED, first=70 + n)
                Ingestor(_settings(index, merge_factor=2), HashEmbedder()).run([folder])
            assert not path.exists()
        return real_load(path)

    monkeypatch.setattr(rag.store.segment, "load_vectors", racing_load)
    reader = LocalStore(index).reader("hash-64")
    assert raced and reader.counts()[0] == 7


def test_reader_threads_share_one_sqlite_connection_safely(tmp_path: Path) -> None:
    _, index = _base(tmp_path, 10)
    reader = LocalStore(index).reader("hash-64")
    ids = [a["id"] for a in reader.list_articles()]
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(100):
                for i in ids:
                    rowids = reader.passage_ids(i)
                    rows = reader.passages(rowids)
                    assert sorted(rows) == sorted(rowids)
                    assert np.all(reader.vectors_for(rowids[:1]) != 0)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, repr(errors[0])
