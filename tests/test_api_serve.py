"""``rag serve`` as a process with the real model: the real OpenAI and LangChain clients, keys made
with ``rag keys``, the writer lock shared with a ``rag ingest`` process, and where it may listen."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.errors import IndexBusy
from rag.store.folder import IndexFolder
from tests.api_server import RagServe
from tests.conftest import CORPUS
from tests.synthetic import write_articles

pytestmark = pytest.mark.usefixtures("processes", "real_model")

QUESTION = "Who led the repair crew of the Harbor Bridge?"


def rag(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        timeout=300,
    )


class Served:
    def __init__(self, server: RagServe, index: Path, keys: dict[str, str]) -> None:
        self.server, self.index, self.keys = server, index, keys

    def client(self, role: str = "read") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=120)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    shutil.copytree(CORPUS, root / "articles")
    index, keys_file = root / "index", root / "keys"
    r = rag("ingest", str(root / "articles"), "--index", str(index))
    assert r.returncode == 0, r.stderr
    keys = {}
    for role in ("read", "write"):
        made = rag("keys", "add", f"{role}er", "--role", role, "--keys", str(keys_file))
        assert made.returncode == 0, made.stderr
        keys[role] = made.stdout.strip()
        assert "shown only this once" in made.stderr
    server = RagServe(
        "--index", str(index), "--keys", str(keys_file),
        env={"RAG_API_RATE_LIMIT": "0", "RAG_LOCK_TIMEOUT": "0.5"},
    )  # fmt: skip
    server.start()
    try:
        server.wait_ready()
        yield Served(server, index, keys)
    finally:
        server.stop()


def test_keys_command(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    made = rag("keys", "add", "alice", "--role", "write", "--keys", str(path), "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    assert key not in path.read_text() and "write alice" in path.read_text()
    listed = rag("keys", "list", env={"RAG_API_KEYS_FILE": str(path)})
    assert listed.stdout.split() == ["alice", "write"]
    again = rag("keys", "add", "alice", "--keys", str(path))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "exists" in again.stderr
    assert rag("keys", "remove", "alice", "--keys", str(path)).returncode == 0
    nowhere = rag("keys", "list")
    assert nowhere.returncode == 2 and "--keys FILE" in nowhere.stderr


def test_serve_refuses_all_interfaces_without_keys(tmp_path: Path) -> None:
    r = rag("serve", "--host", "0.0.0.0", "--index", str(tmp_path / "i"))
    assert r.returncode == 2
    assert r.stderr.startswith("rag: error: refusing to listen on 0.0.0.0 without API keys")
    assert r.stderr.count("\n") == 1 and "Uvicorn running" not in r.stderr


def test_openai_client_against_rag_serve(served: Served) -> None:
    from openai import AuthenticationError, OpenAI

    client = OpenAI(base_url=served.server.url + "/v1", api_key=served.keys["read"])
    assert "rag-articles" in [m.id for m in client.models.list()]
    done = client.chat.completions.create(
        model="rag-articles", messages=[{"role": "user", "content": QUESTION}]
    )
    msg = done.choices[0].message
    assert msg.content and "Lindqvist" in msg.content and "[1]" in msg.content
    citations = (msg.model_extra or {})["citations"]
    article = served.client().get("/v1/articles?limit=500").json()["articles"]
    c = citations[0]
    aid = next(a["id"] for a in article if a["source"] == c["source"])
    text = served.client().get(f"/v1/articles/{aid}").json()["text"]
    assert text[c["start"] : c["end"]] == c["quote"]

    # Streamed, with the history: the follow-up is about the crew of the first question.
    history: Any = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": msg.content},
        {"role": "user", "content": "How many workers were in it?"},
    ]
    parts, cited = [], []
    for chunk in client.chat.completions.create(
        model="rag-articles", messages=history, stream=True
    ):
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            cited += (choice.delta.model_extra or {}).get("citations") or []
    reply = "".join(parts)
    assert "140" in reply and cited and "140" in " ".join(x["quote"] for x in cited)

    bad = OpenAI(base_url=served.server.url + "/v1", api_key="rag-not-a-key", max_retries=0)
    with pytest.raises(AuthenticationError):
        bad.models.list()


def test_langchain_chat_openai_against_rag_serve(served: Served) -> None:
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        base_url=served.server.url + "/v1",
        api_key=served.keys["read"],  # type: ignore[arg-type]
        model="rag-articles",
    )
    first = chat.invoke(QUESTION)
    assert "Lindqvist" in str(first.content) and "Sources:" in str(first.content)
    follow = [
        HumanMessage(QUESTION),
        AIMessage(str(first.content)),
        HumanMessage("How many workers were in it?"),
    ]
    streamed = "".join(str(c.content) for c in chat.stream(follow))
    assert "140" in streamed and "[1]" in streamed


def test_ask_streams_events_with_the_real_model(served: Served) -> None:
    with served.client().stream(
        "POST", "/v1/ask", json={"question": QUESTION, "stream": True}
    ) as r:
        assert r.status_code == 200
        blocks = r.read().decode().strip().split("\n\n")
    kind, data = blocks[-1].split("\n", 1)
    answer = json.loads(data.removeprefix("data: "))
    assert kind == "event: answer" and not answer["abstained"]
    assert any("Lindqvist" in c["quote"] for c in answer["citations"])


def test_writer_lock_across_api_and_cli(served: Served, tmp_path: Path) -> None:
    """A ``rag ingest`` process and the API write to one index: the API's delete is refused
    while the CLI holds the lock (409), its upload job waits its turn, and both changes land."""
    write_articles(tmp_path / "bulk", 150, seed=7)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rag",
            "ingest",
            str(tmp_path / "bulk"),
            "--index",
            str(served.index),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    writer = served.client("write")
    try:
        victim = next(
            a for a in writer.get("/v1/articles?limit=500").json()["articles"]
            if a["source"].endswith("orchard_frost.txt")
        )  # fmt: skip
        deadline = time.monotonic() + 120
        saw_busy = False
        while cli.poll() is None and time.monotonic() < deadline and not saw_busy:
            try:
                with IndexFolder(served.index, lock_timeout=0).write_lock():
                    pass  # not taken yet: the CLI is still loading its model
                time.sleep(0.1)
                continue
            except IndexBusy:
                pass
            r = writer.delete(f"/v1/articles/{victim['id']}")
            if cli.poll() is None:  # the CLI held the lock before and after the request
                assert r.status_code == 409, r.text
                assert r.json()["error"]["type"] == "index_busy"
                assert str(served.index) not in r.text
                saw_busy = True
        job = writer.post(
            "/v1/articles",
            json={
                "title": "Kestrel survey",
                "text": "Volunteers counted nineteen kestrels on the moor.",
            },
        ).json()
        out, err = cli.communicate(timeout=600)
        assert cli.returncode == 0, err
        assert "150 added" in out
        assert saw_busy, "the CLI never held the lock while the test looked"
        while job["status"] in ("queued", "running"):
            time.sleep(0.2)
            job = writer.get(f"/v1/jobs/{job['id']}").json()
        assert job["status"] == "done" and job["files"][0]["status"] == "added"
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    stats = writer.get("/v1/stats").json()
    assert stats["articles"] == 5 + 150 + 1
    assert writer.delete(f"/v1/articles/{victim['id']}").status_code == 200
    check = rag("check", "--index", str(served.index))
    assert check.returncode == 0, check.stdout + check.stderr
