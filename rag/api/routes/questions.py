"""Questions: POST /v1/search (passages) and POST /v1/ask (a cited answer, optionally streamed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from rag.api.deps import ApiState, Reader, check_question, state_of, to_filters
from rag.api.responses import describe_error, dumps
from rag.api.schemas import ERRORS, AnswerOut, AskIn, SearchIn, SearchOut
from rag.serialize import answer_json, hit_json
from rag.types import Answer

router = APIRouter(tags=["questions"])

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def sse(event: str, data: Any, scrub: Any) -> str:
    return f"event: {event}\ndata: {dumps(scrub(data))}\n\n"


@router.post(
    "/v1/search", response_model=SearchOut, responses=ERRORS, summary="The best passages, no answer"
)
def search(body: SearchIn, request: Request, caller: Reader) -> Any:
    state = state_of(request)
    check_question(body.query, state, "query")
    hits = state.system.search(body.query, k=body.k, filters=to_filters(body.filters))
    return state.json({"query": body.query, "hits": [hit_json(h) for h in hits]})


def _answer(a: Answer) -> dict[str, Any]:
    return {"question": a.question, **answer_json(a)}


@router.post(
    "/v1/ask",
    response_model=AnswerOut,
    responses={
        **ERRORS,
        200: {
            "description": "The answer; with `stream: true`, server-sent events (`token` ..., "
            "then `answer`, or `error`)",
            "content": {"text/event-stream": {}},
        },
    },
    summary="A cited answer (streamed as server-sent events with stream: true)",
)
def ask(body: AskIn, request: Request, caller: Reader) -> Any:
    state = state_of(request)
    check_question(body.question, state)
    parts = state.system.ask_stream(
        body.question,
        k=body.k,
        filters=to_filters(body.filters),
        history=[(t.question, t.answer) for t in body.history],
        mode=body.mode,
    )
    # The first part is where retrieval happens and most errors surface: reading it here lets
    # them be HTTP errors with their status rather than an event in a 200 stream.
    first = next(parts)
    if not body.stream:
        for part in _chain(first, parts):
            if isinstance(part, Answer):
                return state.json(_answer(part))
        raise RuntimeError("the answer stream ended without an answer")
    return StreamingResponse(
        _events(state, first, parts), media_type="text/event-stream", headers=SSE_HEADERS
    )


def _events(state: ApiState, first: str | Answer, parts: Iterator[str | Answer]) -> Iterator[str]:
    scrub = state.scrub.sources
    try:
        for part in _chain(first, parts):
            if isinstance(part, str):
                yield sse("token", {"text": part}, scrub)
            else:
                yield sse("answer", _answer(part), scrub)
    except Exception as e:  # noqa: BLE001 - the status is sent: report the error as an event
        yield sse("error", {"error": describe_error(e, state.scrub)[1]}, scrub)


def _chain(first: str | Answer, rest: Iterator[str | Answer]) -> Iterator[str | Answer]:
    yield first
    yield from rest
