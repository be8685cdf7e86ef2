"""The ``rag`` command end to end, in a subprocess, with the real bundled model and real FAISS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("processes", "real_model")  # each command is a process


def rag(
    *args: str, index: Path, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX_DIR": str(index)}
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import shutil

    from tests.conftest import CORPUS

    root = tmp_path_factory.mktemp("cli")
    articles = root / "articles"
    shutil.copytree(CORPUS, articles)
    index = root / "index"
    r = rag("ingest", str(articles), index=index)
    assert r.returncode == 0, r.stderr
    assert "5 added" in r.stdout
    assert "embedding passages" in r.stderr  # the progress bar
    return index, articles


def test_reingest_says_nothing_changed(cli_index: tuple[Path, Path]) -> None:
    index, articles = cli_index
    r = rag("ingest", str(articles), "--json", index=index)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["unchanged"]) == 5 and out["chunks_embedded"] == 0 and out["added"] == []


def test_stats_json(cli_index: tuple[Path, Path]) -> None:
    index, _ = cli_index
    r = rag("stats", "--json", index=index)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["articles"] == 5 and stats["chunks"] > 5
    assert stats["dimension"] == 384 and "MiniLM" in stats["model"]
    groups = stats["duplicate_groups"]
    assert len(groups) == 1
    assert {Path(a["source"]).name for a in groups[0]["articles"]} == {
        "harbor_bridge.txt",
        "harbor_bridge_reprint.txt",
    }


def test_ask_answers_with_a_verbatim_citation(cli_index: tuple[Path, Path]) -> None:
    index, _ = cli_index
    r = rag("ask", "Who led the repair crew of the Harbor Bridge?", "--json", index=index)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert not out["abstained"]
    assert "Lindqvist" in out["answer"] and "[1]" in out["answer"]
    c = out["citations"][0]
    assert Path(c["source"]).name == "harbor_bridge.txt"  # the fullest version is cited
    text = _article_text(index, c["source"])
    assert text[c["start"] : c["end"]] == c["quote"]
    assert c["quote"] in c["passage"]
    assert set(c) >= {"n", "source", "title", "quote", "passage", "start", "end", "score"}


def test_ask_plain_text_and_abstention(cli_index: tuple[Path, Path]) -> None:
    index, _ = cli_index
    r = rag("ask", "How many 3D printers does the Brookfield library lab have?", index=index)
    assert r.returncode == 0, r.stderr
    assert "30 3D printers" in r.stdout and "[1]" in r.stdout
    r = rag(
        "ask",
        "What did the Canadian prime minister say about nuclear submarines?",
        "--json",
        index=index,
    )
    out = json.loads(r.stdout)
    assert out["abstained"] and out["citations"] == []
    assert out["answer"] == "The indexed articles don't answer this."
    assert out["closest"]


def test_search_json_and_batch(cli_index: tuple[Path, Path], tmp_path: Path) -> None:
    index, _ = cli_index
    r = rag("search", "frost heaters in the orchards", "--json", "--k", "3", index=index)
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)["hits"]
    assert len(hits) == 3 and Path(hits[0]["source"]).name == "orchard_frost.txt"
    assert set(hits[0]) >= {"source", "title", "text", "score", "start", "end"}

    batch = tmp_path / "q.jsonl"
    batch.write_text(
        json.dumps({"id": "a", "question": "Who chairs the fruit cooperative?"})
        + "\n"
        + json.dumps({"id": "b", "question": "What did the library get a grant from?"})
        + "\n"
    )
    r = rag("ask", "--batch", str(batch), index=index)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"]
    assert "Okafor" in lines[0]["answer"]
    assert set(lines[0]) >= {"id", "answer", "abstained", "citations"}
    r = rag("search", "--batch", str(batch), index=index)
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"] and all(x["hits"] for x in lines)


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask", ""], "question is empty"),
        (["ask", "   "], "question is empty"),
        (["ingest", "/no/such/folder"], "no such file or folder"),
        (["search", "--batch", "/no/such.jsonl"], "cannot read batch file"),
        (["ask", "x", "--date-from", "last week"], "date-from"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    cli_index: tuple[Path, Path], args: list[str], message: str
) -> None:
    index, _ = cli_index
    r = rag(*args, index=index)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_batch_line(cli_index: tuple[Path, Path], tmp_path: Path) -> None:
    index, _ = cli_index
    batch = tmp_path / "bad.jsonl"
    batch.write_text('{"id": "a", "question": "ok?"}\nnot json\n')
    r = rag("ask", "--batch", str(batch), index=index)
    assert r.returncode == 2 and ":2:" in r.stderr


def test_missing_and_corrupt_index(tmp_path: Path, cli_index: tuple[Path, Path]) -> None:
    r = rag("ask", "anything?", index=tmp_path / "none")
    assert r.returncode == 2 and "rag ingest" in r.stderr
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(cli_index[0], broken)
    for part in broken.glob("rows.sqlite*"):  # the index's rows, overwritten with junk
        part.unlink()
    (broken / "rows.sqlite").write_bytes(b"garbage" * 512)
    r = rag("stats", index=broken)
    assert r.returncode == 2 and "rebuild" in r.stderr and "Traceback" not in r.stderr
    r = rag("check", index=cli_index[0])
    assert r.returncode == 0 and "consistent" in r.stdout


def test_index_folder_that_is_a_file_or_under_one(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "index"
    not_a_folder.write_text("a file where the index folder should be")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("Ferry news\n\nThe ferry returns in March after ten years.\n")
    cases = [
        (not_a_folder, ("ingest", str(folder)), "is a file, not a folder"),
        (not_a_folder, ("ask", "when?"), "is a file, not a folder"),
        (not_a_folder, ("check",), "is a file, not a folder"),
        (not_a_folder / "sub", ("ingest", str(folder)), "cannot use"),
    ]
    for index, args, message in cases:
        r = rag(*args, index=index)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and "RAG_INDEX_DIR" in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not_a_folder.read_text() == "a file where the index folder should be"


def test_os_error_is_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A failing disk is not bad input (exit 1), but still one line, not a traceback."""
    from rag.cli.main import run
    from rag.ingest import pipeline as ingest

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "index" / "snapshots"))

    monkeypatch.setattr(ingest.Ingestor, "run", full_disk)
    folder = tmp_path / "in"
    folder.mkdir()
    assert run(["--index", str(tmp_path / "index"), "ingest", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"rag: error: No space left on device: {tmp_path / 'index' / 'snapshots'}"


def test_ingest_reports_skips(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.md").write_text("")
    (folder / "ok.txt").write_text(
        "A title\n\nThe mayor of Eastfield opened the new swimming pool."
    )
    r = rag("ingest", str(folder), index=tmp_path / "idx")
    assert r.returncode == 0, r.stderr
    assert "1 added" in r.stdout and "1 skipped" in r.stdout and "empty.md" in r.stdout


def _article_text(index: Path, source: str) -> str:
    from rag.store.local import LocalStore

    reader = LocalStore(index).reader()
    aid = next(a["id"] for a in reader.list_articles() if a["source"] == source)
    return reader.article(aid).text


def test_watch_picks_up_new_and_deleted_files(tmp_path: Path) -> None:
    import time

    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "a.txt").write_text(
        "First story\n\nThe ferry to Gull Island resumed service on Monday."
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX_DIR": str(tmp_path / "idx")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "watch", str(folder), "--interval", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []

        def wait_for(text: str) -> None:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                line = proc.stdout.readline()  # type: ignore[union-attr]
                lines.append(line)
                if text in line:
                    return
            raise AssertionError(f"{text!r} not seen in {lines}")

        wait_for("1 added")
        (folder / "b.md").write_text(
            "# Second story\n\nThe lighthouse on Gull Island was repainted red."
        )
        wait_for("1 added")
        (folder / "a.txt").unlink()
        wait_for("1 removed")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_common_options_after_the_subcommand(tmp_path: Path, cli_index: tuple[Path, Path]) -> None:
    """``rag ingest DIR --index X`` and ``rag search Q --index X --json --k 1`` (RAG_INDEX_DIR
    points elsewhere, so only the option can find the index)."""
    _, articles = cli_index
    index = tmp_path / "placed-after"
    elsewhere = tmp_path / "unused"
    r = rag("ingest", str(articles), "--index", str(index), "--json", index=elsewhere)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["added"]) == 5 and not elsewhere.exists()
    r = rag(
        "search", "bridge repair crew", "--index", str(index), "--json", "--k", "1", index=elsewhere
    )
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["hits"]) == 1
    r = rag("stats", "--k", "2", "--index", str(index), index=elsewhere)
    assert r.returncode == 2 and "unrecognized arguments: --k" in r.stderr
