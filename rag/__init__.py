"""Cited answers over a collection of articles: every claim one click from its source.

Index a folder of articles, then ask questions; each answer is built from verbatim quotes, and
each quote carries a citation with the article and the character offsets it came from::

    from rag import Filters, Settings, System

    system = System(Settings(index_dir="my_index"))     # the model loads on first use
    report = system.ingest(["articles/"])                # files and folders; re-run to sync
    print(report.summary())

    answer = system.ask("Who leads the Sonora contingent?")
    print(answer.text)                                   # quotes with [n] markers
    for c in answer.citations:                           # article.text[c.start:c.end] == c.quote
        print(c.n, c.source, c.quote)

    hits = system.search("joint patrols", k=5, filters=Filters(date_from="2009-01-01"))
    follow_up = system.ask("Where is he based?", history=[(answer.question, answer.text)])

LangChain: ``system.chain()`` is the question-to-answer chain as a ``Runnable``, and
``ArticleRetriever(retriever=system.retriever())`` is a ``BaseRetriever`` whose documents carry
their offsets and scores. Errors are :class:`RagError` subclasses with a one-line message; each
carries its exit code, HTTP status and a hint (:func:`rag.errors.outcome`). Settings come from
``RAG_*`` environment variables or are passed in (see :class:`Settings`).

The packages, by stage: ``rag.ingest`` (files to cleaned, chunked articles), ``rag.text``
(sentences, terms, shingles), ``rag.store`` (the index on disk), ``rag.retrieval`` (hybrid search,
follow-ups, LangChain adapters), ``rag.answer`` (extractive and LLM answers, citation checks),
``rag.eval`` (the evaluation harness) and ``rag.cli`` (the ``rag`` command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.errors import (
    CorruptIndex,
    IndexBusy,
    IndexMissing,
    InputError,
    LLMError,
    ModelMismatch,
    ModelUnavailable,
    NotFound,
    RagError,
    SkipFile,
)
from rag.settings import Settings
from rag.types import (
    Answer,
    AnswerSentence,
    Article,
    Chunk,
    Citation,
    Document,
    Filters,
    Hit,
    PageSpan,
)

if TYPE_CHECKING:
    from rag.embedder import Embedder
    from rag.ingest.report import IngestReport
    from rag.retrieval.langchain import ArticleRetriever
    from rag.system import System

__version__ = "0.2.0"

__all__ = [
    "Answer",
    "AnswerSentence",
    "Article",
    "ArticleRetriever",
    "Chunk",
    "Citation",
    "CorruptIndex",
    "Document",
    "Embedder",
    "Filters",
    "Hit",
    "IndexBusy",
    "IndexMissing",
    "IngestReport",
    "InputError",
    "LLMError",
    "ModelMismatch",
    "ModelUnavailable",
    "NotFound",
    "PageSpan",
    "RagError",
    "Settings",
    "SkipFile",
    "System",
    "__version__",
]

# Loaded on first use: the model, the index and LangChain cost time that `import rag` need not pay.
_LAZY = {
    "System": "rag.system",
    "Embedder": "rag.embedder",
    "IngestReport": "rag.ingest.report",
    "ArticleRetriever": "rag.retrieval.langchain",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rag' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
