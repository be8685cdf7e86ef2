"""OpenAI-compatible: GET /v1/models and POST /v1/chat/completions (streamed or not)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from rag.api import openai_format as oa
from rag.api.deps import ApiState, Reader, check_question, state_of, to_filters
from rag.api.responses import describe_error, dumps
from rag.api.schemas import ERRORS, ChatIn
from rag.retrieval.followup import standalone_history
from rag.types import Answer

router = APIRouter(tags=["openai"])

_KEEPALIVE_SECONDS = 5.0


@router.get("/v1/models", responses=ERRORS, summary="The models (answerers) this server offers")
def models(request: Request, caller: Reader) -> Any:
    state = state_of(request)
    # "created" is when the index these answerers read was last written (0 before any ingest).
    index_dir = state.system.settings.index_dir
    created = int(index_dir.stat().st_mtime) if state.system.has_index() else 0
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": created, "owned_by": "rag-articles"}
            for m in oa.model_ids(state.system.settings)
        ],
    }


@router.post(
    "/v1/chat/completions",
    responses=ERRORS,
    summary="Chat with the articles (the OpenAI protocol; citations in message.citations)",
)
def chat_completions(body: ChatIn, request: Request, caller: Reader) -> Any:
    """The last user message is the question; earlier turns make a follow-up standalone. The
    reply is the checked answer: streamed, it comes once checked (an LLM's draft is not sent), in
    OpenAI chunks, the last of which carries ``delta.citations``."""
    state = state_of(request)
    settings = state.system.settings
    mode = oa.mode_for(body.model, settings)
    question, history = oa.conversation(body.messages)
    check_question(question, state)
    if state.system.answer_mode(mode) == "extractive":
        # The client sends back what was typed: each earlier turn is made standalone in order,
        # so a chain of follow-ups keeps its subject (a chat model reads the turns as they are).
        history = standalone_history(history)
    parts = state.system.ask_stream(
        question, k=body.k, filters=to_filters(body.filters), history=history, mode=mode
    )
    first = next(parts)  # retrieval errors become HTTP errors, before any byte is sent
    if not body.stream:
        answer = _final(first, parts)
        return state.json(oa.completion(answer, body.model, question, state.scrub.source))
    include_usage = bool((body.stream_options or {}).get("include_usage"))
    return StreamingResponse(
        _chunks(state, body.model, question, first, parts, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _final(first: str | Answer, parts: Iterator[str | Answer]) -> Answer:
    if isinstance(first, Answer):
        return first
    for part in parts:
        if isinstance(part, Answer):
            return part
    raise RuntimeError("the answer stream ended without an answer")


def _data(obj: Any) -> str:
    return f"data: {dumps(obj)}\n\n"


def _chunks(
    state: ApiState,
    model: str,
    question: str,
    first: str | Answer,
    parts: Iterator[str | Answer],
    include_usage: bool,
) -> Iterator[str]:
    cid, created = oa.new_id(), int(time.time())
    source = state.scrub.source
    yield _data(oa.chunk(cid, model, created, {"role": "assistant", "content": ""}))
    try:
        answer = first if isinstance(first, Answer) else None
        beat = time.monotonic()
        while answer is None:
            part = next(parts)
            if isinstance(part, Answer):
                answer = part
            elif time.monotonic() - beat > _KEEPALIVE_SECONDS:
                yield ": the model is writing\n\n"  # an SSE comment keeps proxies from timing out
                beat = time.monotonic()
        text = oa.reply_text(answer, source)
        for piece in oa.pieces(text):
            yield _data(oa.chunk(cid, model, created, {"content": piece}))
        final = {
            "citations": oa.citations_json(answer, source),
            "short_answer": answer.short_answer,
        }
        yield _data(oa.chunk(cid, model, created, final, finish="stop"))
        if include_usage:
            last = oa.chunk(cid, model, created, {})
            last["choices"] = []
            last["usage"] = oa.usage(question, text)
            yield _data(last)
    except StopIteration:
        yield _data({"error": {"type": "internal", "message": "the answer was cut off"}})
    except Exception as e:  # noqa: BLE001 - the status is sent: the error goes in the stream
        yield _data({"error": describe_error(e, state.scrub)[1]})
    yield "data: [DONE]\n\n"
