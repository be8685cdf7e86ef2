"""Request and response models: they validate what comes in and draw the OpenAPI page (/docs).

The answer and hit shapes are those of ``rag.serialize`` (the CLI's ``--json``); the response
models here describe them for the docs and accept fields added later (``extra="allow"``), and a
test checks real responses against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_DATE = r"^\d{4}-\d{2}-\d{2}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- requests -----------------------------------------------------------------------------------
class FiltersIn(_In):
    source: str | None = Field(
        None,
        max_length=500,
        description="Only sources whose file name or path matches this glob, or contains this text.",
    )
    date_from: str | None = Field(
        None, pattern=_DATE, description="Only articles dated on or after YYYY-MM-DD."
    )
    date_to: str | None = Field(
        None, pattern=_DATE, description="Only articles dated on or before YYYY-MM-DD."
    )


class SearchIn(_In):
    query: str = Field(..., min_length=1, description="What to look for.")
    k: int | None = Field(None, ge=1, le=100, description="Passages to return (default RAG_K).")
    filters: FiltersIn | None = None


class Turn(_In):
    question: str = Field(..., max_length=20_000)
    answer: str = Field("", max_length=50_000)


class AskIn(_In):
    question: str = Field(..., min_length=1, description="The question about the articles.")
    k: int | None = Field(None, ge=1, le=100, description="Passages to retrieve (default RAG_K).")
    filters: FiltersIn | None = None
    history: list[Turn] = Field(
        default_factory=list,
        max_length=50,
        description="Earlier turns, oldest first: a follow-up is made standalone from them.",
    )
    mode: Literal["extractive", "llm"] | None = Field(
        None, description="Answerer (default: llm when RAG_LLM is set, else extractive)."
    )
    stream: bool = Field(
        False,
        description="Server-sent events: `token` events with the model's draft, then one `answer` "
        "event with the checked answer (an `error` event if it fails).",
    )


class ArticleIn(_In):
    text: str = Field(..., min_length=1, description="The article's text (plain text or HTML).")
    title: str | None = Field(None, max_length=1000)
    url: str | None = Field(None, max_length=4000)
    date: str | None = Field(None, pattern=_DATE, description="YYYY-MM-DD")
    author: str | None = Field(None, max_length=1000)


# --- responses ----------------------------------------------------------------------------------
class HitOut(_Out):
    source: str
    title: str
    text: str
    score: float
    start: int
    end: int
    date: str | None
    page: int | None
    also_in: list[str]


class SearchOut(_Out):
    query: str
    hits: list[HitOut]


class CitationOut(_Out):
    n: int
    source: str
    title: str
    quote: str = Field(description="Verbatim: the article's text[start:end].")
    passage: str
    passage_start: int | None = None
    start: int
    end: int
    score: float
    date: str | None
    page: int | None
    also_in: list[str]


class SentenceOut(_Out):
    text: str
    citations: list[int]
    supported: bool


class AnswerOut(_Out):
    question: str
    answer: str
    short_answer: str = Field("", description="The span that answers, inside the first quote.")
    short_answer_start: int | None = None
    short_answer_end: int | None = None
    confidence: float | None = Field(None, description="Calibrated probability it is right.")
    abstained: bool
    mode: str
    standalone_question: str | None
    citations: list[CitationOut]
    sentences: list[SentenceOut]
    closest: list[HitOut]
    notes: list[str]


class ArticleRow(_Out):
    id: str
    source: str
    title: str
    date: str | None
    group: str | None
    chars: int
    chunks: int


class ArticlesPage(_Out):
    total: int
    offset: int
    limit: int
    articles: list[ArticleRow]


class DuplicateOut(_Out):
    id: str
    title: str
    source: str
    date: str | None
    chars: int


class ArticleOut(_Out):
    id: str
    title: str
    source: str
    sources: list[str]
    date: str | None
    author: str | None
    url: str | None
    site: str | None
    chars: int
    text: str = Field(description="The cleaned text: every citation's offsets point into it.")
    pages: list[dict[str, int]]
    group: str | None
    duplicates: list[DuplicateOut]


class FileResult(_Out):
    name: str
    status: str = Field(
        description="waiting, added, updated, unchanged (same text already indexed), skipped"
    )
    reason: str | None = None


class JobOut(_Out):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    created: float
    started: float | None
    finished: float | None
    progress: dict[str, Any]
    files: list[FileResult]
    report: dict[str, Any] | None
    error: dict[str, str] | None


class DeletedOut(_Out):
    id: str
    removed: list[str]


class ErrorDetail(_Out):
    type: str = Field(description="index_busy, not_found, input_error, unauthorized, ...")
    message: str


class ErrorOut(_Out):
    error: ErrorDetail


# --- OpenAI-compatible chat ---------------------------------------------------------------------
class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[Any] | None = None


class ChatIn(BaseModel):
    """The OpenAI chat-completions request; sampling options are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=200)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    k: int | None = Field(None, ge=1, le=100, description="Extension: passages to retrieve.")
    filters: FiltersIn | None = Field(None, description="Extension: restrict the articles.")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": what}
    for code, what in {
        400: "Bad input",
        401: "No valid API key",
        403: "The key's role does not allow this",
        404: "No such article, job, model or route",
        409: "Another process is writing to the index",
        413: "Body or file too large",
        422: "Malformed body",
        429: "Rate limit (see Retry-After)",
        503: "Model or index not ready",
    }.items()
}
