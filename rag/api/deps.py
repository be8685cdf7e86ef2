"""What every route shares: the server's state, and who is calling (API key, role, rate limit)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag.api.jobs import JobQueue
from rag.api.keys import KeyRing
from rag.api.ratelimit import RateLimiter
from rag.api.responses import PathScrubber, SafeJSONResponse
from rag.errors import Forbidden, InputError, RateLimited, Unauthorized
from rag.system import System
from rag.types import Filters

bearer = HTTPBearer(
    auto_error=False,
    description="An API key made with `rag keys add NAME --role read|write`. A server with no "
    "keys (loopback only) asks none.",
)


@dataclass
class ApiState:
    system: System
    keys: KeyRing
    limiter: RateLimiter
    scrub: PathScrubber
    jobs: JobQueue
    model_ready: threading.Event = field(default_factory=threading.Event)
    warmup_error: BaseException | None = None

    def json(self, content: Any, status_code: int = 200, **kw: Any) -> SafeJSONResponse:
        """A JSON response, server paths under the index folder shown relative to it."""
        return SafeJSONResponse(self.scrub.sources(content), status_code=status_code, **kw)


class Caller(NamedTuple):
    name: str
    role: str


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def _caller(state: ApiState, credentials: HTTPAuthorizationCredentials | None, need: str) -> Caller:
    if not state.keys:  # loopback only (checked when the server starts): one person's machine
        return Caller("local", "write")
    if credentials is None or not credentials.credentials:
        raise Unauthorized(
            "this server needs an API key: send the header Authorization: Bearer KEY"
        )
    key = state.keys.find(credentials.credentials)
    if key is None:
        raise Unauthorized("the API key is not valid")
    wait = state.limiter.check(key.name)
    if wait > 0:
        raise RateLimited(
            f"the key {key.name!r} has made more than {state.limiter.per_minute} requests a "
            f"minute; try again in {wait:.0f} s",
            wait,
        )
    if not key.allows(need):
        raise Forbidden(
            f"the key {key.name!r} has the {key.role} role; uploads, deletions and jobs need a "
            "key with the write role"
        )
    return Caller(key.name, key.role)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def read_access(request: Request, credentials: Credentials) -> Caller:
    """Search, ask, chat, read articles and stats: any valid key."""
    return _caller(state_of(request), credentials, "read")


def write_access(request: Request, credentials: Credentials) -> Caller:
    """Upload, ingest, delete, follow jobs: a key with the write role."""
    return _caller(state_of(request), credentials, "write")


Reader = Annotated[Caller, Depends(read_access)]
Writer = Annotated[Caller, Depends(write_access)]


def to_filters(f: Any) -> Filters | None:
    if f is None:
        return None
    filters = Filters(source=f.source, date_from=f.date_from, date_to=f.date_to)
    return filters if filters.active() else None


def check_question(text: str, state: ApiState, what: str = "question") -> None:
    """A question over the size the answerers read is refused, not silently cut."""
    limit = state.system.settings.max_question_chars
    if len(text) > limit:
        raise InputError(
            f"the {what} has {len(text):,} characters; the limit is {limit:,} "
            "(RAG_MAX_QUESTION_CHARS)"
        )
