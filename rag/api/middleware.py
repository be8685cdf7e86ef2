"""The API's own middleware: the body limit, safe headers, and the keyless server's browser guard."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.api.responses import dumps, error_body
from rag.api.server import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _refuse(send: Send, status: int, kind: str, message: str) -> None:
    body = dumps(error_body(kind, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuses a body over ``max_bytes`` with 413: at once when Content-Length says so, else as it
    arrives. The rest of the body is read and dropped (for up to ``drain_seconds``) before the
    answer, as nginx's lingering close does: a client still sending when the socket closes may
    never see the 413, only a reset connection."""

    def __init__(self, app: Any, max_bytes: int, drain_seconds: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_seconds = drain_seconds

    def _message(self) -> str:
        return f"the request body is over the limit of {self.max_bytes / 2**20:g} MiB"

    async def _drain(self, receive: Receive) -> None:
        end = time.monotonic() + self.drain_seconds
        with contextlib.suppress(TimeoutError):
            while (left := end - time.monotonic()) > 0:
                message = await asyncio.wait_for(receive(), timeout=left)
                if message["type"] != "http.request" or not message.get("more_body"):
                    return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._drain(receive)
            await _refuse(send, 413, "too_large", self._message())
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if message.get("more_body"):
                        await self._drain(receive)
                    raise StarletteHTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)


class Headers:
    """Headers on every response: no MIME sniffing, no caching of answers, no framing."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for k, v in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ):
                    if k not in names:
                        headers.append((k, v))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BrowserGuard:
    """For a server without keys (loopback only): no requests from other sites' pages.

    Without keys, the one thing between a web page in the user's browser and the index is the
    browser. A page from another site may send a form (a multipart upload needs no CORS
    preflight), and a DNS-rebinding page may even read answers, naming the server by its own host
    name. So the Host must be a loopback name, and an Origin, when a browser sends one, a loopback
    origin or one of ``allowed``. Clients that are not browsers send no Origin. (With keys, a
    page cannot send one: browsers never add an Authorization header on their own.)
    """

    def __init__(self, app: Any, allowed: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin", b"").decode("latin-1")
        if not is_loopback(urlsplit(f"//{host}").hostname or ""):
            await _refuse(
                send, 403, "forbidden",
                "this server has no API keys, so it answers only requests naming it by a "
                "loopback address (127.0.0.1, localhost)",
            )  # fmt: skip
            return
        if (
            origin
            and origin not in self.allowed
            and not is_loopback(urlsplit(origin).hostname or "")
        ):
            await _refuse(
                send, 403, "forbidden",
                "cross-site request refused: a page from another site may not use this server "
                "(allow its origin with RAG_API_CORS_ORIGINS)",
            )  # fmt: skip
            return
        await self.app(scope, receive, send)
