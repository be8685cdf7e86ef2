"""Ingestion and the index on disk, with the fake embedder: sync, skips, errors, atomic commits, locking."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.errors import CorruptIndex, IndexBusy, IndexMissing, InputError, ModelMismatch
from rag.settings import Settings
from rag.store.local import LocalStore
from rag.system import System
from rag.types import Filters
from tests.conftest import HashEmbedder
from tests.synthetic import write_articles


def make_system(tmp_path: Path, embedder: HashEmbedder | None = None, **kw: object) -> System:
    settings = Settings(index_dir=tmp_path / "index", **kw)  # type: ignore[arg-type]
    return System(settings, embedder=embedder or HashEmbedder())


def test_ingest_then_reingest_embeds_nothing(tmp_path: Path, corpus_dir: Path) -> None:
    emb = HashEmbedder()
    system = make_system(tmp_path, emb)
    first = system.ingest([corpus_dir])
    assert len(first.added) == 5 and not first.skipped
    assert first.chunks_embedded > 5
    stats = system.stats()
    assert stats["articles"] == 5 and stats["chunks"] == first.chunks_embedded
    assert stats["model"] == "hash-64" and stats["dimension"] == 64

    emb.calls.clear()
    second = system.ingest([corpus_dir])
    assert sorted(second.unchanged) == sorted(first.added)
    assert second.chunks_embedded == 0 and emb.calls == []
    assert "nothing changed" in second.summary()


def test_changed_file_replaces_its_chunks_and_reuses_unchanged_passages(
    tmp_path: Path, corpus_dir: Path
) -> None:
    system = make_system(tmp_path)
    system.ingest([corpus_dir])
    path = corpus_dir / "orchard_frost.txt"
    path.write_text(
        path.read_text() + "\nThe cooperative will meet again in May to count the losses.\n"
    )
    report = system.ingest([corpus_dir])
    assert report.updated == [str(path.resolve())]
    assert report.chunks_reused >= 0 and report.chunks_embedded >= 1
    reader = system.reader()
    articles = [a for a in reader.list_articles() if a["source"] == str(path.resolve())]
    assert len(articles) == 1
    assert "count the losses" in reader.article(articles[0]["id"]).text
    assert system.stats()["articles"] == 5  # the old version is gone


def test_rename_is_not_reembedded_and_delete_leaves_index(tmp_path: Path, corpus_dir: Path) -> None:
    emb = HashEmbedder()
    system = make_system(tmp_path, emb)
    system.ingest([corpus_dir])
    emb.calls.clear()
    (corpus_dir / "library_lab.md").rename(corpus_dir / "library_robotics.md")
    (corpus_dir / "orchard_frost.txt").unlink()
    report = system.ingest([corpus_dir])
    assert emb.calls == []
    assert report.renamed == [str((corpus_dir / "library_robotics.md").resolve())]
    assert sorted(Path(s).name for s in report.removed) == ["library_lab.md", "orchard_frost.txt"]
    sources = {a["source"] for a in system.reader().list_articles()}
    assert str((corpus_dir / "library_robotics.md").resolve()) in sources
    assert not any("orchard" in s for s in sources)
    assert system.stats()["articles"] == 4


def test_bad_files_are_skipped_with_reasons_and_the_rest_is_indexed(
    tmp_path: Path, corpus_dir: Path
) -> None:
    (corpus_dir / "empty.txt").write_text("")
    (corpus_dir / "binary.txt").write_bytes(bytes(range(256)) * 20)
    system = make_system(tmp_path)
    report = system.ingest([corpus_dir])
    reasons = dict(report.skipped)
    assert set(Path(p).name for p in reasons) == {"empty.txt", "binary.txt"}
    assert all(r for r in reasons.values())
    assert len(report.added) == 5


def test_missing_path_is_an_input_error_and_index_is_untouched(
    tmp_path: Path, corpus_dir: Path
) -> None:
    system = make_system(tmp_path)
    system.ingest([corpus_dir])
    before = system.stats()
    with pytest.raises(InputError, match="no such file or folder"):
        system.ingest([corpus_dir, tmp_path / "nope"])
    assert system.stats()["articles"] == before["articles"]


def test_missing_index_and_model_mismatch(tmp_path: Path, corpus_dir: Path) -> None:
    store = LocalStore(tmp_path / "index")
    with pytest.raises(IndexMissing, match="rag ingest"):
        store.reader()
    make_system(tmp_path).ingest([corpus_dir])
    with pytest.raises(ModelMismatch, match="hash-64"):
        store.reader(model_id="another-model")
    with pytest.raises(ModelMismatch):
        make_system(tmp_path, HashEmbedder(model_id="other")).ingest([corpus_dir])


@pytest.mark.parametrize(
    "damage",
    ["truncate_vectors", "garbage_rows", "drop_lexical", "drop_segment", "drop_rows", "drop_ids"],
)
def test_corrupt_index_gives_clear_error(tmp_path: Path, corpus_dir: Path, damage: str) -> None:
    system = make_system(tmp_path)
    system.ingest([corpus_dir])
    store = LocalStore(tmp_path / "index")
    (seg,) = store.folder.segments_dir.iterdir()
    rows = store.folder.rows_path
    if damage == "truncate_vectors":
        data = (seg / "vectors.faiss").read_bytes()
        (seg / "vectors.faiss").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_rows":
        rows.write_bytes(b"\0" * rows.stat().st_size)
    elif damage == "drop_lexical":
        for f in (seg / "lexical").iterdir():
            f.unlink()
    elif damage == "drop_segment":
        shutil.rmtree(seg)
    elif damage == "drop_rows":
        rows.unlink()
    else:
        (seg / "ids.npy").unlink()
    with pytest.raises(CorruptIndex, match="rebuild"):
        store.reader("hash-64")
    with pytest.raises(CorruptIndex, match="rebuild"):  # a writer will not build on it either
        make_system(tmp_path).ingest([corpus_dir])
    assert store.check()


def test_check_finds_nothing_wrong_in_a_fresh_index(tmp_path: Path, corpus_dir: Path) -> None:
    make_system(tmp_path).ingest([corpus_dir])
    assert LocalStore(tmp_path / "index").check() == []


def test_crash_during_commit_keeps_previous_index(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = make_system(tmp_path)
    system.ingest([corpus_dir])
    before = [(h.chunk.id, h.score) for h in system.search("bridge cables repair")]
    (corpus_dir / "new.txt").write_text(
        "A new story\n\nSomething entirely new happened today in town."
    )

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)
    with pytest.raises(OSError):
        system.ingest([corpus_dir])
    monkeypatch.undo()
    fresh = make_system(tmp_path)
    assert fresh.stats()["articles"] == 5
    assert [(h.chunk.id, h.score) for h in fresh.search("bridge cables repair")] == before
    # The abandoned staging folder is cleaned by the next commit, which completes the ingest.
    report = fresh.ingest([corpus_dir])
    assert [Path(p).name for p in report.added] == ["new.txt"]
    assert not [p for p in (tmp_path / "index" / "segments").iterdir() if p.name[:4] != "seg-"]


def test_second_writer_gets_index_busy(tmp_path: Path, corpus_dir: Path) -> None:
    system = make_system(tmp_path, lock_timeout=0.2)
    system.ingest([corpus_dir])
    store = LocalStore(tmp_path / "index", lock_timeout=0.2).folder
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.write_lock():
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(IndexBusy, match="busy"):
            system.ingest([corpus_dir])
    finally:
        release.set()
        t.join()


def test_reader_picks_up_new_commit(tmp_path: Path, corpus_dir: Path) -> None:
    system = make_system(tmp_path)
    system.ingest([corpus_dir])
    reader = system.reader()
    assert reader.counts()[0] == 5
    first = reader._view.states[0].seg  # type: ignore[attr-defined]
    (corpus_dir / "extra.txt").write_text("Extra\n\nThe extra article talks about sailing boats.")
    make_system(tmp_path).ingest([corpus_dir])  # another "process"
    assert system.reader().counts()[0] == 6
    # The refresh loaded only the new segment: the one already in memory is shared.
    states = reader._view.states  # type: ignore[attr-defined]
    assert len(states) == 2 and states[0].seg is first
    assert reader.lexical_search("sailing boats", 3)


def test_faiss_results_equal_numpy_brute_force(tmp_path: Path, corpus_dir: Path) -> None:
    emb = HashEmbedder()
    system = make_system(tmp_path, emb, fusion="dense")
    system.ingest([corpus_dir])
    reader = system.reader()
    rowids = [r for a in reader.list_articles() for r in reader.passage_ids(a["id"])]
    matrix = reader.vectors_for(rowids)
    for question in ["who led the bridge repair", "frost heaters orchard", "robotics lab printers"]:
        q = emb.embed([question])[0]
        expected = sorted(zip(rowids, matrix @ q, strict=True), key=lambda p: -p[1])
        got = reader.dense_search(q, len(rowids))
        assert [i for i, _ in got] == [i for i, _ in expected]
        np.testing.assert_allclose(
            [s for _, s in got], [s for _, s in expected], rtol=1e-5, atol=1e-6
        )
    # k larger than the index and a filter that nothing passes are fine.
    assert len(reader.dense_search(q, 10_000)) == len(rowids)
    assert reader.dense_search(q, 5, Filters(source="no-such-source")) == []


def test_nothing_persisted_is_a_pickle(tmp_path: Path, corpus_dir: Path) -> None:
    make_system(tmp_path).ingest([corpus_dir])
    for path in (tmp_path / "index").rglob("*"):
        if path.is_file():
            head = path.read_bytes()[:2]
            assert not (head[:1] == b"\x80" and head[1:2] in {bytes([n]) for n in range(2, 6)}), (
                path
            )
    (seg,) = (tmp_path / "index" / "segments").iterdir()
    assert {"vectors.faiss", "ids.npy", "lexical"} <= {p.name for p in seg.iterdir()}


def test_package_source_never_unpickles() -> None:
    root = Path(__file__).parent.parent
    for path in [
        *root.glob("rag/*.py"),
        *root.glob("embeddings/*.py"),
        *root.glob("ui/*.py"),
        root / "app.py",
    ]:
        text = path.read_text()
        for banned in ("import pickle", "allow_pickle=True", "torch.load(", "joblib"):
            assert banned not in text, f"{path.name} uses {banned}"


def test_progress_counts_passages_over_the_whole_run(tmp_path: Path, corpus_dir: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    system = make_system(tmp_path, embed_batch_size=1)  # small batches: several flushes
    report = system.ingest([corpus_dir], progress=lambda *a: calls.append(a))
    reads = [c for c in calls if c[0] == "read"]
    embeds = [c for c in calls if c[0] == "embed"]
    assert reads[-1][1:] == (5, 5)
    assert [d for _, d, _ in embeds] == sorted(d for _, d, _ in embeds)
    assert all(d <= t for _, d, t in embeds)
    assert embeds[-1][1:] == (report.chunks_embedded, report.chunks_embedded)


# --- the ingest pipeline: embedding in a worker while this thread reads and writes -------------


class RecordingEmbedder(HashEmbedder):
    """Records every text embedded and the thread that reported progress; can fail on call N."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.fail_on_call = fail_on_call

    def embed(self, texts, progress=None):  # type: ignore[no-untyped-def]
        if self.fail_on_call is not None and len(self.calls) + 1 >= self.fail_on_call:
            self.calls.append(len(texts))
            raise RuntimeError("embedding backend fell over")
        self.texts.extend(texts)
        return super().embed(texts, progress)


def _copies_across_batches(folder: Path) -> list[Path]:
    """20 articles, and after every fourth one a copy of it under another title: same text, so
    the same article, but a different embedding text (the title is part of it)."""
    paths = write_articles(folder, 20, seed=7)
    for i, path in enumerate(paths[::4]):
        title, _, text = path.read_text(encoding="utf-8").partition("\n\n")
        copy = folder / f"{path.stem}_copy_{i}.txt"
        copy.write_text(f"Reprinted: {title}\n\n{text}", encoding="utf-8")
    return sorted(folder.iterdir())


@pytest.mark.parametrize("flush", [1, 3, 1000])
def test_pipelined_ingest_embeds_each_passage_once_and_matches_one_batch(
    tmp_path: Path, flush: int
) -> None:
    from rag.ingest.pipeline import Ingestor

    folder = tmp_path / "articles"
    _copies_across_batches(folder)
    reference_index = tmp_path / "reference"
    Ingestor(Settings(index_dir=reference_index), HashEmbedder(), flush_passages=10**6).run(
        [folder]
    )

    emb = RecordingEmbedder()
    settings = Settings(index_dir=tmp_path / "index")
    report = Ingestor(settings, emb, flush_passages=flush).run([folder])
    assert len(emb.texts) == len(set(emb.texts)) == report.chunks_embedded  # nothing twice
    if flush == 1:
        assert len(emb.calls) > 10  # really many batches, so copies met in-flight originals
    assert len(report.added) == 20 and len(report.renamed) == 5
    assert not report.skipped and not report.updated

    got, want = (
        LocalStore(settings.index_dir).reader(),
        LocalStore(reference_index).reader(),
    )
    assert got.stats()["chunks"] == want.stats()["chunks"]
    rows_got = sorted((a["id"], a["source"]) for a in got.list_articles())
    rows_want = sorted((a["id"], a["source"]) for a in want.list_articles())
    assert [r[0] for r in rows_got] == [r[0] for r in rows_want]
    # Every stored passage (all 20 articles) was embedded and is findable by its own text.
    for article in got.list_articles():
        rowids = got.passage_ids(article["id"])
        assert rowids
        for rowid, (chunk, art) in got.passages(rowids).items():
            top = got.dense_search(emb.embed([f"{art.title}\n{chunk.text}"])[0], 1)
            assert top[0][0] == rowid


def test_embedding_progress_is_reported_from_the_ingest_thread(tmp_path: Path) -> None:
    from rag.ingest.pipeline import Ingestor

    folder = tmp_path / "articles"
    write_articles(folder, 12, seed=3)
    seen: list[tuple[str, int, int, str]] = []
    report = Ingestor(
        Settings(index_dir=tmp_path / "index"),
        HashEmbedder(),
        progress=lambda stage, done, total: seen.append(
            (stage, done, total, threading.current_thread().name)
        ),
        flush_passages=4,
    ).run([folder])
    assert {name for *_, name in seen} == {threading.current_thread().name}
    embeds = [(done, total) for stage, done, total, _ in seen if stage == "embed"]
    assert embeds and embeds[-1] == (report.chunks_embedded, report.chunks_embedded)
    assert [d for d, _ in embeds] == sorted(d for d, _ in embeds)  # never goes back
    assert all(d <= t for d, t in embeds)


def test_failure_in_the_embedding_worker_keeps_committed_work_and_stops(tmp_path: Path) -> None:
    from rag.ingest.pipeline import Ingestor

    folder = tmp_path / "articles"
    write_articles(folder, 30, seed=5)
    settings = Settings(index_dir=tmp_path / "index")
    Ingestor(settings, HashEmbedder()).run([folder / "article_000.txt"])
    before = LocalStore(settings.index_dir).reader().stats()

    emb = RecordingEmbedder(fail_on_call=3)
    with pytest.raises(RuntimeError, match="fell over"):
        Ingestor(settings, emb, commit_every=0.0, flush_passages=4).run([folder], sync=False)
    # At most the batch already queued behind the failed one was started; no worker outlives
    # the failed ingest.
    assert 3 <= len(emb.calls) <= 4
    assert not [t for t in threading.enumerate() if t.name.startswith("rag-embed")]
    reader = LocalStore(settings.index_dir).reader()
    assert LocalStore(settings.index_dir).check() == []
    after = reader.stats()
    # The first batch was written and committed while the second was being embedded; the
    # failed batch and everything after it are not in the index.
    assert before["articles"] < after["articles"] < 30
    # Rerun with a working embedder: finishes the job, embedding only what is missing.
    again = HashEmbedder()
    report = Ingestor(settings, again).run([folder])
    assert LocalStore(settings.index_dir).reader().stats()["articles"] == 30
    assert report.chunks_embedded == sum(again.calls)


@pytest.mark.parametrize("limit", ["files", "bytes"])
def test_files_are_read_a_bounded_window_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    from rag.ingest import discovery
    from rag.ingest import pipeline as ingest

    folder = tmp_path / "articles"
    paths = write_articles(folder, 40, seed=9)
    if limit == "files":
        monkeypatch.setattr(discovery, "_READ_AHEAD", 3)
    else:  # about three files' worth of bytes
        monkeypatch.setattr(discovery, "_READ_AHEAD_BYTES", 3 * paths[0].stat().st_size)
    read: list[Path] = []
    real_read = discovery._read
    monkeypatch.setattr(discovery, "_read", lambda path, s: read.append(path) or real_read(path, s))

    settings = Settings(index_dir=tmp_path / "index")
    report = ingest.Ingestor(settings, HashEmbedder(), flush_passages=4).run([folder])
    assert len(report.added) == 40 and not report.skipped
    assert sorted(read) == sorted(folder.iterdir())  # every file read once, none twice
    assert LocalStore(settings.index_dir).reader().stats()["articles"] == 40

    # After a failure, the files beyond the window are never read.
    read.clear()
    emb = RecordingEmbedder(fail_on_call=2)
    with pytest.raises(RuntimeError, match="fell over"):
        ingest.Ingestor(Settings(index_dir=tmp_path / "other"), emb, flush_passages=4).run([folder])
    assert 0 < len(read) < 20
    assert not [t for t in threading.enumerate() if t.name.startswith("rag-read")]
