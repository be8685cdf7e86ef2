"""LangChain adapters: the retriever as a ``BaseRetriever`` and hits as ``Document`` objects.

Kept apart from rag.retrieval.retriever so that commands which never hand passages to LangChain (ingest,
search, ask) do not pay for importing its retriever and tracing modules.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from rag.types import Hit


class ArticleRetriever(BaseRetriever):
    """LangChain adapter: passages as ``Document`` objects with their offsets and scores in metadata."""

    retriever: Any
    k: int = 5
    filters: Any = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        hits = self.retriever.search(query, k=self.k, filters=self.filters)
        return [hit_to_document(h) for h in hits]


def hit_to_document(hit: Hit) -> LCDocument:
    return LCDocument(
        page_content=hit.chunk.text,
        metadata={
            "source": hit.article.source,
            "title": hit.article.title,
            "article_id": hit.article.id,
            "chunk_id": hit.chunk.id,
            "start": hit.chunk.start,
            "end": hit.chunk.end,
            "score": hit.score,
            "date": hit.article.date,
            "page": hit.article.page_at(hit.chunk.start),
            "also_in": list(hit.also_in),
        },
    )
