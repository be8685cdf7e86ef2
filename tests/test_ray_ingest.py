"""``rag ingest --ray`` end to end on a two-node Ray cluster started on this machine.

The cluster is two ``ray start --block`` processes of one CPU each (tests/ray_cluster.py); the
ingest runs as the ``rag`` command against it, with two embedding actors, so one actor embeds on
each node. Every Ray index is held to a local ingest of the same folder: the same passage ids and
offsets, sources and duplicate groups, vectors within cosine 0.9999 (tests/index_compare.py).
The Ray ingest writes a local index folder or, with RAG_STORE=milvus, a Milvus Lite file (through
the driver) or a Milvus server (tests/milvus_server.py), into which the workers write the passages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.settings import Settings
from tests.conftest import CORPUS
from tests.index_compare import differences, index_print
from tests.milvus_server import MilvusServer
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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with MilvusServer(tmp_path_factory.mktemp("milvus") / "served.db") as uri:
        yield uri


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


def served(index: Path, env: dict[str, str], uri: str) -> tuple[dict[str, str], Settings]:
    """``env`` pointed at collections of their own (named after ``index``) on the server."""
    prefix = f"t_{index.parent.name}_{index.name}".replace("-", "_")
    settings = Settings(store="milvus", milvus_uri=uri, milvus_collection=prefix, index_dir=index)
    return {**env, "RAG_STORE": "milvus", "RAG_MILVUS_URI": uri,
            "RAG_MILVUS_COLLECTION": prefix}, settings  # fmt: skip


def passage_rows(settings: Settings) -> list[int]:
    """The id of every passage row no commit has removed: a row written twice shows twice."""
    from rag.store.milvus.connect import LIVE
    from rag.store.milvus.store import MilvusStore

    store = MilvusStore.from_settings(settings)
    found = store.client().query(
        store.names.passages, filter=f"removed == {LIVE}", output_fields=["pid"]
    )
    return sorted(r["pid"] for r in found)


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


def test_two_node_ingest_into_a_milvus_server_is_written_by_the_workers(
    cluster: RayCluster, articles: Path, local_index: Path, server: str, tmp_path: Path
) -> None:
    folder, local, index = tmp_path / "articles", tmp_path / "local", tmp_path / "ray"
    shutil.copytree(articles, folder)
    env, settings = served(index, cluster.env, server)

    def both(*more: str) -> dict:
        """``folder`` ingested into a local index and, on the cluster, into the server."""
        assert rag("ingest", str(folder), index=local).returncode == 0
        r = rag("ingest", str(folder), "--ray", cluster.address, *more, index=index, env=env)
        assert r.returncode == 0, r.stderr
        assert differences(index_print(local), index_print(settings)) == []
        assert passage_rows(settings) == sorted(index_print(local).passages)  # no duplicates
        checked = rag("check", index=index, env=env)
        assert checked.returncode == 0 and "is consistent" in checked.stdout, checked.stderr
        return json.loads(r.stdout) if more else {"summary": r.stdout}

    out = both()
    assert out["summary"].startswith("5 added, 0 updated, 0 unchanged, 0 removed, 0 skipped")
    assert f"({len(index_print(local).passages)} written by the Ray workers)" in out["summary"]
    assert_same_answer(_ask(index, env), _ask(local))

    # An edited file is replaced and a deleted one removed, as a local ingest does.
    (folder / "orchard_frost.txt").unlink()
    bridge = folder / "harbor_bridge.txt"
    bridge.write_text(bridge.read_text() + "\nThe crew will inspect the cables every spring.\n")
    out = both("--json")
    assert out["updated"] == [str(bridge)] and out["removed"] == [str(folder / "orchard_frost.txt")]
    assert out["worker_writes"] >= 1
    out = both("--json")  # a rerun finds everything unchanged and writes nothing
    assert len(out["unchanged"]) == 4 and out["worker_writes"] == out["chunks_embedded"] == 0


def test_with_worker_writes_off_the_driver_writes_the_server_index(
    cluster: RayCluster, articles: Path, local_index: Path, server: str, tmp_path: Path
) -> None:
    """RAG_RAY_WORKER_WRITES=false, for nodes that cannot reach the server: the same index,
    every row written by the driver."""
    index = tmp_path / "ray"
    env, settings = served(index, {**cluster.env, "RAG_RAY_WORKER_WRITES": "false"}, server)
    r = rag("ingest", str(articles), "--ray", cluster.address, "--json", index=index, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["added"]) == 5 and out["worker_writes"] == 0
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


@pytest.mark.parametrize("store", ["local", "server"])
def test_a_killed_embedding_worker_is_retried_without_duplicates(
    cluster: RayCluster, server: str, tmp_path: Path, store: str
) -> None:
    """An actor's process SIGKILLed while it embeds (tests/ray_kill_worker.py): Ray restarts it
    and re-runs its calls, and the index comes out as the local one. Into a Milvus server the
    actors write the passages too, and a re-run call writes its rows again under their ids."""
    folder = tmp_path / "articles"
    shutil.copytree(CORPUS, folder)
    write_articles(folder, 40, seed=3)
    local = tmp_path / "local"
    assert rag("ingest", str(folder), index=local).returncode == 0

    index = tmp_path / "ray"
    target: Path | Settings = index
    args = [cluster.address, str(index), str(folder)]
    if store == "server":
        _, target = served(index, {}, server)
        args += [server, target.milvus_collection]
    r = subprocess.run(
        [sys.executable, "-m", "tests.ray_kill_worker", *args],
        capture_output=True,
        text=True,
        env=cluster.env,
        cwd=Path(__file__).parents[1],
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["killed"] and len(out["report"]["added"]) == 45
    theirs = index_print(local)
    assert differences(theirs, index_print(target)) == []
    if isinstance(target, Settings):
        assert out["report"]["worker_writes"] == len(theirs.passages)
        assert passage_rows(target) == sorted(theirs.passages)


def test_a_worker_that_cannot_reach_the_milvus_server_says_so_in_one_line(tmp_path: Path) -> None:
    """An address the driver reaches may not be one the nodes reach (``localhost`` on another
    machine): an actor checks before it is sent anything, and the error names the worker."""
    from rag.errors import StoreUnavailable
    from rag.ingest.ray_ingest import EmbedActor
    from rag.store.base import open_store

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sink = open_store(Settings(store="milvus", milvus_uri=uri, index_dir=tmp_path)).passage_sink()
    assert EmbedActor(Settings()).describe()[1] == 384  # it reaches nothing unless it writes
    with pytest.raises(StoreUnavailable) as said:
        EmbedActor(Settings(), sink).describe()
    message = said.value.args[0]
    assert len(message.splitlines()) == 1
    assert message.startswith(f"a Ray worker on {socket.gethostname()}: cannot reach")
    assert f"Milvus at {uri}" in message and "every node must reach" in message


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
