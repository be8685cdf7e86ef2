"""The Milvus store under everything above it: the same hits, answers and citations as the local
store, ingest sync, delete, check, stats, the LangChain retriever; one-line errors for a bad URI
and for a Milvus Lite file another process holds.

Real Milvus Lite in a temporary folder, one engine per module; each test its own collections.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rag.errors import StoreLocked, StoreUnavailable, outcome
from rag.retrieval.langchain import ArticleRetriever
from rag.settings import Settings
from rag.store.base import open_store
from rag.system import System
from rag.types import Answer, Filters, Hit
from tests.conftest import HashEmbedder

pytest.importorskip("pymilvus", reason="the scale extra is not installed")

QUESTION = "Who led the repair crew of the Harbor Bridge?"  # the page's seed question
QUESTIONS = [
    QUESTION,
    "How many suspension cables were replaced?",
    "When did the ferry timetable change?",
    "frost damage in the orchards",
]
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lite") / "index.db"


def milvus_settings(tmp_path: Path, lite: Path, **more: Any) -> Settings:
    prefix = f"m{next(_prefixes)}"
    return Settings(store="milvus", milvus_uri=str(lite), milvus_collection=prefix,
                    index_dir=tmp_path / "milvus-index", **more)  # fmt: skip


def both(tmp_path: Path, lite: Path, embedder: Any) -> tuple[System, System]:
    local = System(Settings(index_dir=tmp_path / "local-index"), embedder=embedder)
    return local, System(milvus_settings(tmp_path, lite), embedder=embedder)


class hits_of:  # noqa: N801  (reads as a function in the asserts)
    """Hits as (chunk, article) in rank order, equal when the scores agree within 1e-4 (the
    engines sum float32 products in different orders)."""

    def __init__(self, hits: list[Hit]) -> None:
        self.ids = [(h.chunk.id, h.article.id) for h in hits]
        self.scores = [h.score for h in hits]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, hits_of)
            and self.ids == other.ids
            and self.scores == pytest.approx(other.scores, abs=1e-4)
        )

    def __repr__(self) -> str:
        return repr(list(zip(self.ids, self.scores, strict=True)))


def answer_of(answer: Answer) -> tuple[Any, ...]:
    cites = [(c.article_id, c.start, c.end, c.quote) for c in answer.citations]
    return answer.text, cites, answer.abstained, answer.short_answer


@pytest.fixture
def dated_corpus(corpus_dir: Path) -> Path:
    (corpus_dir / "dated.txt").write_text(
        "Ferry timetable changes\n\nPublished on 2019-06-01\n\n"
        "The Alder Sound Transit Company changed its ferry timetable for the summer season.\n"
    )
    return corpus_dir


def test_hits_answers_and_citations_equal_the_local_store(
    tmp_path: Path, lite: Path, dated_corpus: Path
) -> None:
    local, milvus = both(tmp_path, lite, HashEmbedder())
    assert (
        local.ingest([dated_corpus]).summary().split(";")[0]
        == milvus.ingest([dated_corpus]).summary().split(";")[0]
    )
    filters = [None, Filters(source="*.md"), Filters(source="harbor"),
               Filters(date_from="2019-01-01"), Filters(source="*.txt", date_to="2019-12-31")]  # fmt: skip
    for q in QUESTIONS:
        for f in filters:
            assert hits_of(milvus.search(q, filters=f)) == hits_of(local.search(q, filters=f))
        assert answer_of(milvus.ask(q)) == answer_of(local.ask(q))
    assert milvus.list_articles() == local.list_articles()
    a, b = local.stats(), milvus.stats()
    for key in ("articles", "chunks", "model", "dimension", "duplicate_groups"):
        assert a[key] == b[key], key
    assert open_store(milvus.settings).check() == []


def test_the_articles_of_a_search_are_read_in_one_query(
    tmp_path: Path, lite: Path, corpus_dir: Path
) -> None:
    local, milvus = both(tmp_path, lite, HashEmbedder())
    local.ingest([corpus_dir])
    milvus.ingest([corpus_dir])
    reader = milvus.reader()
    ids = [reader.passage_ids(row["id"])[0] for row in reader.list_articles()]
    assert len(ids) > 2  # one passage of each of several articles
    fresh = milvus.reader()
    asked: list[str] = []
    query = fresh.client.query

    def counted(collection: str, **kw: Any) -> Any:
        asked.append(collection)
        return query(collection, **kw)

    fresh.client.query = counted
    found = fresh.passages(ids)
    assert asked.count(fresh.names.articles) == 1
    expected = local.reader().passages(ids)
    assert {i: (c.text, a.id) for i, (c, a) in found.items()} == {
        i: (c.text, a.id) for i, (c, a) in expected.items()
    }


def test_ingest_sync_delete_and_check(tmp_path: Path, lite: Path, corpus_dir: Path) -> None:
    emb = HashEmbedder()
    local, milvus = both(tmp_path, lite, emb)
    for system in (local, milvus):
        system.ingest([corpus_dir])
    again = milvus.ingest([corpus_dir])
    assert not again.added and not again.updated and again.chunks_embedded == 0
    edited = corpus_dir / "orchard_frost.txt"
    edited.write_text(edited.read_text() + "\nA late frost in May cut the cherry harvest again.\n")
    (corpus_dir / "library_lab.md").unlink()
    reports = [system.ingest([corpus_dir]) for system in (local, milvus)]
    assert [len(r.updated) for r in reports] == [1, 1] and [len(r.removed) for r in reports] == [
        1,
        1,
    ]
    assert reports[1].chunks_embedded == reports[0].chunks_embedded > 0
    gone = str(corpus_dir / "harbor_bridge_reprint.txt")
    for system in (local, milvus):
        system.delete([gone])
    assert milvus.list_articles() == local.list_articles()
    for q in QUESTIONS:
        assert hits_of(milvus.search(q)) == hits_of(local.search(q))
    assert open_store(milvus.settings).check() == []
    milvus.compact()  # every row no commit shows any more is deleted; nothing else changes
    store: Any = open_store(milvus.settings)
    retired = store.client().query(store.names.passages, filter="removed < 4611686018427387904",
                                   output_fields=["pid"])  # fmt: skip
    assert retired == [] and store.check() == []
    for q in QUESTIONS:
        assert hits_of(milvus.search(q)) == hits_of(local.search(q))
    docs = ArticleRetriever(retriever=milvus.retriever(), k=3).invoke(QUESTION)
    want = ArticleRetriever(retriever=local.retriever(), k=3).invoke(QUESTION)
    assert docs and [d.page_content for d in docs] == [d.page_content for d in want]
    for doc in docs:
        article = milvus.reader().article(doc.metadata["article_id"])
        assert article.text[doc.metadata["start"] : doc.metadata["end"]] == doc.page_content


@pytest.mark.parametrize(
    "uri, says",
    [
        ("ftp://example.org/x", "neither a Milvus Lite file"),
        ("notes.txt", "must end in .db"),
        ("{tmp}/no/such/folder/index.db", "does not exist"),
        ("http://127.0.0.1:9", "cannot reach Milvus"),
    ],
)
def test_a_bad_uri_is_one_line(tmp_path: Path, uri: str, says: str) -> None:
    uri = uri.format(tmp=tmp_path)
    store = open_store(Settings(store="milvus", milvus_uri=uri, index_dir=tmp_path))
    with pytest.raises(StoreUnavailable, match=says) as caught:
        store.reader("m") if "/no/such" not in uri else store.writer("m", 4).__enter__()
    said = outcome(caught.value)
    assert "\n" not in said.message and said.hint and said.exit_code != 0


@pytest.mark.usefixtures("processes")
def test_a_second_process_on_a_lite_file_gets_one_line_saying_what_to_do(
    tmp_path: Path, lite: Path, corpus_dir: Path
) -> None:
    settings = milvus_settings(tmp_path, lite)
    System(settings, embedder=HashEmbedder()).ingest([corpus_dir])  # this process holds the file
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_STORE": "milvus",
           "RAG_MILVUS_URI": str(lite), "RAG_MILVUS_COLLECTION": settings.milvus_collection}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "rag", "stats"], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert proc.returncode == StoreLocked.exit_code
    assert "open in another process" in proc.stderr and "Traceback" not in proc.stderr
    bad = {**env, "RAG_MILVUS_URI": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-m", "rag", "check"], capture_output=True, text=True,
                          env=bad, timeout=120)  # fmt: skip
    assert proc.returncode == StoreUnavailable.exit_code
    assert "cannot reach Milvus" in proc.stderr and "Traceback" not in proc.stderr


def test_the_seed_question_answers_the_same_with_the_real_model(
    tmp_path: Path, lite: Path, built_index: System
) -> None:
    milvus = System(milvus_settings(tmp_path, lite), embedder=built_index.embedder)
    milvus.ingest([Path(built_index.settings.index_dir).parent / "articles"])
    want, got = built_index.ask(QUESTION), milvus.ask(QUESTION)
    assert answer_of(got) == answer_of(want) and not got.abstained
    assert hits_of(milvus.search(QUESTION)) == hits_of(built_index.search(QUESTION))


def test_a_session_that_never_commits_is_undone_by_the_next_writer(
    tmp_path: Path, lite: Path, corpus_dir: Path
) -> None:
    from rag.store.milvus.writer import MilvusWriter
    from tests.store_contract import new_article

    settings = milvus_settings(tmp_path, lite)
    system = System(settings, embedder=HashEmbedder())
    system.ingest([corpus_dir])
    before, hits = system.list_articles(), hits_of(system.search(QUESTION))
    store: Any = open_store(settings)
    # A writer that dies half way: rows added and rows marked removed, no commit, no close.
    dead = MilvusWriter(store.client(), store.names, "hash-64", 64)
    dead.add_articles([new_article("Ghost", "A story about a ghost ship in Calder.", "/x/g.txt")])
    dead.add_source("/x/g.txt", dead._added.popitem()[0], None)
    dead.remove_source(str(corpus_dir / "orchard_frost.txt"))
    assert system.list_articles() == before  # readers never saw it
    again = system.ingest([corpus_dir])  # the next writer rolls it back first
    assert not (again.added or again.updated or again.removed) and again.chunks_embedded == 0
    assert system.list_articles() == before and hits_of(system.search(QUESTION)) == hits
    assert store.check() == []


@pytest.mark.usefixtures("processes")
def test_passage_rows_written_through_the_sink_are_published_by_the_commit_or_undone(
    tmp_path: Path, lite: Path
) -> None:
    """The Ray ingest's route into a server: the session hands out the passage rows and a
    sink, pickled as it is sent to a worker, writes them (twice, as a retried call would),
    giving the rows it has vectors for those vectors. The commit publishes each row once; a
    session closed without a commit leaves nothing of them."""
    import pickle

    import numpy as np

    from tests.milvus_server import MilvusServer
    from tests.store_contract import new_article

    assert open_store(Settings(index_dir=tmp_path / "local")).passage_sink() is None
    assert open_store(milvus_settings(tmp_path, lite)).passage_sink() is None  # one process's
    text = "The ferry to Calder runs twice a day. Its timetable changed in May."
    with MilvusServer(tmp_path / "served.db") as uri:
        store: Any = open_store(Settings(store="milvus", milvus_uri=uri, index_dir=tmp_path))

        def every_pid() -> list[int]:
            """The id of every passage row in the collection, of any version."""
            found = store.client().query(store.names.passages, filter="pid >= 0",
                                         output_fields=["pid"])  # fmt: skip
            return sorted(r["pid"] for r in found)

        with store.writer("hash-64", 64) as w:
            item = new_article("Ferry", text, "/x/ferry.txt")
            placeholder = np.zeros_like(item.vectors)  # the vectors are made by the sink's user
            rows = w.add_articles_deferred([replace(item, vectors=placeholder)])
            sink = pickle.loads(pickle.dumps(store.passage_sink()))
            made = dict(zip(item.embed_hashes, item.vectors, strict=True))
            sink.write(rows, made)
            sink.write(rows, made)
            w.add_source("/x/ferry.txt", item.article.id, None)
            w.commit()
        reader = store.reader("hash-64")
        pids = [r["pid"] for r in rows]
        assert reader.counts() == (1, len(pids)) and store.check() == []
        assert np.allclose(reader.vectors_for(pids), item.vectors, atol=1e-6)
        assert [c.text for c, _ in reader.passages(pids).values()] == [c.text for c in item.chunks]
        assert every_pid() == pids  # one row each

        with store.writer("hash-64", 64) as w:  # rows written, then the session ends uncommitted
            ghost = new_article("Ghost", "A ghost ship in Calder.", "/x/g.txt")
            sink.write(w.add_articles_deferred([ghost]), {})
        assert every_pid() == pids
        assert reader.refresh() is False and store.check() == []


_CHILD = """
import sys
from pathlib import Path
from rag.settings import Settings
from rag.system import System
from tests.conftest import HashEmbedder
settings = Settings(store="milvus", milvus_uri=sys.argv[1], milvus_collection=sys.argv[2],
                    index_dir=Path(sys.argv[3]), embed_batch_size=8)
print("started", flush=True)
System(settings, embedder=HashEmbedder()).ingest([Path(sys.argv[4])])
print("finished", flush=True)
"""


@pytest.mark.usefixtures("processes")
def test_an_ingest_killed_with_sigkill_leaves_nothing_duplicated_or_lost(tmp_path: Path) -> None:
    import signal
    import time

    from tests.synthetic import write_articles

    folder = tmp_path / "articles"
    write_articles(folder, 120, seed=4)
    lite = tmp_path / "kill.db"
    settings = Settings(store="milvus", milvus_uri=str(lite), milvus_collection="k",
                        index_dir=tmp_path / "kill-index")  # fmt: skip
    root = Path(__file__).parent.parent
    for delay in (1.5, 3.0):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(lite), "k", str(tmp_path / "kill-index"),
             str(folder)],
            cwd=root, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)},
        )  # fmt: skip
        assert child.stdout is not None and child.stdout.readline().strip() == "started"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    system = System(settings, embedder=HashEmbedder())
    if system.has_index():
        assert open_store(settings).check() == []  # the last commit, whole
    system.ingest([folder])
    local = System(Settings(index_dir=tmp_path / "local"), embedder=HashEmbedder())
    local.ingest([folder])
    assert open_store(settings).check() == []
    assert system.list_articles() == local.list_articles()
    assert system.reader().counts() == local.reader().counts()
    for q in QUESTIONS:
        assert hits_of(system.search(q)) == hits_of(local.search(q))


def test_the_page_answers_from_a_milvus_index(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lite: Path, built_index: System
) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    settings = milvus_settings(tmp_path, lite)
    System(settings, embedder=built_index.embedder).ingest(
        [Path(built_index.settings.index_dir).parent / "articles"]
    )
    for name, value in {"RAG_STORE": "milvus", "RAG_MILVUS_URI": str(lite),
                        "RAG_MILVUS_COLLECTION": settings.milvus_collection,
                        "RAG_INDEX_DIR": str(settings.index_dir)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    at = AppTest.from_file(str(Path(__file__).parent.parent / "app.py"), default_timeout=120)
    at.run()
    at.chat_input(key="question").set_value(QUESTION).run()
    assert not at.exception and not at.error
    answer = next(m.value for m in at.markdown if m.value.startswith('<div class="answer">'))
    assert "Lindqvist" in answer
    st.cache_resource.clear()


@pytest.mark.usefixtures("processes")
def test_a_served_file_is_shared_by_processes_and_writers_take_turns(
    tmp_path: Path, corpus_dir: Path, real_embedder: Any
) -> None:
    """`milvus-lite server` (a Milvus server, as far as the store can tell): the CLI and this
    process use one index at once; a second writer waits for the lease, then is refused."""
    import time

    from tests.milvus_server import MilvusServer

    with MilvusServer(tmp_path / "s.db") as uri:
        settings = Settings(store="milvus", milvus_uri=uri, index_dir=tmp_path / "index",
                            lock_timeout=1.0)  # fmt: skip
        system = System(settings, embedder=real_embedder)
        system.ingest([corpus_dir])
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_STORE": "milvus", "RAG_MILVUS_URI": uri,
               "RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_LOCK_TIMEOUT": "1"}  # fmt: skip

        def rag(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True,
                                  text=True, env=env, timeout=120)  # fmt: skip

        stats = rag("stats", "--json")
        assert stats.returncode == 0 and '"articles": 5' in stats.stdout
        model, dim = real_embedder.model_id, real_embedder.dimension
        with open_store(settings).writer(model, dim):  # this process holds the lease
            busy = rag("check")
            assert busy.returncode == 0, busy.stderr  # readers are never blocked
            started = time.monotonic()
            busy = rag("delete", str(corpus_dir / "orchard_frost.txt"))
            assert busy.returncode == 2 and "busy" in busy.stderr, busy.stderr
            assert "Traceback" not in busy.stderr and time.monotonic() - started >= 1.0
        assert system.reader().counts()[0] == 5


def test_quotes_wildcards_and_other_scripts_in_sources_and_queries(
    tmp_path: Path, lite: Path
) -> None:
    """Sources and questions go into Milvus expressions and BM25 text: nothing in them may break
    out of a string literal or change what a filter means."""
    from tests.store_contract import EMB, MODEL, fill, new_article

    names = ['/d/we"ird\\name 100%_x.txt', "/d/it's ünïcode – 東京.md", "/d/plain.txt"]
    items = [new_article(f"T{i}", f"Story {i} about the bridge in Ashford, 東京 and 3.5 ferries.",
                         n) for i, n in enumerate(names)]  # fmt: skip
    stores = [open_store(Settings(index_dir=tmp_path / "local")),
              open_store(milvus_settings(tmp_path, lite))]  # fmt: skip
    for store in stores:
        fill(store, items)
    local, milvus = (s.reader(MODEL) for s in stores)
    q = EMB.embed(["bridge"])[0]

    def same(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> bool:
        ids = [[r.passages([p])[p][0].id for p, _ in hits] for r, hits in ((milvus, a), (local, b))]
        return ids[0] == ids[1] and [s for _, s in a] == pytest.approx([s for _, s in b])

    for glob in ['we"ird', "*100%_x*", "*東京*", "it's", "*.md", "\\name", '") or (1 == 1']:
        f = Filters(source=glob)
        assert same(milvus.dense_search(q, 5, f), local.dense_search(q, 5, f)), glob
    for query in ['東京 "bridge" 100%', "3.5 ferries", "x_e69db1e4baac"]:
        assert same(milvus.lexical_search(query, 5), local.lexical_search(query, 5)), query
    assert stores[1].check() == []


@pytest.mark.parametrize(
    ("version", "refused"),
    [("v2.3.5", True), ("2.4.17", True), ("v2.5.0", False), ("v2.6.1", False),
     ("v3.0.0", False), ("master-20250101", False)],
)  # fmt: skip
def test_a_server_older_than_2_5_is_one_line_naming_the_version(
    version: str, refused: bool
) -> None:
    from rag.store.milvus.connect import check_server_version

    if not refused:
        check_server_version(version, "http://m:19530")
        return
    with pytest.raises(StoreUnavailable) as caught:
        check_server_version(version, "http://m:19530")
    said = outcome(caught.value)
    bare = version.removeprefix("v")
    assert said.message.startswith(f"Milvus server {bare} at http://m:19530 is older than 2.5")
    assert "BM25" in said.message and "\n" not in said.message and said.exit_code == 1


def test_the_client_does_not_ping_idle_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Milvus Lite's gRPC server answers idle pings with GOAWAY "too_many_pings", after which
    pymilvus failed to reconnect (docs/scaling.md): every client the store makes asks gRPC for
    pings during calls only."""
    import pymilvus

    from rag.store.milvus import connect as module

    made: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)

        def get_server_version(self, timeout: float) -> str:
            return "v2.5.4"

    monkeypatch.setattr(pymilvus, "MilvusClient", Recorder)
    module.connect("http://m:19530", "", lite=False, create=False)
    assert made[0]["grpc_options"]["grpc.keepalive_permit_without_calls"] == 0


@pytest.mark.usefixtures("processes")
def test_a_server_that_goes_away_is_one_line(tmp_path: Path, corpus_dir: Path) -> None:
    """The server stops while a process holds its index open: the next search, and the CLI,
    say so in one line (pymilvus raised, and logged, its own tracebacks)."""
    from tests.milvus_server import MilvusServer

    with MilvusServer(tmp_path / "served.db") as uri:  # stopped when the block ends
        settings = Settings(store="milvus", milvus_uri=uri, index_dir=tmp_path / "index")
        system = System(settings, embedder=HashEmbedder())
        system.ingest([corpus_dir])
        assert system.search(QUESTION)
    with pytest.raises(StoreUnavailable) as said:
        system.search("When did the ferry timetable change?")
    assert said.value.args[0].startswith(f"Milvus at {uri} failed (")
    assert "\n" not in said.value.args[0]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_STORE": "milvus", "RAG_MILVUS_URI": uri,
           "RAG_INDEX_DIR": str(tmp_path / "index")}  # fmt: skip
    r = subprocess.run([sys.executable, "-m", "rag", "stats"], capture_output=True, text=True,
                       env=env, timeout=120)  # fmt: skip
    assert r.returncode == 1 and r.stderr.startswith(f"rag: error: cannot reach Milvus at {uri}")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
