"""``rag ingest --ray`` end to end on a two-node Ray cluster started on this machine.

The cluster is two ``ray start --block`` processes of one CPU each (tests/ray_cluster.py); the
ingest runs as the ``rag`` command against it, with two embedding actors, so one actor embeds on
each node. Every Ray index is held to a local ingest of the same folder: the same passage ids and
offsets, sources and duplicate groups, vectors within cosine 0.9999 (tests/index_compare.py).
The Ray ingest writes a local index folder or, with RAG_STORE=milvus, a Milvus Lite file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.settings import Settings
from tests.conftest import CORPUS
from tests.index_compare import differences, index_print
from tests.ray_cluster import RayCluster, free_port
from tests.synthetic import write_articles

pytestmark = pytest.mark.usefixtures("processes", "real_model")

QUESTION = "Who led the repair crew of the Harbor Bridge?"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    with RayCluster(nodes=2, cpus=1) as c:
        yield c


def rag(
    *args: str, index: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full = {**(env or os.environ), "HF_HUB_OFFLINE": "1", "RAG_INDEX_DIR": str(index)}
    full.setdefault("RAG_RAY_ACTORS", "2")  # one per node: waits for both nodes' CPUs
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def articles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ray") / "articles"
    shutil.copytree(CORPUS, folder)
    return folder


@pytest.fixture(scope="module")
def local_index(articles: Path) -> Path:
    index = articles.parent / "local"
    r = rag("ingest", str(articles), index=index)
    assert r.returncode == 0, r.stderr
    return index


def _ask(index: Path, env: dict[str, str] | None = None) -> dict:
    r = rag("ask", QUESTION, "--json", index=index, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def assert_same_answer(ours: dict, theirs: dict) -> None:
    """The fixture question: the same answer, quoting the same sentences of the same sources."""
    assert ours["answer"] == theirs["answer"] and "Lindqvist" in ours["answer"]
    keys = ("n", "source", "quote", "start", "end", "passage")
    assert [{k: c[k] for k in keys} for c in ours["citations"]] == [
        {k: c[k] for k in keys} for c in theirs["citations"]
    ]
    for a, b in zip(ours["citations"], theirs["citations"], strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-3)


def milvus_lite(index: Path, env: dict[str, str]) -> tuple[dict[str, str], Settings]:
    """``env`` pointed at a Milvus Lite file next to ``index``, and the Settings naming it."""
    db = index.with_suffix(".db")
    settings = Settings(store="milvus", milvus_uri=str(db), index_dir=index)
    return {**env, "RAG_STORE": "milvus", "RAG_MILVUS_URI": str(db)}, settings


def test_two_node_ingest_is_the_local_index(
    cluster: RayCluster, articles: Path, local_index: Path
) -> None:
    index = articles.parent / "ray"
    r = rag("ingest", str(articles), "--ray", cluster.address, index=index, env=cluster.env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("5 added, 0 updated, 0 unchanged, 0 removed, 0 skipped")
    assert "reading files" in r.stderr and "embedding passages" in r.stderr  # the progress bars
    assert differences(index_print(local_index), index_print(index)) == []

    assert_same_answer(_ask(index), _ask(local_index))

    # A rerun on the cluster finds every file unchanged and embeds nothing.
    r = rag(
        "ingest", str(articles), "--ray", cluster.address, "--json", index=index, env=cluster.env
    )
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert len(again["unchanged"]) == 5 and again["chunks_embedded"] == 0


def test_two_node_ingest_into_milvus_lite_answers_as_the_local_index(
    cluster: RayCluster, articles: Path, local_index: Path, tmp_path: Path
) -> None:
    index = tmp_path / "ray"
    env, settings = milvus_lite(index, cluster.env)
    env["RAG_RAY_ACTORS"] = "0"  # the default: an actor on each node, with the node's CPU
    r = rag("ingest", str(articles), "--ray", cluster.address, index=index, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("5 added, 0 updated, 0 unchanged, 0 removed, 0 skipped")
    assert_same_answer(_ask(index, env), _ask(local_index))
    assert differences(index_print(local_index), index_print(settings)) == []


def _embedded(log: Path) -> int:
    """Passages embedded so far, from the progress bar on the ingest's stderr."""
    found = re.findall(
        r"embedding passages:[^|]*\|[^|]*\| *(\d+)/", log.read_text(errors="replace")
    )
    return int(found[-1]) if found else 0


@pytest.mark.parametrize("store", ["local", "milvus"])
def test_killed_ray_ingest_reruns_to_the_local_index(
    cluster: RayCluster, tmp_path: Path, store: str
) -> None:
    """SIGKILL of the driver after some commits; the rerun neither duplicates nor loses a
    passage, in a local index folder and in a Milvus Lite file alike."""
    folder = tmp_path / "articles"
    shutil.copytree(CORPUS, folder)
    write_articles(folder, 120, seed=7)
    local = tmp_path / "local"
    r = rag("ingest", str(folder), index=local)
    assert r.returncode == 0, r.stderr
    theirs = index_print(local)

    index = tmp_path / "ray"
    env = {**cluster.env, "RAG_COMMIT_SECONDS": "0", "RAG_EMBED_BATCH_SIZE": "8"}
    target: Path | Settings = index
    if store == "milvus":
        env, target = milvus_lite(index, env)
    log = tmp_path / "ingest.log"
    with log.open("w") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "rag", "ingest", str(folder), "--ray", cluster.address],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**env, "RAG_INDEX_DIR": str(index), "RAG_RAY_ACTORS": "2"},
        )
        # Half the passages embedded: past the first two batches (8 passages, then 16, ...),
        # and the third is sent only after the first is written and committed; half is left
        # for the rerun. The bar is read, not the index: a second process cannot open a
        # Milvus Lite file while the ingest holds it.
        deadline = time.monotonic() + 120
        while (
            _embedded(log) < len(theirs.passages) // 2
            and child.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, log.read_text()  # killed mid-way, not finished
    partial = index_print(target)
    assert 0 < len(partial.passages) < len(theirs.passages)

    r = rag("ingest", str(folder), "--ray", cluster.address, "--json", index=index, env=env)
    assert r.returncode == 0, r.stderr
    r = rag("check", "--json", index=index, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    ours = index_print(target)
    assert len(ours.passages) == len(theirs.passages)
    assert sorted(ours.passages.values()) == sorted(theirs.passages.values())
    assert ours.sources == theirs.sources and ours.groups == theirs.groups
    assert differences(theirs, ours) == []  # even the passage ids: nothing was half-written


def test_a_killed_embedding_worker_is_retried_without_duplicates(
    cluster: RayCluster, tmp_path: Path
) -> None:
    """An actor's process SIGKILLed while it embeds (tests/ray_kill_worker.py): Ray restarts it
    and re-runs its calls, and the index comes out as the local one."""
    folder = tmp_path / "articles"
    shutil.copytree(CORPUS, folder)
    write_articles(folder, 40, seed=3)
    local = tmp_path / "local"
    assert rag("ingest", str(folder), index=local).returncode == 0

    index = tmp_path / "ray"
    r = subprocess.run(
        [sys.executable, "-m", "tests.ray_kill_worker", cluster.address, str(index), str(folder)],
        capture_output=True,
        text=True,
        env=cluster.env,
        cwd=Path(__file__).parents[1],
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["killed"] and len(out["report"]["added"]) == 45
    assert differences(index_print(local), index_print(index)) == []


def test_unreachable_cluster_is_one_line(articles: Path, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    r = rag("ingest", str(articles), "--ray", f"127.0.0.1:{port}", index=tmp_path / "i")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"rag: error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused"
    ]
    assert not (tmp_path / "i").exists()
    r = rag("ingest", str(articles), "--ray", "not-an-address", index=tmp_path / "i")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "not a Ray address" in r.stderr
