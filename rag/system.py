"""One object that the CLI and the page share: the model, the index and the answerers, loaded once."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from rag.answer.abstention import under_filters
from rag.answer.extractive import ExtractiveAnswerer
from rag.embedder import CheckedEmbeddings
from rag.errors import IndexMissing, InputError, NotFound, RagError
from rag.retrieval.retriever import Retriever
from rag.settings import Settings
from rag.store.base import StoreReader, open_store
from rag.types import Answer, Article, Filters, Hit

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from rag.ingest.pipeline import Progress
    from rag.ingest.report import IngestReport


_UNPRINTABLE = re.compile(r"[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f]")


def clean_question(question: str, settings: Settings) -> str:
    """The question with whitespace folded, control characters and lone surrogates (from
    undecodable command-line bytes) dropped, cut to ``max_question_chars``."""
    q = " ".join(_UNPRINTABLE.sub(" ", question or "").split())
    if not q:
        raise InputError("the question is empty: type a question about the indexed articles")
    return q[: settings.max_question_chars]


class ArticleInfo(NamedTuple):
    """One indexed article, the sources (files, records) that hold its text, and its near-duplicates."""

    article: Article
    sources: list[str]
    duplicates: list[Article]  # the other versions of the story, fullest first


class System:
    """The model, the index reader and the answerers; thread-safe, load-once."""

    def __init__(self, settings: Settings | None = None, embedder: Any = None) -> None:
        self.settings = settings or Settings()
        self.store = open_store(self.settings)
        self.embedder = embedder if embedder is not None else CheckedEmbeddings(self.settings)
        self._reader: StoreReader | None = None
        self._chat_model: Any = None
        self._lock = threading.Lock()

    # --- index --------------------------------------------------------------------------------
    def reader(self) -> StoreReader:
        """The committed index, reloaded when another process has committed a newer one."""
        with self._lock:
            if self._reader is None:
                self._reader = self.store.reader(self.embedder.model_id)
            else:
                self._reader.refresh()
            return self._reader

    def has_index(self) -> bool:
        return self.store.exists()

    def stats(self) -> dict[str, Any]:
        """The index's figures; each near-duplicate group says whether its versions differ in a
        fact (``differs``) or are plain reprints."""
        from rag.retrieval.versions import with_version_differences

        reader = self.reader()
        return with_version_differences(reader, reader.stats())

    def ingest(
        self,
        paths: Sequence[Path | str],
        progress: Progress | None = None,
        sync: bool = True,
        ray: str | None = None,
    ) -> IngestReport:
        """Bring the index in line with ``paths``. ``ray``: ingest on a Ray cluster at that address
        (``""``: RAG_RAY_ADDRESS, whose empty default starts one on this machine); the index comes
        out the same as without it."""
        if ray is not None:
            from rag.ingest.ray_ingest import RayIngestor  # Ray itself loads only here

            return RayIngestor(self.settings, self.embedder, progress, address=ray or None).run(
                paths, sync=sync
            )
        from rag.ingest.pipeline import Ingestor  # the loaders and cleaners load when needed

        return Ingestor(self.settings, self.embedder, progress).run(paths, sync=sync)

    def compact(self) -> None:
        """Merge the index into as few parts as it allows (maintenance; never needed to add)."""
        self.store.compact(self.embedder.model_id)

    def delete(self, sources: Sequence[str]) -> IngestReport:
        from rag.ingest.pipeline import Ingestor

        return Ingestor(self.settings, self.embedder).delete(sources)

    def delete_article(self, article_id: str) -> IngestReport:
        """Remove an article (every source that holds its text) and its uploaded copies."""
        from rag.ingest.uploads import remove_uploads, upload_dir

        sources = self.article_info(article_id).sources
        report = self.delete(sources)
        remove_uploads(sources, upload_dir(self.settings.index_dir))
        return report

    def list_articles(self, offset: int = 0, limit: int | None = None) -> tuple[int, list[dict]]:
        """(how many articles, one page of them from ``offset``), ordered by title."""
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError("offset and limit must not be negative")
        rows = self.reader().list_articles()
        return len(rows), rows[offset : None if limit is None else offset + limit]

    def article_info(self, article_id: str) -> ArticleInfo:
        """The article with this id; NotFound when the index has none."""
        reader = self.reader()
        try:
            article = reader.article(article_id)
        except KeyError:
            raise NotFound(f"no article with id {article_id!r} in the index") from None
        dups = reader.group_members(article.group_id) if article.group_id else []
        sources = reader.sources_of(article_id) or [article.source]
        return ArticleInfo(article, sources, [a for a in dups if a.id != article_id])

    # --- questions ----------------------------------------------------------------------------
    def retriever(self) -> Retriever:
        return Retriever(self.reader(), self.embedder, self.settings)

    def search(self, query: str, k: int | None = None, filters: Filters | None = None) -> list[Hit]:
        q = clean_question(query, self.settings)
        return self.retriever().search(q, k=k, filters=filters)

    def words_found(self, query: str) -> bool:
        """Whether any content word of ``query`` (as BM25 sees it: folded, stemmed) occurs in a
        passage of the index; when none does, search results are the closest by meaning only."""
        from rag.text.tokens import tokenize

        terms = sorted(set(tokenize(clean_question(query, self.settings))))
        if not terms:
            return True
        # A term no passage holds gets the highest idf there is: that of a term that cannot occur.
        *idf, unseen = self.reader().idf([*terms, "\x00"])
        return any(v < unseen - 1e-9 for v in idf)

    def chat_model(self) -> Any:
        """The configured LangChain chat model (made once), or None when answers are extractive."""
        if not self.settings.llm:
            return None
        with self._lock:
            if self._chat_model is None:
                from rag.answer.llm import make_chat_model

                self._chat_model = make_chat_model(self.settings)
            return self._chat_model

    def similarity(self, sentence: str, spans: Sequence[str]) -> list[float]:
        """Cosine similarity of a sentence to each span, with the embedding model."""
        if not spans:
            return []
        vecs = self.embedder.embed([sentence, *spans])
        return [float(x) for x in vecs[1:] @ vecs[0]]

    def answer_mode(self, mode: str | None = None) -> str:
        """The answer mode a request gets: the one it asks for, else the settings' default."""
        return mode or ("llm" if self.settings.llm else "extractive")

    def ask(
        self,
        question: str,
        k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[tuple[str, str]] = (),
        mode: str | None = None,
    ) -> Answer:
        for part in self.ask_stream(question, k, filters, history, mode):
            if isinstance(part, Answer):
                return part
        raise RagError("the answer was cut off before it finished")

    def ask_stream(
        self,
        question: str,
        k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[tuple[str, str]] = (),
        mode: str | None = None,
    ) -> Iterator[str | Answer]:
        """Tokens as the chat model produces them (none when extractive), then the final Answer.

        ``history`` holds earlier (question, answer) turns: a follow-up is rewritten into a
        standalone question before retrieval. ``mode`` is "extractive", "llm" or None (the setting).
        """
        q = clean_question(question, self.settings)
        mode = self.answer_mode(mode)
        if mode not in ("extractive", "llm"):
            raise ValueError(f"mode must be 'extractive' or 'llm', not {mode!r}")
        chat = self.chat_model() if mode == "llm" else None
        if mode == "llm" and chat is None:
            raise InputError("LLM answers need a chat model: set RAG_LLM (e.g. ollama:llama3.1)")
        standalone = q
        if history:
            from rag.retrieval.followup import condense_question

            standalone = condense_question(q, list(history), chat)
        retriever = self.retriever()
        qvec = retriever.embed_query(standalone)
        hits = retriever.search(standalone, k=k, filters=filters, query_vector=qvec)
        answer: Answer | None = None
        if chat is None:
            extractive = ExtractiveAnswerer(self.embedder, self.settings, idf=retriever.reader.idf)
            answer = extractive.answer(standalone, hits, qvec)
        else:
            from rag.answer.llm import LLMAnswerer

            for part in LLMAnswerer(chat, self.similarity, self.settings).answer_stream(
                standalone, hits
            ):
                if isinstance(part, str):
                    yield part
                else:
                    answer = part
        if answer is None:
            raise RagError("the chat model's answer was cut off before it finished")
        yield replace(
            under_filters(answer, filters),
            question=q,
            standalone_question=standalone if standalone != q else None,
        )

    def chain(self, k: int | None = None, filters: Filters | None = None) -> Runnable[Any, Answer]:
        """The question-to-answer chain as a LangChain Runnable (accepts a str or {"question": str})."""
        from langchain_core.runnables import RunnableLambda  # imported when a chain is wanted

        def run(inp: Any) -> Answer:
            question = inp["question"] if isinstance(inp, dict) else str(inp)
            return self.ask(question, k=k, filters=filters)

        return RunnableLambda(run, name="cited_answer")


def require_index(system: System) -> None:
    if not system.has_index():
        raise IndexMissing.at(system.settings.index_dir)
