"""An index written by the previous release (one snapshot per commit) opens: it is converted once.

The fixtures under tests/fixtures/index-v1 were made by release 0.2's own code (see
tests/fixtures/make_v1_index.py): five articles, one removed and one added later (so its BM25
arrays hold a dead row and its passage ids a gap), a near-duplicate group; ``ivf`` has a
trained IVF-SQ8 vector index. What the old files hold is read here with FAISS and SQLite
directly and compared with what the converted index answers.
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

import faiss
import numpy as np
import pytest

from rag.cli.main import run as cli_run
from rag.errors import CorruptIndex
from rag.ingest.pipeline import Ingestor
from rag.settings import Settings
from rag.store.local import LocalStore
from rag.store.vectors import describe, reconstruct_many
from tests.conftest import FIXTURES, HashEmbedder
from tests.store_contract import all_ids, assert_bm25, bm25_reference, dense_reference

OLD = FIXTURES / "index-v1"
_CTX = mp.get_context("forkserver")
_CTX.set_forkserver_preload([__name__])


def old_copy(tmp_path: Path, name: str) -> Path:
    index = tmp_path / name
    shutil.copytree(OLD / name, index)
    return index


def old_state(index: Path) -> dict[str, Any]:
    """What the old snapshot holds, read without rag."""
    snap = index / "snapshots" / json.loads((index / "CURRENT").read_text())["snapshot"]
    db = sqlite3.connect(snap / "meta.sqlite")
    state = {
        "articles": sorted(db.execute("SELECT id, source, title, text, group_id FROM articles")),
        "sources": sorted(db.execute("SELECT source, article_id, root FROM sources")),
        "chunks": sorted(db.execute('SELECT rowid, id, article_id, start, "end" FROM chunks')),
    }
    db.close()
    vectors = faiss.read_index(str(snap / "vectors.faiss"))
    pids = [c[0] for c in state["chunks"]]
    state["vectors"] = reconstruct_many(vectors, pids)
    state["describe"] = describe(vectors)
    return state


@pytest.mark.parametrize("name", ["flat", "ivf"])
def test_an_old_index_is_converted_on_first_read_and_answers_the_same(
    tmp_path: Path, name: str
) -> None:
    index = old_copy(tmp_path, name)
    want = old_state(index)
    store = LocalStore(index)
    assert store.exists() and store.check() == []  # checking does not convert
    assert (index / "CURRENT").exists()
    reader = store.reader("hash-64")  # converts
    assert not (index / "CURRENT").exists() and not (index / "snapshots").exists()
    assert store.check() == []
    assert reader.counts() == (len(want["articles"]), len(want["chunks"]))
    got_articles = []
    for aid, *_ in want["articles"]:
        art = reader.article(aid)
        got_articles.append((art.id, art.source, art.title, art.text, art.group_id))
        assert reader.sources_of(aid) == sorted(s for s, a, _ in want["sources"] if a == aid)
    assert sorted(got_articles) == want["articles"]
    pids = [c[0] for c in want["chunks"]]
    assert all_ids(reader) == pids  # passage ids kept, gap included
    rows = reader.passages(pids)
    assert [(p, rows[p][0].id, rows[p][0].article_id, rows[p][0].start, rows[p][0].end)
            for p in pids] == want["chunks"]  # fmt: skip
    # The vector index is kept as it was (a trained IVF included): same codes, same vectors.
    assert reader.segments()[0]["vectors"] == want["describe"]
    assert np.array_equal(reader.vectors_for(pids), want["vectors"])
    emb = HashEmbedder()
    for query in ["bridge repair cables", "frost orchard heaters", "ferry evening service"]:
        if name == "flat":
            got = reader.dense_search(emb.embed([query])[0], 3)
            assert [p for p, _ in got] == dense_reference(
                reader, emb.embed([query])[0], set(pids), 3
            )
        assert_bm25(reader.lexical_search(query, 4), bm25_reference(reader, query, set(pids)), 4)
    stats = reader.stats()
    assert [len(g["articles"]) for g in stats["duplicate_groups"]] == [2]
    # And it takes new commits like any index.
    articles = tmp_path / "more"
    articles.mkdir()
    (articles / "new.txt").write_text("Kestrels\n\nVolunteers counted kestrel nests.\n")
    report = Ingestor(Settings(index_dir=index), emb).run([articles], sync=False)
    assert len(report.added) == 1 and store.check() == []
    assert store.reader("hash-64").counts()[0] == len(want["articles"]) + 1


def test_a_writer_converts_too_and_rag_check_reads_an_old_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = old_copy(tmp_path, "flat")
    assert cli_run(["--index", str(index), "check"]) == 0
    assert "consistent" in capsys.readouterr().out
    assert (index / "CURRENT").exists()
    with LocalStore(index).writer("hash-64", 64) as w:
        assert w.source_article("/corpus/orchard_frost.txt") is not None
    assert (index / "rows.sqlite").exists() and not (index / "snapshots").exists()


def test_a_damaged_old_index_gives_one_line_with_the_rebuild_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = old_copy(tmp_path, "flat")
    snap = index / "snapshots" / "snap-00000002"
    (snap / "vectors.faiss").write_bytes((snap / "vectors.faiss").read_bytes()[:100])
    with pytest.raises(CorruptIndex, match=f"rebuild it with: rm -r {index}") as info:
        LocalStore(index).reader("hash-64")
    assert "\n" not in str(info.value) and "vectors.faiss: size" in str(info.value)
    assert (index / "CURRENT").exists() and not (index / "rows.sqlite").exists()  # untouched
    assert cli_run(["--index", str(index), "check"]) == 2
    assert "vectors.faiss: size" in capsys.readouterr().out
    other = old_copy(tmp_path, "ivf")
    manifest = other / "snapshots" / "snap-00000002" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": 7}))
    with pytest.raises(CorruptIndex, match="format 7 is not known; rebuild it with"):
        LocalStore(other).reader()


def _convert_child(index: str, pause_at: int, log: str) -> None:
    """Convert ``index``, pausing at the ``pause_at``-th fsync to be killed there."""
    calls = 0
    real = os.fsync

    def paused(fd: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == pause_at:
            Path(log).write_text("paused")
            time.sleep(120)
        real(fd)

    os.fsync = paused
    LocalStore(index).reader("hash-64")
    Path(log).write_text(f"done {calls}")


def test_a_conversion_killed_anywhere_leaves_an_index_that_opens(
    processes: None, tmp_path: Path
) -> None:
    reference = old_copy(tmp_path, "ivf")
    want = old_state(reference)
    log = tmp_path / "log"
    child = _CTX.Process(target=_convert_child, args=(str(reference), 0, str(log)))
    child.start()
    child.join(60)
    fsyncs = int(log.read_text().split()[1])
    assert fsyncs >= 10
    rng = random.Random(3)
    for n, pause_at in enumerate([1, *rng.sample(range(2, fsyncs + 1), 3), fsyncs]):
        index = tmp_path / f"kill{n}"
        shutil.copytree(OLD / "ivf", index)
        log.unlink(missing_ok=True)
        child = _CTX.Process(target=_convert_child, args=(str(index), pause_at, str(log)))
        child.start()
        deadline = time.monotonic() + 60
        while not log.exists():
            assert time.monotonic() < deadline and child.exitcode is None
            time.sleep(0.01)
        child.kill()
        child.join(30)
        store = LocalStore(index)
        reader = store.reader("hash-64")  # the old snapshot, or the converted index
        assert store.check() == []
        assert reader.counts() == (len(want["articles"]), len(want["chunks"]))
        assert np.array_equal(reader.vectors_for([c[0] for c in want["chunks"]]), want["vectors"])
        with store.writer("hash-64", 64):  # the next writer tidies what the kill left
            pass
        assert not list(index.glob(".rows.sqlite.*")) and not (index / "snapshots").exists()
        assert [p.name for p in (index / "segments").iterdir()] == ["seg-00000001"]
