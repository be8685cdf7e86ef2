"""Probes and statistics: /healthz (the process answers), /readyz (model loaded, index open), /v1/stats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from rag.api.deps import Reader, state_of
from rag.api.responses import SafeJSONResponse, error_body, error_response
from rag.api.schemas import ERRORS, ErrorOut

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready to answer: the model is loaded and the index is open",
    responses={503: {"model": ErrorOut, "description": "Not ready (the message says why)"}},
)
def readyz(request: Request) -> Response:
    state = state_of(request)
    if state.warmup_error is not None:
        return error_response(state.warmup_error, state.scrub)
    if not state.model_ready.is_set():
        return SafeJSONResponse(
            error_body("model_unavailable", "the embedding model is still loading"), 503
        )
    try:
        stats = state.system.stats()  # raises IndexMissing / CorruptIndex / ModelMismatch
    except Exception as e:  # noqa: BLE001 - the error's class carries its status (503 ...)
        return error_response(e, state.scrub)
    return SafeJSONResponse(
        {"status": "ready", "articles": stats["articles"], "model": stats["model"]}
    )


@router.get(
    "/v1/stats", summary="Articles, passages, model, near-duplicate groups", responses=ERRORS
)
def stats(request: Request, caller: Reader) -> Any:
    state = state_of(request)
    out = dict(state.system.stats())
    out.pop("index_dir", None)  # where the server keeps its files is no client's business
    out["jobs_pending"] = state.jobs.pending()
    return state.json(out)
