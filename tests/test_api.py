"""The HTTP API served for real (uvicorn on a loopback port, in a thread) over a hash-embedder index:
every route, streaming (SSE and OpenAI chunks), jobs, the writer lock, and the real OpenAI and
LangChain clients. The real model and ``rag serve`` as a process are in test_api_serve.py."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.api.app import create_app
from rag.api.keys import KeyRing
from rag.api.schemas import AnswerOut, ArticleOut, ArticlesPage, JobOut, SearchOut
from rag.settings import Settings
from rag.store.folder import IndexFolder
from rag.system import System
from tests.api_server import LiveServer
from tests.conftest import CORPUS, HashEmbedder
from tests.openai_server import OpenAIServer

QUESTION = "When did the Harbor Bridge reopen to traffic?"


def make_index(root: Path) -> Path:
    articles, index = root / "articles", root / "index"
    shutil.copytree(CORPUS, articles)
    System(Settings(index_dir=index), embedder=HashEmbedder()).ingest([articles])
    return index


def serve(index: Path, keys: KeyRing | None = None, **settings: Any) -> LiveServer:
    system = System(Settings(index_dir=index, **settings), embedder=HashEmbedder())
    return LiveServer(create_app(system, keys=keys if keys is not None else KeyRing([]))).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No keys (a loopback server): requests need none."""
    srv = serve(make_index(tmp_path_factory.mktemp("api")))
    yield srv
    srv.stop()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def wait_job(c: httpx.Client, job: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        r = c.get(f"/v1/jobs/{job['id']}")
        assert r.status_code == 200, r.text
        job = r.json()
    return job


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((lines["event"], json.loads(lines["data"])))
    return events


# --- probes and stats ---------------------------------------------------------------------------
def test_health_ready_stats(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    deadline = time.monotonic() + 30
    while (r := client.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.json() == {"status": "ready", "articles": 5, "model": "hash-64"}
    stats = client.get("/v1/stats").json()
    assert stats["articles"] == 5 and stats["duplicate_groups"]
    assert "index_dir" not in stats  # the server's folders are nobody's business
    assert r.headers["x-content-type-options"] == "nosniff"


def test_not_ready_without_an_index(tmp_path: Path) -> None:
    srv = serve(tmp_path / "nothing-here")
    try:
        for r in (
            httpx.get(srv.url + "/readyz"),
            httpx.post(srv.url + "/v1/search", json={"query": "bridge"}),
            httpx.post(srv.url + "/v1/ask", json={"question": "bridge?"}),
        ):
            assert r.status_code == 503
            err = r.json()["error"]
            assert err["type"] in ("index_missing", "model_unavailable")
            assert str(tmp_path) not in r.text
        # The first upload makes the index: the same server is then ready and answers.
        c = httpx.Client(base_url=srv.url, timeout=30)
        job = c.post("/v1/articles", json={"title": "First", "text": "The first article is here."})
        assert wait_job(c, job.json())["status"] == "done"
        assert c.get("/readyz").json()["articles"] == 1
        assert c.post("/v1/search", json={"query": "first article"}).json()["hits"]
    finally:
        srv.stop()


# --- questions ----------------------------------------------------------------------------------
def test_search_returns_the_cli_shape(client: httpx.Client, server: LiveServer) -> None:
    r = client.post("/v1/search", json={"query": "bridge cables repair", "k": 3})
    assert r.status_code == 200, r.text
    body = SearchOut.model_validate(r.json())
    assert body.query == "bridge cables repair" and 1 <= len(body.hits) <= 3
    assert body.hits[0].source.endswith(".txt") and "Harbor" in body.hits[0].title
    hit = body.hits[0]
    article_id = next(
        a["id"]
        for a in client.get("/v1/articles?limit=500").json()["articles"]
        if a["source"] == hit.source
    )
    text = client.get(f"/v1/articles/{article_id}").json()["text"]
    assert text[hit.start : hit.end] == hit.text

    only = client.post(
        "/v1/search", json={"query": "bridge", "filters": {"source": "orchard*"}}
    ).json()
    assert only["hits"] and all("orchard" in h["source"] for h in only["hits"])


def test_ask_answers_with_verbatim_citations(client: httpx.Client) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200, r.text
    a = AnswerOut.model_validate(r.json())
    assert a.question == QUESTION and not a.abstained and a.mode == "extractive"
    assert a.citations and "[1]" in a.answer
    rows = client.get("/v1/articles?limit=500").json()["articles"]
    for c in a.citations:
        aid = next(x["id"] for x in rows if x["source"] == c.source)
        assert client.get(f"/v1/articles/{aid}").json()["text"][c.start : c.end] == c.quote


def test_ask_streams_server_sent_events(client: httpx.Client) -> None:
    plain = client.post("/v1/ask", json={"question": QUESTION}).json()
    with client.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    assert events[-1][0] == "answer"
    assert all(kind == "token" for kind, _ in events[:-1])  # extractive: no draft tokens
    assert events[-1][1] == plain


def test_ask_follow_up_uses_history(client: httpx.Client) -> None:
    first = client.post("/v1/ask", json={"question": "Who led the Harbor Bridge repair crew?"})
    turn = {"question": first.json()["question"], "answer": first.json()["answer"]}
    r = client.post("/v1/ask", json={"question": "How many workers?", "history": [turn]})
    assert r.status_code == 200, r.text
    assert "Harbor" in (r.json()["standalone_question"] or "")


# --- articles -----------------------------------------------------------------------------------
def test_articles_paged_and_one_with_its_duplicates(client: httpx.Client) -> None:
    page = ArticlesPage.model_validate(client.get("/v1/articles?offset=1&limit=2").json())
    assert page.total >= 5 and page.offset == 1 and len(page.articles) == 2
    everything = client.get("/v1/articles?limit=500").json()["articles"]
    assert [a["id"] for a in everything[1:3]] == [a.id for a in page.articles]
    bridge = next(a for a in everything if a["source"].endswith("harbor_bridge.txt"))
    one = ArticleOut.model_validate(client.get(f"/v1/articles/{bridge['id']}").json())
    assert one.text.startswith("The Harbor Bridge in Port Alder reopened")
    assert one.date == "2021-03-03" and one.group is not None
    assert [d.source.rsplit("/", 1)[-1] for d in one.duplicates] == ["harbor_bridge_reprint.txt"]
    assert client.get("/v1/articles?limit=0").status_code == 422


def test_add_a_json_text_then_delete_it(client: httpx.Client, server: LiveServer) -> None:
    text = "The lighthouse keeper of Gull Point counted forty-one ships on Tuesday."
    r = client.post(
        "/v1/articles",
        json={
            "title": "Gull Point log",
            "text": text,
            "date": "2024-05-01",
            "url": "https://x.org/a",
        },
    )
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    job = JobOut.model_validate(wait_job(client, r.json()))
    assert job.status == "done" and [f.status for f in job.files] == ["added"]
    assert job.files[0].name.endswith(".json") and job.progress["stage"] == "embed"

    hits = client.post("/v1/search", json={"query": "lighthouse keeper Gull Point"}).json()["hits"]
    top = hits[0]
    assert top["title"] == "Gull Point log" and top["date"] == "2024-05-01"
    assert top["source"].startswith("uploads/")  # relative to the index folder, not a server path
    aid = next(
        a["id"]
        for a in client.get("/v1/articles?limit=500").json()["articles"]
        if a["source"] == top["source"]
    )
    article = client.get(f"/v1/articles/{aid}").json()
    assert article["url"] == "https://x.org/a" and article["text"] == text

    # The same text again: nothing new to index.
    again = wait_job(
        client, client.post("/v1/articles", json={"title": "Gull Point log", "text": text}).json()
    )
    assert [f["status"] for f in again["files"]] == ["unchanged"]

    d = client.delete(f"/v1/articles/{aid}")
    assert d.status_code == 200, d.text
    assert d.json()["removed"] == [top["source"]]
    assert client.get(f"/v1/articles/{aid}").status_code == 404
    assert client.delete(f"/v1/articles/{aid}").status_code == 404
    uploads = list((Path(server.app.state.api.system.settings.index_dir) / "uploads").glob("gull*"))
    assert uploads == []  # the uploaded copy went with it


def test_upload_files_with_hostile_names(client: httpx.Client, server: LiveServer) -> None:
    index = Path(server.app.state.api.system.settings.index_dir)
    files = [
        (
            "files",
            ("../../escape.txt", b"Escaped files land in the upload folder, said the clerk."),
        ),
        ("files", ("notes.md", b"# Ferry notes\n\nThe night ferry carried ninety cyclists.")),
    ]
    r = client.post("/v1/articles", files=files)
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json())
    assert {f["name"]: f["status"] for f in job["files"]} == {
        "escape.txt": "added",
        "notes.md": "added",
    }
    assert (index / "uploads" / "escape.txt").is_file()
    assert not (index.parent / "escape.txt").exists() and not (index / "escape.txt").exists()
    assert all(s.startswith("uploads/") for s in job["report"]["added"])
    assert str(index) not in json.dumps(job)

    bad = client.post("/v1/articles", files=[("files", ("tool.exe", b"MZ"))])
    assert bad.status_code == 400 and "unsupported file type" in bad.json()["error"]["message"]
    twice = client.post(
        "/v1/articles", files=[("files", ("a/x.txt", b"one")), ("files", ("b/x.txt", b"two"))]
    )
    assert twice.status_code == 400 and "x.txt" in twice.json()["error"]["message"]
    none = client.post("/v1/articles", data={"title": "no file"}, files=[])
    assert none.status_code in (400, 422)


def test_upload_too_large_a_file(tmp_path: Path) -> None:
    srv = serve(make_index(tmp_path), max_file_mb=0.01)
    try:
        r = httpx.post(srv.url + "/v1/articles", files=[("files", ("big.txt", b"word " * 5000))])
        assert r.status_code == 413 and r.json()["error"]["type"] == "too_large"
        r = httpx.post(srv.url + "/v1/articles", json={"text": "word " * 5000})
        assert r.status_code == 413
        assert not list((tmp_path / "index" / "uploads").glob("*"))
    finally:
        srv.stop()


def test_unknown_job(client: httpx.Client) -> None:
    r = client.get("/v1/jobs/0123")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


# --- the writer lock ----------------------------------------------------------------------------
def test_writer_lock_held_elsewhere(tmp_path: Path) -> None:
    """Another writer (the CLI, the page) holds the lock: a delete is 409, an upload job waits."""
    index = make_index(tmp_path)
    srv = serve(index, lock_timeout=0.2)
    try:
        c = httpx.Client(base_url=srv.url, timeout=30)
        aid = c.get("/v1/articles").json()["articles"][0]["id"]
        with IndexFolder(index).write_lock():
            r = c.delete(f"/v1/articles/{aid}")
            assert r.status_code == 409 and r.json()["error"]["type"] == "index_busy"
            assert str(index) not in r.text
            job = c.post(
                "/v1/articles", json={"text": "Waiting for the lock is no failure."}
            ).json()
            deadline = time.monotonic() + 20
            while job["progress"]["stage"] != "waiting for the index":
                assert time.monotonic() < deadline and job["status"] in ("queued", "running"), job
                time.sleep(0.05)
                job = c.get(f"/v1/jobs/{job['id']}").json()
            time.sleep(0.5)  # it keeps waiting while the lock is held
            assert c.get(f"/v1/jobs/{job['id']}").json()["status"] == "running"
        assert wait_job(c, job)["status"] == "done"
        assert c.delete(f"/v1/articles/{aid}").status_code == 200
    finally:
        srv.stop()


# --- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "kind"),
    [
        ("GET", "/v2/nothing", {}, 404, "not_found"),
        ("PUT", "/v1/search", {}, 405, "method_not_allowed"),
        (
            "POST",
            "/v1/search",
            {"content": b"{bad json", "headers": {"content-type": "application/json"}},
            422,
            "invalid_request",
        ),
        ("POST", "/v1/search", {"json": {}}, 422, "invalid_request"),
        ("POST", "/v1/search", {"json": {"query": "x", "colour": "red"}}, 422, "invalid_request"),
        ("POST", "/v1/search", {"json": {"query": "x", "k": 0}}, 422, "invalid_request"),
        ("POST", "/v1/ask", {"json": {"question": "x", "mode": "magic"}}, 422, "invalid_request"),
        (
            "POST",
            "/v1/ask",
            {"json": {"question": "x", "filters": {"date_from": "May"}}},
            422,
            "invalid_request",
        ),
        ("POST", "/v1/ask", {"json": {"question": "   "}}, 400, "input_error"),
        ("POST", "/v1/ask", {"json": {"question": "x", "mode": "llm"}}, 400, "input_error"),
        (
            "POST",
            "/v1/articles",
            {"content": b"<xml/>", "headers": {"content-type": "text/xml"}},
            400,
            "input_error",
        ),
        (
            "POST",
            "/v1/articles",
            {"json": {"text": "x", "date": "yesterday"}},
            422,
            "invalid_request",
        ),
    ],
)
def test_errors_are_json_with_their_status(
    client: httpx.Client, method: str, path: str, kwargs: dict[str, Any], status: int, kind: str
) -> None:
    r = client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"} and body["error"]["type"] == kind
    assert body["error"]["message"] and "Traceback" not in r.text


def test_malformed_json_says_so(client: httpx.Client) -> None:
    r = client.post(
        "/v1/ask", content=b'{"question": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]
    r = client.post("/v1/ask", json={"k": 3})
    assert "question: Field required" in r.json()["error"]["message"]


def test_a_100k_character_question_is_refused(client: httpx.Client) -> None:
    r = client.post("/v1/ask", json={"question": "why " * 25_000})
    assert r.status_code == 400
    assert "100,000 characters" in r.json()["error"]["message"]
    assert len(r.content) < 500  # the question is not echoed back


def test_html_in_a_question_comes_back_escaped(client: httpx.Client) -> None:
    q = "<script>alert(1)</script> When did the <b>bridge</b> reopen & why?"
    for path, body in (("/v1/ask", {"question": q}), ("/v1/search", {"query": q})):
        r = client.post(path, json=body)
        assert r.status_code == 200
        assert b"<script>" not in r.content and b"<b>" not in r.content and b"&" not in r.content
        assert b"\\u003cscript\\u003e" in r.content
        assert r.json().get("question", r.json().get("query")) == q  # the same JSON value
    r = client.get("/v1/articles/<img src=x onerror=alert(1)>")
    assert r.status_code == 404 and b"<img" not in r.content


def test_a_100_mb_body_is_refused(client: httpx.Client) -> None:
    body = b"x" * (100 * 2**20)
    started = time.monotonic()
    r = client.post("/v1/articles", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b"y" * 2**20

    r = client.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "32 MiB" in r.json()["error"]["message"]
    assert time.monotonic() - started < 30


# --- OpenAI-compatible ----------------------------------------------------------------------------
def test_openai_client_chat_plain_and_streamed(server: LiveServer) -> None:
    from openai import NotFoundError, OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="not-needed")
    assert [m.id for m in client.models.list()] == ["rag-articles", "rag-articles-extractive"]
    messages: Any = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": QUESTION},
    ]
    done = client.chat.completions.create(model="rag-articles", messages=messages)
    msg = done.choices[0].message
    assert msg.role == "assistant" and done.choices[0].finish_reason == "stop"
    assert msg.content and "[1]" in msg.content and "\nSources:\n[1] " in msg.content
    citations = (msg.model_extra or {})["citations"]
    assert citations and {"source", "title", "quote", "start", "end", "url", "date", "page"} <= set(
        citations[0]
    )
    short = (msg.model_extra or {})["short_answer"]
    assert short and msg.content.startswith(f"{short} — [1]\n\n")  # the name asked for, first
    assert done.usage is not None and done.usage.completion_tokens > 0

    pieces, extra, shorts = [], [], []
    stream = client.chat.completions.create(
        model="rag-articles-extractive",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if (choice.delta.model_extra or {}).get("citations"):
                extra.append(choice.delta.model_extra["citations"])  # type: ignore[index]
                shorts.append(choice.delta.model_extra["short_answer"])  # type: ignore[index]
    assert "".join(pieces) == msg.content
    assert extra == [citations] and shorts == [short] and usage is not None

    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=messages)


def test_langchain_chat_openai_plain_and_streamed(server: LiveServer) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=server.url + "/v1", api_key="x", model="rag-articles")  # type: ignore[arg-type]
    reply = chat.invoke(QUESTION)
    assert "[1]" in str(reply.content) and "Sources:" in str(reply.content)
    streamed = "".join(str(c.content) for c in chat.stream(QUESTION))
    assert streamed == reply.content


def test_chat_history_drives_the_follow_up(client: httpx.Client) -> None:
    first = client.post(
        "/v1/chat/completions",
        json={
            "model": "rag-articles",
            "messages": [{"role": "user", "content": "Who led the Harbor Bridge repair crew?"}],
        },
    ).json()["choices"][0]["message"]["content"]
    follow = [
        {"role": "user", "content": "Who led the Harbor Bridge repair crew?"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": [{"type": "text", "text": "How many workers?"}]},
    ]
    alone = client.post("/v1/ask", json={"question": "How many workers?"}).json()
    r = client.post("/v1/chat/completions", json={"model": "rag-articles", "messages": follow})
    assert r.status_code == 200, r.text
    reply = r.json()["choices"][0]["message"]
    with_history = client.post(
        "/v1/ask",
        json={
            "question": "How many workers?",
            "history": [
                {"question": follow[0]["content"], "answer": first.split("\n\nSources:")[0]}
            ],
        },
    ).json()
    assert reply["citations"] == [
        {k: c[k] for k in ("n", "source", "title", "quote", "start", "end", "date", "page")}
        | {"url": None}
        for c in with_history["citations"]
    ]
    assert with_history["standalone_question"] and not alone["standalone_question"]


def test_chat_errors_are_openai_shaped(client: httpx.Client) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "rag-articles",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ],
        },
    )
    assert r.status_code == 400 and "last message" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json={"model": "rag-articles", "messages": []})
    assert r.status_code == 422


# --- LLM answers through the API (the scripted OpenAI-protocol server as the chat model) ----------
def test_llm_answers_stream_draft_tokens_then_the_checked_answer(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    with OpenAIServer() as llm:
        srv = serve(index, llm="openai:scripted-model", llm_base_url=llm.base_url)
        try:
            reply = (
                "The Harbor Bridge reopened to traffic on Wednesday [1]. It was painted pink [7]."
            )
            llm.enqueue(reply)
            with httpx.stream(
                "POST", srv.url + "/v1/ask", json={"question": QUESTION, "stream": True}, timeout=60
            ) as r:
                events = sse_events(r.read().decode())
            tokens = "".join(e["text"] for kind, e in events if kind == "token")
            assert tokens == reply  # the model's draft, as it came
            kind, answer = events[-1]
            assert kind == "answer" and answer["mode"] == "llm"
            assert "[7]" not in answer["answer"]  # the checked answer drops the invented citation

            llm.enqueue(reply)
            chat = httpx.post(
                srv.url + "/v1/chat/completions",
                json={
                    "model": "rag-articles-llm",
                    "stream": True,
                    "messages": [{"role": "user", "content": QUESTION}],
                },
                timeout=60,
            )
            content = "".join(
                json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                for line in chat.text.splitlines()
                if line.startswith("data: {")
            )
            assert content.startswith(answer["answer"])  # the checked text, never the draft
            assert "[7]" not in content and chat.text.rstrip().endswith("data: [DONE]")

            llm.enqueue(__import__("tests.openai_server", fromlist=["Fail"]).Fail(500))
            r = httpx.post(
                srv.url + "/v1/ask", json={"question": QUESTION, "mode": "llm"}, timeout=60
            )
            assert r.status_code == 502 and r.json()["error"]["type"] == "llm_error"
        finally:
            srv.stop()


def test_openapi_page_lists_every_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/healthz", "/readyz", "/v1/stats", "/v1/search", "/v1/ask", "/v1/articles",
        "/v1/articles/{article_id}", "/v1/jobs/{job_id}", "/v1/models", "/v1/chat/completions",
    }  # fmt: skip
    text = json.dumps(spec)
    schemas = spec["components"]["schemas"]
    for ref in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert ref in schemas, ref
    upload = spec["paths"]["/v1/articles"]["post"]["requestBody"]["content"]
    assert set(upload) == {"multipart/form-data", "application/json"}
    assert client.get("/docs").status_code == 200


def test_keyless_server_refuses_other_sites_pages(client: httpx.Client, server: LiveServer) -> None:
    """CSRF and DNS rebinding: without keys, only the browser stands between a page and the index."""
    index = Path(server.app.state.api.system.settings.index_dir)
    evil = client.post(
        "/v1/articles",
        files=[("files", ("planted.txt", b"Planted by a page from another site."))],
        headers={"Origin": "https://evil.example"},
    )
    assert evil.status_code == 403 and evil.json()["error"]["type"] == "forbidden"
    assert "cross-site" in evil.json()["error"]["message"]
    assert not (index / "uploads" / "planted.txt").exists()
    for origin in ("null", "http://127.0.0.1.evil.example"):
        r = client.post("/v1/search", json={"query": "bridge"}, headers={"Origin": origin})
        assert r.status_code == 403, origin
    rebound = client.get("/v1/articles", headers={"Host": "rebind.example:8000"})
    assert rebound.status_code == 403 and "loopback" in rebound.json()["error"]["message"]
    # The server's own origin (the /docs page) and clients that send no Origin are served.
    own = client.post("/v1/search", json={"query": "bridge"}, headers={"Origin": server.url})
    assert own.status_code == 200
    assert (
        client.get("/v1/articles", headers={"Host": f"localhost:{server.port}"}).status_code == 200
    )
