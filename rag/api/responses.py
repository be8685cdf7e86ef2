"""What the API sends: JSON that is safe to echo, errors as ``{"error": {"type", "message"}}``.

JSON bodies escape ``<``, ``>`` and ``&`` (as ``\\u003c`` ...), so a question or an article that
holds HTML comes back as data a browser never renders, even if something serves it as HTML. Server
paths under the index folder are shown relative to it (``uploads/story.txt``): a client sees what
it uploaded, not where the server keeps it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse, Response

from rag.errors import IndexMissing, RateLimited, outcome

_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
# Fields that hold sources: in hits, answers and articles, and in ingest reports.
_PATH_KEYS = frozenset(
    {"source", "sources", "also_in", "added", "updated", "unchanged", "renamed", "removed"}
)


def dumps(obj: Any) -> str:
    """Compact JSON with the HTML-significant characters escaped (still the same JSON value)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).translate(_HTML_SAFE)


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


class PathScrubber:
    """Shows server paths under the index folder relative to it, in messages and source fields."""

    def __init__(self, index_dir: Path) -> None:
        raw = str(index_dir)
        resolved = str(Path(index_dir).resolve())
        self._prefixes = sorted({resolved, raw, str(Path(index_dir).absolute())}, key=len)[::-1]

    def text(self, s: str) -> str:
        for p in self._prefixes:
            s = s.replace(p + "/", "").replace(p, "the index folder")
        return s

    def source(self, s: str) -> str:
        for p in self._prefixes:
            if s.startswith(p + "/"):
                return s[len(p) + 1 :]
        return s

    def sources(self, obj: Any) -> Any:
        """``obj`` with every source field (``source``, ``also_in``, ``removed`` ...) made relative."""
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            for k, v in obj.items():
                if k in _PATH_KEYS and isinstance(v, str):
                    out[k] = self.source(v)
                elif k in _PATH_KEYS and isinstance(v, list):
                    out[k] = [self.source(x) if isinstance(x, str) else x for x in v]
                else:
                    out[k] = self.sources(v)
            return out
        if isinstance(obj, list):
            return [self.sources(v) for v in obj]
        return obj


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def describe_error(
    exc: BaseException, scrub: PathScrubber | None = None
) -> tuple[int, dict[str, str], dict[str, str]]:
    """(HTTP status, ``{"type", "message"}``, headers) for any exception; never a traceback.

    An unexpected error (a bug, a failing disk) reaches the client only as its kind and a line
    without server paths; the caller logs it with its traceback.
    """
    o = outcome(exc)
    if isinstance(exc, IndexMissing):
        message = "no articles are indexed yet: add some with POST /v1/articles (or `rag ingest`)"
    elif o.kind == "system_error":
        message = "the server could not read or write its files; its log says which"
    elif not o.expected:
        message = "internal error; the server log has the details"
    else:
        message = o.message
    if scrub is not None:
        message = scrub.text(message)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if o.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    status = o.http_status if 400 <= o.http_status < 600 else 500
    return status, {"type": o.kind, "message": message}, headers


def error_response(exc: BaseException, scrub: PathScrubber | None = None) -> Response:
    status, error, headers = describe_error(exc, scrub)
    return SafeJSONResponse({"error": error}, status_code=status, headers=headers)
