"""A real local HTTP server speaking the OpenAI chat-completions protocol, with scripted replies.

    server = OpenAIServer().start()
    server.enqueue("The bridge reopened in May [1].")
    ChatOpenAI(base_url=server.base_url, api_key="x", model="scripted")
    ...
    server.requests[-1]["messages"]   # what the client sent
    server.stop()

Each request to ``POST /v1/chat/completions`` takes the next scripted reply: a string (answered as
JSON, or as SSE chunks when the request has ``"stream": true``), ``Fail(status)`` for an HTTP error,
or ``Slow(text, delay)`` to wait before answering. An empty queue answers HTTP 500 so a test that
forgot to script a reply fails loudly. ``GET /v1/models`` lists one model.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Fail:
    """Answer with this HTTP status and an OpenAI-style error body."""

    status: int = 500
    message: str = "scripted failure"


@dataclass(frozen=True)
class Slow:
    """Wait ``delay`` seconds before answering ``text`` (and ``chunk_delay`` between SSE chunks)."""

    text: str
    delay: float = 0.0
    chunk_delay: float = 0.0


Reply = str | Fail | Slow


def tokens(text: str) -> list[str]:
    """How a reply is cut into streamed chunks: each word with the whitespace after it."""
    return re.findall(r"\S+\s*|\s+", text)


class OpenAIServer:
    """Scripted OpenAI-compatible server on 127.0.0.1 with a free port, run in a daemon thread."""

    model = "scripted-model"

    def __init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting ---------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else Fail(500, "no scripted reply")

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes handlers sleeping in a Slow reply
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def sleep(self, seconds: float) -> None:
        self._closing.wait(seconds)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server_state: OpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            model = {"id": OpenAIServer.model, "object": "model", "created": 0, "owned_by": "test"}
            self._json(200, {"object": "list", "data": [model]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            request = json.loads(body)
        except ValueError:
            self._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request"}})
            return
        state = self.server_state
        with state._lock:
            state.requests.append(request)
        reply = state._next()
        if isinstance(reply, Fail):
            self._json(reply.status, {"error": {"message": reply.message, "type": "server_error"}})
            return
        text, chunk_delay = reply, 0.0
        if isinstance(reply, Slow):
            state.sleep(reply.delay)
            text, chunk_delay = reply.text, reply.chunk_delay
        model = request.get("model", OpenAIServer.model)
        if request.get("stream"):
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            self._stream(text, model, chunk_delay, include_usage)
        else:
            self._json(200, _completion(text, model))

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (timeout test): nothing to do
            self.wfile.write(data)

    def _stream(self, text: str, model: str, chunk_delay: float, include_usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # no Content-Length: the body ends with the socket
        self.end_headers()
        self.close_connection = True
        created = int(time.time())
        events: list[dict[str, Any]] = [
            _chunk(model, created, {"role": "assistant", "content": ""})
        ]
        events += [_chunk(model, created, {"content": tok}) for tok in tokens(text)]
        events.append(_chunk(model, created, {}, finish="stop"))
        if include_usage:
            usage = _chunk(model, created, {})
            usage["choices"] = []
            usage["usage"] = _usage(text)
            events.append(usage)
        try:
            for event in events:
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
                if chunk_delay:
                    self.server_state.sleep(chunk_delay)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:
            pass


def _usage(text: str) -> dict[str, int]:
    n = len(tokens(text))
    return {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1}


def _completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(text),
    }


def _chunk(model: str, created: int, delta: dict[str, Any], finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A started scripted server, stopped after the test."""
    with OpenAIServer() as server:
        yield server
