"""Crash safety: an ingest killed with SIGKILL at a random moment leaves the last committed index.

A child process ingests ~40 generated articles with the fake embedder, committing after every
small batch (and merging segments four at a time, so merges happen often), and logs each commit:
"begin" with the article ids it is about to publish, "done" after ``commit`` returned. The parent
kills it after a seeded random delay, then checks that the index opens (or is cleanly absent
before the first commit), passes the full integrity check, holds exactly the last committed
state (the last "done", or the "begin" after it when the kill landed inside a commit), answers
questions, and that rerunning the ingest completes it without embedding again what was
committed. Where a random kill lands depends on the machine's timing, so each run also makes
kills that land for certain where it matters: the child stops and waits to be killed at a
chosen fsync call (writing a segment), inside a merge, or while the commit deletes the segments
it no longer needs (after SQLite has committed). Children are forked from a preloaded server so
a trial costs little more than the ingest itself. (Kills during the upgrade of an old index are
in tests/test_upgrade.py.)
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from rag.cli.main import run as cli_run
from rag.errors import IndexMissing
from rag.ingest.pipeline import Ingestor
from rag.settings import Settings
from rag.store.local import LocalStore
from rag.system import System
from tests.conftest import HashEmbedder
from tests.synthetic import questions, write_articles

N_ARTICLES = 40
SEED = 20240611

_CTX = mp.get_context("forkserver")
# The server imports this module (and so rag, numpy, faiss) once; each child is a cheap fork of it.
_CTX.set_forkserver_preload([__name__])


def _settings(index_dir: Path) -> Settings:
    # With flush_passages=4 and commit_every=0 (the crash child): a commit every one or two
    # articles, and a merge every few commits.
    return Settings(index_dir=index_dir, embed_batch_size=1, lock_timeout=30, merge_factor=4)


def _pause(log: Any, what: str) -> None:
    log({"event": "paused", "in": what})
    time.sleep(120)


def _child(
    index_dir: str, folder: str, log_path: str, fsync: str, slow_sync: bool, pause: list[Any]
) -> None:
    """Ingest ``folder`` into ``index_dir``, logging commits to ``log_path`` (runs in the child).

    ``pause`` = [where, n]: the child logs "paused" at its n-th fsync call ("fsync": all of them
    come from writing segments during a commit), its n-th merge ("merge") or its n-th deletion of
    a segment folder after a commit ("gc"), and waits there to be killed.
    """
    import rag.store.folder
    import rag.store.writer
    from rag.store.writer import LocalWriter

    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    where, at = pause or ("", 0)

    def log(event: dict[str, Any]) -> None:
        os.write(fd, (json.dumps(event) + "\n").encode())

    real_commit = LocalWriter.commit

    def logged_commit(self: LocalWriter, compact: bool = False) -> Any:
        ids = sorted(r[0] for r in self.db.execute("SELECT id FROM articles"))
        log({"event": "begin", "ids": ids})
        version = real_commit(self, compact)
        log({"event": "done", "snapshot": version, "ids": ids})
        return version

    LocalWriter.commit = logged_commit  # type: ignore[method-assign]
    counts = {"fsync": 0, "merge": 0, "gc": 0}
    real_fsync = os.fsync

    def counted_fsync(fileno: Any) -> None:
        counts["fsync"] += 1
        if where == "fsync" and counts["fsync"] == at:
            _pause(log, "fsync")
        if fsync == "slow":
            # Stretch every fsync so that most kills land inside a commit's write-and-sync phase.
            real_fsync(fileno)
            time.sleep(0.001)
        # fsync == "none": a SIGKILL loses nothing the kernel already has (fsync only matters for
        # power loss), so most trials skip it and run (and get killed) faster.

    os.fsync = counted_fsync
    real_merge = rag.store.writer.merge

    def paused_merge(*args: Any, **kw: Any) -> Any:
        counts["merge"] += 1
        log({"event": "merge"})
        if where == "merge" and counts["merge"] == at:
            _pause(log, "merge")
        return real_merge(*args, **kw)

    rag.store.writer.merge = paused_merge  # type: ignore[assignment]
    real_rmtree = rag.store.folder.shutil.rmtree

    def paused_rmtree(path: Any, *args: Any, **kw: Any) -> None:
        if Path(path).name.startswith("seg-"):
            counts["gc"] += 1
            if where == "gc" and counts["gc"] == at:
                _pause(log, "gc")
        real_rmtree(path, *args, **kw)

    rag.store.folder.shutil.rmtree = paused_rmtree  # type: ignore[assignment]
    if slow_sync:
        # Stretch the removal of vanished files, so that kills land in the sync phase too.
        real_remove = LocalWriter.remove_source

        def slow_remove(self: LocalWriter, source: str) -> None:
            log({"event": "removal"})
            time.sleep(0.01)
            real_remove(self, source)

        LocalWriter.remove_source = slow_remove  # type: ignore[method-assign]
    log({"event": "start"})
    Ingestor(_settings(Path(index_dir)), HashEmbedder(), commit_every=0.0, flush_passages=4).run(
        [folder]
    )
    log({"event": "finished", **counts})


def _events(log_path: Path) -> list[dict[str, Any]]:
    if not log_path.exists():
        return []
    lines = log_path.read_text().split("\n")
    return [json.loads(line) for line in lines[:-1]]  # the last piece is "" or a torn line


def _spawn(
    index: Path, folder: Path, log: Path, fsync: str, slow_sync: bool, pause: Any = None
) -> Any:
    args = (str(index), str(folder), str(log), fsync, slow_sync, pause or [])
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
    line, "finished", also counts the run's fsync calls, merges and segment deletions)."""
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
    store = LocalStore(index)
    try:
        reader = store.reader("hash-64")
    except IndexMissing:
        return None
    assert store.check() == []
    ids = frozenset(a["id"] for a in reader.list_articles())
    assert reader.counts()[0] == len(ids)
    return ids


def _folders_are_tidy(index: Path) -> None:
    """Only the segments of the last commit and the one before it are left on disk."""
    db = sqlite3.connect(index / "rows.sqlite")
    live = {r[0] for r in db.execute("SELECT name FROM segments")}
    previous = json.loads(
        db.execute("SELECT value FROM meta WHERE key = 'previous_segments'").fetchone()[0]
    )
    db.close()
    assert {p.name for p in (index / "segments").iterdir()} <= live | set(previous)
    assert not list(index.glob(".rows.sqlite.*"))


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
    pause: Any = None,
) -> str:
    """One kill: spawn, kill after a random delay, check the state, rerun to completion."""
    log.unlink(missing_ok=True)
    proc = _spawn(index, folder, log, fsync, slow_sync, pause)
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
    _folders_are_tidy(index)
    landed = [e["event"] for e in events if e["event"] not in ("paused", "merge")][-1:] or ["none"]
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
    counts = _events(log)[-1]
    assert counts["fsync"] >= 10 * len(commits), "each commit syncs every file it writes"
    assert counts["merge"] >= 3 and counts["gc"] >= 3, counts

    rng = random.Random(f"{SEED}-{fsync}")
    for n in range(kills):
        index = tmp_path / f"index{n}"
        # The first kill comes at once (most likely before any commit), the others at random.
        wait = duration if n else 0.0
        _trial(rng, index, folder, log, wait, None, final, fsync)
        shutil.rmtree(index)
    # Where a random kill lands depends on the machine's timing; these land inside a commit for
    # certain: the child waits at a random one of its fsync calls, merges or segment deletions.
    aims = [("fsync", counts["fsync"])] * 3 + [("merge", counts["merge"])] * 3
    aims += [("gc", counts["gc"])] * 2
    for n, (where, total) in enumerate(aims):
        index = tmp_path / f"paused{n}"
        pause = [where, rng.randint(1, total)]
        landing = _trial(
            rng, index, folder, log, 0.0, None, final, fsync, after="paused", pause=pause
        )
        assert landing == "inside commit", (pause, landing)
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
