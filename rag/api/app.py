"""The FastAPI application: middleware (``rag.api.middleware``, CORS), the error map, the routers."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from rag import __version__
from rag.api.deps import ApiState
from rag.api.jobs import JobQueue
from rag.api.keys import KeyRing
from rag.api.middleware import BodyLimit, BrowserGuard, Headers
from rag.api.ratelimit import RateLimiter
from rag.api.responses import (
    PathScrubber,
    SafeJSONResponse,
    describe_error,
    error_body,
    error_response,
)
from rag.errors import RagError, outcome
from rag.system import System

log = logging.getLogger("rag.api")


_HTTP_KINDS = {
    400: "input_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}

DESCRIPTION = """\
Cited answers over the indexed articles: every answer is built from verbatim quotes, each with the
article and the character offsets it came from (`article.text[start:end] == quote`).

Send `Authorization: Bearer KEY` (a key made with `rag keys add`) unless the server runs without
keys on loopback. Errors are `{"error": {"type", "message"}}` with the HTTP status of their kind.
`/v1/chat/completions` speaks the OpenAI protocol, so OpenAI clients can chat with the articles.
"""


def _validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "the request is malformed"
    first = errors[0]
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return f"the body is not valid JSON ({detail})" if detail else "the body is not valid JSON"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def _warm_up(state: ApiState) -> None:
    """Load the model (and open the index if there is one) before the first question needs it.

    A model that cannot load stays the answer of /readyz; index problems are not kept here, as
    /readyz looks at the index afresh each time (it may be rebuilt while the server runs)."""
    try:
        state.system.embedder.embed(["warm up"])
    except Exception as e:  # noqa: BLE001 - /readyz reports it
        state.warmup_error = e
        if not outcome(e).expected:
            log.error("loading the model failed", exc_info=e)
        return
    state.model_ready.set()
    with contextlib.suppress(Exception):  # /readyz and every request report it themselves
        if state.system.has_index():
            state.system.reader()


def create_app(
    system: System, keys: KeyRing | None = None, *, warm_up: bool = True, busy_wait: float = 600.0
) -> FastAPI:
    """The API over ``system``. ``keys``: the accepted API keys (default: from the settings;
    empty means none are asked, which the server allows on loopback only)."""
    settings = system.settings
    scrub = PathScrubber(settings.index_dir)

    state = ApiState(
        system=system,
        keys=keys if keys is not None else KeyRing.from_settings(settings),
        limiter=RateLimiter(settings.api_rate_limit),
        scrub=scrub,
        jobs=JobQueue(
            lambda paths, progress: system.ingest(paths, progress=progress, sync=False),
            lambda e: describe_error(e, scrub)[1],
            busy_wait=busy_wait,
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm_up:
            threading.Thread(target=_warm_up, args=(state,), name="rag-warmup", daemon=True).start()
        else:
            state.model_ready.set()
        yield
        state.jobs.close()

    app = FastAPI(
        title="rag-articles",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
    )
    app.state.api = state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = _HTTP_KINDS.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else kind.replace("_", " ")
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"no route {request.method} {request.url.path[:200]}"
        return SafeJSONResponse(
            error_body(kind, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return SafeJSONResponse(
            error_body("invalid_request", _validation_message(exc)[:500]), status_code=422
        )

    async def known_error(request: Request, exc: Exception) -> Response:
        if not outcome(exc).expected:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(exc, scrub)

    for cls in (RagError, ValueError, OSError):  # handled where they happen, nothing re-raised
        app.add_exception_handler(cls, known_error)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        # Starlette logs it with its traceback after this answer is sent.
        return error_response(exc, scrub)

    from rag.api.routes import articles, health, openai_chat, questions

    for module in (health, questions, articles, openai_chat):
        app.include_router(module.router)

    if settings.api_cors_origins.strip():
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in settings.api_cors_origins.split(",") if o.strip()],
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if not state.keys:
        allowed = frozenset(o.strip() for o in settings.api_cors_origins.split(",") if o.strip())
        app.add_middleware(BrowserGuard, allowed=allowed)
    app.add_middleware(Headers)
    app.add_middleware(BodyLimit, max_bytes=int(settings.api_max_body_mb * 2**20))
    return app
