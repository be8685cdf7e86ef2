"""Damage on disk: what ``rag check`` reports, what opening says, and what a writer tidies.

Each damage is the kind a bug (not bit rot) would make: where a file changes, its recorded size
and checksum are updated too, so only the cross-checks between the parts can find it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.cli.main import run as cli_run
from rag.errors import CorruptIndex, IndexMissing
from rag.ingest.pipeline import Ingestor
from rag.settings import Settings
from rag.store.folder import file_sha256
from rag.store.local import LocalStore
from tests.conftest import HashEmbedder
from tests.synthetic import write_articles

SEED = 99


def _settings(index: Path) -> Settings:
    return Settings(index_dir=index, embed_batch_size=1, lock_timeout=5)


def _index(tmp_path: Path, n: int = 10) -> tuple[Path, Path]:
    folder, index = tmp_path / "articles", tmp_path / "index"
    write_articles(folder, n, seed=SEED)
    Ingestor(_settings(index), HashEmbedder()).run([folder])
    return folder, index


def _segment(index: Path) -> Path:
    (seg,) = (index / "segments").iterdir()
    return seg


def _record(index: Path, name: str) -> None:
    """Record a segment file's current size and checksum, as if it had been written that way."""
    seg = _segment(index)
    db = sqlite3.connect(index / "rows.sqlite")
    files = json.loads(
        db.execute("SELECT files FROM segments WHERE name = ?", (seg.name,)).fetchone()[0]
    )
    files[name] = {"size": (seg / name).stat().st_size, "sha256": file_sha256(seg / name)}
    db.execute("UPDATE segments SET files = ? WHERE name = ?", (json.dumps(files), seg.name))
    db.commit()
    db.close()


def _flip_vector_byte(index: Path) -> None:
    path = _segment(index) / "vectors.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) - 40] ^= 0x55  # inside the float data: the size stays, the file still parses
    path.write_bytes(bytes(data))


def _shift_ids(index: Path) -> None:
    path = _segment(index) / "ids.npy"
    np.save(path, np.load(path) + 1000)
    _record(index, "ids.npy")


def _rows(index: Path, *sql: str) -> None:
    db = sqlite3.connect(index / "rows.sqlite")
    db.execute("PRAGMA foreign_keys = OFF")
    for statement in sql:
        db.execute(statement)
    db.commit()
    db.close()


def _extra_passage(index: Path) -> None:
    _rows(index, 'INSERT INTO chunks (id, article_id, ordinal, start, "end", embed_hash) '
                 "SELECT 'extra', id, 99, 0, 5, 'x' FROM articles LIMIT 1")  # fmt: skip


def _orphan_passage(index: Path) -> None:
    _rows(index, "UPDATE chunks SET article_id = 'gone' WHERE pid = (SELECT min(pid) FROM chunks)")


def _truncate_rows(index: Path) -> None:
    path = index / "rows.sqlite"
    path.write_bytes(path.read_bytes()[:1000])


def _deleted_nowhere(index: Path) -> None:
    _rows(index, "INSERT INTO deleted (pid) VALUES (987654321)")


def _wrong_dimension(index: Path) -> None:
    _rows(index, "UPDATE meta SET value = '32' WHERE key = 'dimension'")


DAMAGE: list[tuple[Callable[[Path], None], str]] = [
    (_flip_vector_byte, "vectors.faiss: checksum differs"),
    (_shift_ids, "its passage ids differ from its record"),
    (_extra_passage, "metadata has 1"),
    (_truncate_rows, "metadata"),
    (_orphan_passage, "1 passages belong to no article"),
    (_deleted_nowhere, "1 deleted passages are in no segment"),
    (_wrong_dimension, "vectors of 64 dimensions, not 32"),
]


@pytest.mark.parametrize(("damage", "reported"), DAMAGE, ids=[d.__name__[1:] for d, _ in DAMAGE])
def test_check_reports_damage_and_opening_refuses_with_the_rebuild_command(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Path], None],
    reported: str,
) -> None:
    folder, index = _index(tmp_path)
    damage(index)
    store = LocalStore(index)
    problems = store.check()
    assert any(reported in p for p in problems), problems
    capsys.readouterr()
    assert cli_run(["--index", str(index), "check"]) == 2
    out = capsys.readouterr().out
    assert reported in out and f"rm -r {index}" in out
    if damage is not _wrong_dimension:  # only a full check reads the vectors' dimension
        with pytest.raises(CorruptIndex, match=f"rebuild it with: rm -r {re.escape(str(index))}"):
            store.reader("hash-64")
    if damage in (_flip_vector_byte, _shift_ids, _truncate_rows):
        # A writer refuses to build on a damaged segment (it would carry the damage forward).
        with pytest.raises(CorruptIndex):
            Ingestor(_settings(index), HashEmbedder()).run([folder])


def test_no_commit_yet_reads_as_no_index_and_leftovers_are_tidied(tmp_path: Path) -> None:
    folder, index = tmp_path / "articles", tmp_path / "index"
    write_articles(folder, 3, seed=SEED)
    store = LocalStore(index)
    with store.writer("hash-64", 64) as w:  # a session that never commits: as if killed
        assert not w.changed
    assert (index / "rows.sqlite").exists() and not store.exists()
    with pytest.raises(IndexMissing):
        store.reader()
    report = Ingestor(_settings(index), HashEmbedder()).run([folder])
    assert len(report.added) == 3 and store.exists() and store.check() == []
    # Leftovers of killed commits: a staging folder, a segment written for a commit that never
    # happened, a half-converted rows file. The next writer tidies them even when it has
    # nothing to commit; the live segment stays.
    segments = index / "segments"
    live = {p.name for p in segments.iterdir()}
    (segments / ".tmp-0123").mkdir()
    (segments / "seg-00000099").mkdir()
    (index / ".rows.sqlite.0123").write_text("x")
    report = Ingestor(_settings(index), HashEmbedder()).run([folder])
    assert "nothing changed" in report.summary()
    assert {p.name for p in segments.iterdir()} == live
    assert not list(index.glob(".rows.sqlite.*"))
    assert store.check() == []


def test_segments_without_their_rows_file_are_damage(tmp_path: Path) -> None:
    _, index = _index(tmp_path, 3)
    (index / "rows.sqlite").unlink()
    with pytest.raises(CorruptIndex, match="rows.sqlite is missing"):
        LocalStore(index).reader()
    assert "rows.sqlite is missing" in LocalStore(index).check()[0]


def test_a_first_ingest_that_dies_while_making_the_rows_file_leaves_no_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between creating rows.sqlite and its tables, the first ingest must leave "no index
    yet", not a rows file without tables that every later command calls damaged."""
    import rag.store.rows as rows

    folder = tmp_path / "articles"
    write_articles(folder, 3, seed=SEED)
    index = tmp_path / "index"
    real = rows.SCHEMA
    monkeypatch.setattr(rows, "SCHEMA", "CREATE TABLE meta (")  # dies inside the schema
    with pytest.raises(Exception):  # noqa: B017 - whichever error the half-made schema raises
        Ingestor(_settings(index), HashEmbedder()).run([folder])
    monkeypatch.setattr(rows, "SCHEMA", real)
    store = LocalStore(index)
    assert not store.exists()  # no index yet: no CorruptIndex
    report = Ingestor(_settings(index), HashEmbedder()).run([folder])
    assert "3 added" in report.summary()
    assert store.check() == [] and not list(index.glob(".rows.sqlite.*"))
