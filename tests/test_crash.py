"""Crash safety: an ingest killed with SIGKILL at a random moment leaves the last committed index.

A child process ingests ~40 generated articles with the fake embedder, committing after every
small batch, and logs each commit: "begin" with the article ids it is about to publish, "done"
after ``commit`` returned. The parent kills it after a seeded random delay, then checks that the
index opens (or is cleanly absent before the first commit), passes the full integrity check, holds
exactly the last committed state (the last "done", or the "begin" after it when the kill landed
inside a commit), answers questions, and that rerunning the ingest completes it without embedding
again what was committed. Where a random kill lands depends on the machine's timing, so each run
also makes kills that land inside a commit for certain: the child stops at a chosen fsync call
and waits to be killed. Children are forked from a preloaded server so a trial costs little more
than the ingest itself.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from rag.cli.main import run as cli_run
from rag.errors import CorruptIndex, IndexMissing
from rag.ingest.pipeline import Ingestor, embedding_text
from rag.settings import Settings
from rag.store import lexical_files
from rag.store.folder import IndexStore, file_sha256, verify_snapshot
from rag.store.lexical import LexicalIndex
from rag.store.reader import IndexReader
from rag.system import System
from tests.conftest import HashEmbedder
from tests.synthetic import questions, write_articles

N_ARTICLES = 40
SEED = 20240611

_CTX = mp.get_context("forkserver")
# The server imports this module (and so rag, numpy, faiss) once; each child is a cheap fork of it.
_CTX.set_forkserver_preload([__name__])


def _settings(index_dir: Path) -> Settings:
    # With flush_passages=4 and commit_every=0 (the crash child): a commit every one or two articles.
    return Settings(index_dir=index_dir, embed_batch_size=1, lock_timeout=30)


def _child(
    index_dir: str, folder: str, log_path: str, fsync: str, slow_sync: bool, pause_at: int
) -> None:
    """Ingest ``folder`` into ``index_dir``, logging commits to ``log_path`` (runs in the child).

    ``pause_at`` > 0: the child logs "paused" at its ``pause_at``-th fsync call (all of them come
    from a commit's write-and-sync phase) and waits there to be killed.
    """
    from rag.store.writer import IndexWriter

    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(event: dict[str, Any]) -> None:
        os.write(fd, (json.dumps(event) + "\n").encode())

    real_commit = IndexWriter.commit

    def logged_commit(self: IndexWriter) -> Any:
        ids = sorted(r[0] for r in self.db.execute("SELECT id FROM articles"))
        log({"event": "begin", "ids": ids})
        version = real_commit(self)
        log({"event": "done", "snapshot": version, "ids": ids})
        return version

    IndexWriter.commit = logged_commit  # type: ignore[method-assign]
    real_fsync = os.fsync
    fsyncs = 0

    def counted_fsync(fileno: Any) -> None:
        nonlocal fsyncs
        fsyncs += 1
        if fsyncs == pause_at:
            log({"event": "paused"})
            time.sleep(120)
        if fsync == "slow":
            # Stretch every fsync so that most kills land inside a commit's write-and-sync phase.
            real_fsync(fileno)
            time.sleep(0.001)
        # fsync == "none": a SIGKILL loses nothing the kernel already has (fsync only matters for
        # power loss), so most trials skip it and run (and get killed) faster.

    os.fsync = counted_fsync
    if slow_sync:
        # Stretch the removal of vanished files, so that kills land in the sync phase too.
        real_remove = IndexWriter.remove_source

        def slow_remove(self: IndexWriter, source: str) -> None:
            log({"event": "removal"})
            time.sleep(0.01)
            real_remove(self, source)

        IndexWriter.remove_source = slow_remove  # type: ignore[method-assign]
    log({"event": "start"})
    Ingestor(_settings(Path(index_dir)), HashEmbedder(), commit_every=0.0, flush_passages=4).run(
        [folder]
    )
    log({"event": "finished", "fsyncs": fsyncs})


def _events(log_path: Path) -> list[dict[str, Any]]:
    if not log_path.exists():
        return []
    lines = log_path.read_text().split("\n")
    return [json.loads(line) for line in lines[:-1]]  # the last piece is "" or a torn line


def _spawn(
    index: Path, folder: Path, log: Path, fsync: str, slow_sync: bool, pause_at: int = 0
) -> Any:
    args = (str(index), str(folder), str(log), fsync, slow_sync, pause_at)
    proc = _CTX.Process(target=_child, args=args)
    proc.start()
    deadline = time.monotonic() + 60
    while not any(e["event"] == "start" for e in _events(log)):
        assert proc.exitcode is None, "the ingest child died before starting"
        assert time.monotonic() < deadline, "the ingest child never started"
        time.sleep(0.005)
    return proc


def _reference_run(index: Path, folder: Path, log: Path, fsync: str, slow_sync: bool) -> float:
    """Ingest to the end once: how long a full run takes after its start line (the log's last
    line, "finished", also says how many fsync calls the run made)."""
    proc = _spawn(index, folder, log, fsync, slow_sync)
    started = time.monotonic()
    proc.join(120)
    assert proc.exitcode == 0
    assert _events(log)[-1]["event"] == "finished"
    return time.monotonic() - started


def _allowed_states(events: list[dict[str, Any]], before: frozenset[str] | None) -> list[Any]:
    """States the index may hold after a kill: the last committed one, or the one being committed."""
    last_done: frozenset[str] | None = before
    pending: frozenset[str] | None = None
    for e in events:
        if e["event"] == "begin":
            pending = frozenset(e["ids"])
        elif e["event"] == "done":
            last_done, pending = frozenset(e["ids"]), None
    return [last_done] if pending is None else [last_done, pending]


def _index_ids(index: Path) -> frozenset[str] | None:
    """Article ids the committed index holds (None: no index), after the full integrity check."""
    store = IndexStore(index)
    try:
        reader = IndexReader(store, "hash-64")
    except IndexMissing:
        return None
    assert verify_snapshot(store.current_snapshot(), checksums=True) == []
    ids = frozenset(a["id"] for a in reader.list_articles())
    assert reader.manifest.articles == len(ids)
    return ids


def _answers(index: Path, ids: frozenset[str]) -> None:
    system = System(_settings(index), embedder=HashEmbedder())
    for q in questions(SEED, 3):
        hits = system.search(q)
        assert hits and all(h.article.id in ids for h in hits)
        answer = system.ask(q)
        for c in answer.citations:
            assert system.reader().article(c.article_id).text[c.start : c.end] == c.quote


def _trial(
    rng: random.Random,
    index: Path,
    folder: Path,
    log: Path,
    duration: float,
    before: frozenset[str] | None,
    final: frozenset[str],
    fsync: str = "none",
    slow_sync: bool = False,
    after: str | None = None,
    pause_at: int = 0,
) -> str:
    """One kill: spawn, kill after a random delay, check the state, rerun to completion."""
    log.unlink(missing_ok=True)
    proc = _spawn(index, folder, log, fsync, slow_sync, pause_at)
    if after is None:
        time.sleep(rng.uniform(0.0, duration * 1.05) if duration else 0.0)
    else:  # aim at a phase: kill shortly after the child logs ``after`` for the first time
        deadline = time.monotonic() + 60
        while proc.exitcode is None and not any(e["event"] == after for e in _events(log)):
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, duration))
    proc.kill()
    proc.join(30)
    events = _events(log)
    allowed = _allowed_states(events, before)
    ids = _index_ids(index)
    assert ids in allowed, f"index holds {None if ids is None else len(ids)} articles after kill"
    if ids is not None:
        _answers(index, ids)
    # Rerun to completion: what was committed is not embedded again.
    report = Ingestor(_settings(index), HashEmbedder()).run([folder])
    assert _index_ids(index) == final
    assert len(report.skipped) == 0
    assert cli_run(["--index", str(index), "check"]) == 0
    snapshots = index / "snapshots"
    assert not list(snapshots.glob("tmp-*")) and not list(index.glob(".CURRENT.*"))
    assert len(list(snapshots.glob("snap-*"))) <= 2
    landed = [e["event"] for e in events if e["event"] != "paused"][-1:] or ["none"]
    return {"begin": "inside commit", "removal": "removing"}.get(landed[0], landed[0])


@pytest.mark.parametrize(("fsync", "kills"), [("none", 12), ("slow", 8)])
def test_killed_ingest_leaves_last_commit_and_rerun_completes(
    processes: None, tmp_path: Path, fsync: str, kills: int
) -> None:
    folder = tmp_path / "articles"
    write_articles(folder, N_ARTICLES, seed=SEED)
    ref_index, log = tmp_path / "reference", tmp_path / "log.jsonl"
    duration = _reference_run(ref_index, folder, log, fsync, False)
    commits = [e for e in _events(log) if e["event"] == "done"]
    assert len(commits) >= 10, "the child should commit often"
    final = frozenset(commits[-1]["ids"])
    assert len(final) == N_ARTICLES
    fsyncs = _events(log)[-1]["fsyncs"]
    assert fsyncs >= 10 * len(commits), "each commit syncs every file it writes"

    rng = random.Random(f"{SEED}-{fsync}")
    for n in range(kills):
        index = tmp_path / f"index{n}"
        # The first kill comes at once (most likely before any commit), the others at random.
        wait = duration if n else 0.0
        _trial(rng, index, folder, log, wait, None, final, fsync)
        shutil.rmtree(index)
    # Where a random kill lands depends on the machine's timing; these three land inside a commit
    # for certain: the child waits at a random one of its fsync calls until it is killed.
    for n in range(3):
        index = tmp_path / f"paused{n}"
        pause_at = rng.randint(1, fsyncs)
        landing = _trial(
            rng, index, folder, log, 0.0, None, final, fsync, after="paused", pause_at=pause_at
        )
        assert landing == "inside commit", (pause_at, landing)
        shutil.rmtree(index)


def test_killed_sync_with_removals_keeps_last_commit(processes: None, tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    write_articles(folder, N_ARTICLES, seed=SEED)
    base = tmp_path / "base"
    Ingestor(_settings(base), HashEmbedder()).run([folder])
    before = _index_ids(base)
    assert before is not None and len(before) == N_ARTICLES
    # The next ingest adds five articles, rewrites five and drops fifteen vanished files.
    for path in sorted(folder.iterdir())[:15]:
        path.unlink()
    write_articles(folder, 5, seed=SEED, version=1, first=15)
    write_articles(folder, 5, seed=SEED, first=N_ARTICLES)
    log = tmp_path / "log.jsonl"
    ref_index = tmp_path / "reference"
    shutil.copytree(base, ref_index)
    duration = _reference_run(ref_index, folder, log, "none", True)
    final = _index_ids(ref_index)
    assert final is not None and len(final) == N_ARTICLES - 15 + 5
    rng = random.Random(SEED + 7)
    landings = []
    for n in range(6):
        index = tmp_path / f"index{n}"
        shutil.copytree(base, index)
        # Half the kills anywhere in the run, half aimed at the removals (15 x 10 ms).
        aim, wait = ("removal", 0.15) if n % 2 else (None, duration)
        landings.append(
            _trial(rng, index, folder, log, wait, before, final, slow_sync=True, after=aim)
        )
        shutil.rmtree(index)
    assert "removing" in landings, landings


# --- damage on disk: what `rag check` reports and what opening says ----------------------------


def _rewrite_manifest_entry(snap: Path, name: str) -> None:
    """Record a file's current size and checksum, as if it had been committed that way (a bug
    rather than bit rot: only the cross-checks can find it)."""
    manifest = json.loads((snap / "manifest.json").read_text())
    path = snap / name
    manifest["files"][name] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    (snap / "manifest.json").write_text(json.dumps(manifest))


def _flip_vector_byte(snap: Path) -> None:
    path = snap / "vectors.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) - 40] ^= 0x55  # inside the float data: the size stays, the file still parses
    path.write_bytes(bytes(data))


def _shift_lexical_ids(snap: Path) -> None:
    db = sqlite3.connect(snap / "meta.sqlite")
    rows = db.execute(
        'SELECT c.rowid, a.title, substr(a.text, c.start + 1, c."end" - c.start) FROM chunks c '
        "JOIN articles a ON a.id = c.article_id"
    ).fetchall()
    db.close()
    lexical = LexicalIndex()
    lexical.add([r[0] + 1000 for r in rows], [embedding_text(r[1], r[2]) for r in rows])
    shutil.rmtree(snap / "lexical")
    lexical_files.save(lexical, snap / "lexical")
    for path in (snap / "lexical").iterdir():
        _rewrite_manifest_entry(snap, f"lexical/{path.name}")


def _extra_chunk_row(snap: Path) -> None:
    db = sqlite3.connect(snap / "meta.sqlite")
    aid = db.execute("SELECT id FROM articles LIMIT 1").fetchone()[0]
    db.execute(
        'INSERT INTO chunks (id, article_id, ordinal, start, "end", embed_hash) '
        "VALUES ('extra', ?, 99, 0, 5, 'x')",
        (aid,),
    )
    db.commit()
    db.close()
    _rewrite_manifest_entry(snap, "meta.sqlite")


def _truncate_sqlite(snap: Path) -> None:
    path = snap / "meta.sqlite"
    path.write_bytes(path.read_bytes()[:1000])


def _orphan_chunk(snap: Path) -> None:
    db = sqlite3.connect(snap / "meta.sqlite")
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute(
        "UPDATE chunks SET article_id = 'gone' WHERE rowid = (SELECT min(rowid) FROM chunks)"
    )
    db.commit()
    db.close()
    _rewrite_manifest_entry(snap, "meta.sqlite")


@pytest.mark.parametrize(
    ("damage", "reported"),
    [
        (_flip_vector_byte, "vectors.faiss: checksum differs"),
        (_shift_lexical_ids, "lexical ids differ from chunk ids"),
        (_extra_chunk_row, "metadata has 1"),
        (_truncate_sqlite, "meta.sqlite: size"),
        (_orphan_chunk, "1 chunks belong to no article"),
    ],
    ids=["flipped-vector-byte", "lexical-ids", "extra-chunk-row", "truncated-sqlite", "orphan"],
)
def test_check_reports_damage_and_opening_refuses_with_the_rebuild_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any, reported: str
) -> None:
    folder, index = tmp_path / "articles", tmp_path / "index"
    write_articles(folder, 10, seed=SEED)
    Ingestor(_settings(index), HashEmbedder()).run([folder])
    snap = IndexStore(index).current_snapshot()
    damage(snap)
    problems = verify_snapshot(snap, checksums=True)
    assert any(reported in p for p in problems), problems
    capsys.readouterr()
    assert cli_run(["--index", str(index), "check"]) == 2
    out = capsys.readouterr().out
    assert reported in out and f"rm -r {index}" in out
    with pytest.raises(CorruptIndex, match=f"rebuild it with: rm -r {re.escape(str(index))}"):
        IndexReader(IndexStore(index), "hash-64")
    # A writer refuses to build on a damaged snapshot too (it would carry the damage forward).
    with pytest.raises(CorruptIndex):
        Ingestor(_settings(index), HashEmbedder()).run([folder])


def test_interrupted_first_commit_reads_as_no_index_but_lost_pointer_is_corrupt(
    tmp_path: Path,
) -> None:
    folder, index = tmp_path / "articles", tmp_path / "index"
    write_articles(folder, 3, seed=SEED)
    Ingestor(_settings(index), HashEmbedder()).run([folder])
    (index / "CURRENT").unlink()  # as if killed between renaming snap-00000001 and writing CURRENT
    with pytest.raises(IndexMissing):
        IndexReader(IndexStore(index))
    report = Ingestor(_settings(index), HashEmbedder()).run([folder])
    assert len(report.added) == 3 and _index_ids(index) is not None
    assert [p.name for p in (index / "snapshots").iterdir()] == ["snap-00000002"]
    write_articles(folder, 1, seed=SEED, first=10)
    Ingestor(_settings(index), HashEmbedder()).run([folder])
    # Leftovers of killed commits: a staging folder, a snapshot renamed into place whose pointer
    # switch never happened, a half-written pointer. The next writer tidies them even when it
    # has nothing to commit.
    snaps = index / "snapshots"
    shutil.copytree(IndexStore(index).current_snapshot(), snaps / "snap-00000009")
    (snaps / "tmp-0123").mkdir()
    (index / ".CURRENT.0123.tmp").write_text("{")
    ids = _index_ids(index)
    report = Ingestor(_settings(index), HashEmbedder()).run([folder])
    assert "nothing changed" in report.summary() and _index_ids(index) == ids
    assert sorted(p.name for p in snaps.iterdir()) == ["snap-00000002", "snap-00000003"]
    assert not list(index.glob(".CURRENT.*"))
    (index / "CURRENT").unlink()  # with committed history, a missing pointer is damage
    with pytest.raises(CorruptIndex, match="CURRENT is missing"):
        IndexReader(IndexStore(index))
