"""Articles: list, read, add (files or a JSON text, indexed by a background job), delete; jobs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rag.api.deps import ApiState, Reader, Writer, state_of
from rag.api.schemas import (
    ERRORS,
    ArticleIn,
    ArticleOut,
    ArticlesPage,
    DeletedOut,
    JobOut,
)
from rag.errors import InputError, TooLarge
from rag.ingest.loaders import SUPPORTED_SUFFIXES
from rag.ingest.uploads import safe_upload_name, save_upload, upload_dir
from rag.serialize import article_json
from rag.types import content_hash

router = APIRouter(tags=["articles"])

_MAX_FILES = 100
_ARTICLES = TypeAdapter(ArticleIn | list[ArticleIn])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                    "required": ["files"],
                }
            },
            "application/json": {
                "schema": {
                    "oneOf": [
                        ArticleIn.model_json_schema(),
                        {"type": "array", "items": ArticleIn.model_json_schema()},
                    ]
                }
            },
        },
    }
}


@router.get(
    "/v1/articles",
    response_model=ArticlesPage,
    responses=ERRORS,
    summary="Indexed articles, by title",
)
def list_articles(
    request: Request,
    caller: Reader,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    state = state_of(request)
    total, rows = state.system.list_articles(offset, limit)
    articles = [
        {
            "id": r["id"],
            "source": r["source"],
            "title": r["title"],
            "date": r["date"],
            "group": r["group_id"],
            "chars": r["chars"],
            "chunks": r["chunks"],
        }
        for r in rows
    ]
    return state.json({"total": total, "offset": offset, "limit": limit, "articles": articles})


@router.get(
    "/v1/articles/{article_id}",
    response_model=ArticleOut,
    responses=ERRORS,
    summary="One article: cleaned text, metadata, sources and near-duplicate versions",
)
def get_article(article_id: str, request: Request, caller: Reader) -> Any:
    state = state_of(request)
    info = state.system.article_info(article_id[:100])
    return state.json(article_json(info.article, info.sources, info.duplicates))


@router.delete(
    "/v1/articles/{article_id}",
    response_model=DeletedOut,
    responses=ERRORS,
    summary="Remove an article (every source holding its text) and its uploaded copy",
)
def delete_article(article_id: str, request: Request, caller: Writer) -> Any:
    state = state_of(request)
    report = state.system.delete_article(article_id[:100])
    return state.json({"id": article_id, "removed": report.removed})


@router.post(
    "/v1/articles",
    status_code=202,
    response_model=JobOut,
    responses=ERRORS,
    openapi_extra=_UPLOAD_BODY,
    summary="Add articles: multipart files, or JSON {title, text, url, date}; indexed by a job",
)
async def add_articles(request: Request, caller: Writer) -> Any:
    """Files go to the upload folder under sanitised names (a name like ``../x.txt`` lands as
    ``x.txt``), JSON texts as one-record ``.json`` files there; then a job indexes them. The answer
    is the job (202, ``Location: /v1/jobs/{id}``)."""
    state = state_of(request)
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "multipart/form-data":
        uploads = await _save_files(state, request)
    elif ctype in ("application/json", ""):
        uploads = await _save_texts(state, await request.body())
    else:
        raise InputError(
            f"content type {ctype!r} is not accepted: send multipart/form-data files or JSON"
        )
    job = state.jobs.submit(uploads)
    return state.json(
        job.to_json(state.scrub.sources),
        status_code=202,
        headers={"Location": f"/v1/jobs/{job.id}"},
    )


async def _save_files(state: ApiState, request: Request) -> dict[Path, str]:
    settings = state.system.settings
    form = await request.form(max_files=_MAX_FILES, max_fields=_MAX_FILES)
    try:
        files = [v for k, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise InputError("no files in the form: send them as multipart fields named 'files'")
        limit = settings.max_file_mb * 2**20
        names: dict[str, UploadFile] = {}
        for f in files:
            name = safe_upload_name(f.filename or "")
            suffix = Path(name).suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                kinds = " ".join(sorted(SUPPORTED_SUFFIXES))
                raise InputError(
                    f"{name}: unsupported file type {suffix or '(no extension)'!r}; send {kinds}"
                )
            if f.size is not None and f.size > limit:
                raise TooLarge(f"{name} is over the limit of {settings.max_file_mb:g} MiB a file")
            if name in names:
                raise InputError(f"two files would be stored as {name!r}: rename one")
            names[name] = f
        folder = upload_dir(settings.index_dir)
        saved = {}
        for name, f in names.items():
            path = await run_in_threadpool(save_upload, folder, name, f.file)
            saved[path] = name
        return saved
    finally:
        await form.close()


async def _save_texts(state: ApiState, body: bytes) -> dict[Path, str]:
    settings = state.system.settings
    try:
        parsed = _ARTICLES.validate_json(body or b"null")
    except ValidationError as e:
        from fastapi.exceptions import RequestValidationError

        raise RequestValidationError(e.errors(include_url=False)) from None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items or len(items) > _MAX_FILES:
        raise InputError(f"send 1 to {_MAX_FILES} articles at a time")
    folder = upload_dir(settings.index_dir)
    saved: dict[Path, str] = {}
    for item in items:
        if len(item.text.encode()) > settings.max_file_mb * 2**20:
            raise TooLarge(f"an article's text is over the limit of {settings.max_file_mb:g} MiB")
        if not item.text.strip():
            raise InputError("an article's text is empty")
    for item in items:
        record = {k: v for k, v in item.model_dump().items() if v is not None}
        slug = re.sub(r"[^\w]+", "-", (item.title or "article").lower(), flags=re.ASCII)
        name = safe_upload_name(
            f"{slug.strip('-')[:60] or 'article'}-{content_hash(item.text)[:10]}.json"
        )
        data = json.dumps(record, ensure_ascii=False).encode()
        path = await run_in_threadpool(save_upload, folder, name, data)
        saved[path] = name
    return saved


@router.get(
    "/v1/jobs/{job_id}",
    response_model=JobOut,
    responses=ERRORS,
    tags=["articles"],
    summary="An ingest job: status, progress and what happened to each file",
)
def get_job(job_id: str, request: Request, caller: Writer) -> Any:
    state = state_of(request)
    return state.json(state.jobs.get(job_id).to_json(state.scrub.sources))
