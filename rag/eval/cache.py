"""Retrieval saved once, so the reading step can be re-run and tuned without the index or model.

A cache folder holds ``cache.json`` (for each question its ranked hits, with the articles they came
from, and the idf of the question's terms) and ``vectors.npy`` (the embedding of every question
and of every sentence of every retrieved article, rows in the order of ``texts`` in the JSON).
:class:`ReadingCache` gives back the hits, the question vector, an ``idf`` callable and an
embedder that answers from the saved vectors, so ``ExtractiveAnswerer`` runs exactly as it does
behind ``System.ask`` (``fallback`` embeds any text the cache lacks, e.g. after the reader
starts quoting spans the cache was not built for).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedder import Embedder
from rag.eval.questions import EvalQuestion
from rag.text.sentences import split_sentences
from rag.text.tokens import tokenize
from rag.types import Article, Chunk, Hit, PageSpan

__all__ = ["CachedEmbedder", "ReadingCache", "build_cache"]

VERSION = 1


class CachedEmbedder:
    """An Embedder that looks texts up in saved vectors; unknown texts go to ``fallback``."""

    def __init__(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        model_id: str,
        fallback: Callable[[], Embedder] | None = None,
    ) -> None:
        self._row = {t: i for i, t in enumerate(texts)}
        self._vectors = vectors
        self._model_id = model_id
        self._fallback = fallback
        self._inner: Embedder | None = None
        self._extra: dict[str, np.ndarray] = {}

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return int(self._vectors.shape[1])

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._row and t not in self._extra]
        if missing:
            if self._fallback is None:
                raise KeyError(f"{len(missing)} text(s) not in the cache, e.g. {missing[0][:60]!r}")
            if self._inner is None:
                self._inner = self._fallback()
            for t, v in zip(missing, self._inner.embed(missing), strict=True):
                self._extra[t] = np.asarray(v, dtype=np.float32)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            row = self._row.get(t)
            out[i] = self._vectors[row] if row is not None else self._extra[t]
        return out


def _article_json(a: Article) -> dict[str, Any]:
    d = asdict(a)
    d["pages"] = [asdict(p) for p in a.pages]
    return d


def _article(d: dict[str, Any]) -> Article:
    return Article(**{**d, "pages": tuple(PageSpan(**p) for p in d.get("pages", ()))})


class ReadingCache:
    """Saved hits, question vectors, idf and sentence vectors of one question set."""

    def __init__(self, data: dict[str, Any], vectors: np.ndarray) -> None:
        if data.get("version") != VERSION:
            raise ValueError(f"reading cache version {data.get('version')!r}, expected {VERSION}")
        self.data = data
        self.articles = {aid: _article(a) for aid, a in data["articles"].items()}
        self.vectors = vectors
        self._idf: dict[str, float] = data["idf"]
        self._qrow = {q["id"]: q for q in data["questions"]}
        self._text_row = {t: i for i, t in enumerate(data["texts"])}

    @classmethod
    def load(cls, folder: str | Path) -> ReadingCache:
        folder = Path(folder)
        data = json.loads((folder / "cache.json").read_text(encoding="utf-8"))
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        return cls(data, vectors)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / "vectors.npy", lambda fh: np.save(fh, self.vectors))
        text = json.dumps(self.data, ensure_ascii=False).encode("utf-8")
        _write_atomic(folder / "cache.json", lambda fh: fh.write(text))

    @property
    def model_id(self) -> str:
        return str(self.data["model_id"])

    def __contains__(self, qid: str) -> bool:
        return qid in self._qrow

    def hits(self, qid: str) -> list[Hit]:
        out = []
        for h in self._qrow[qid]["hits"]:
            chunk = Chunk(**h["chunk"])
            out.append(
                Hit(
                    chunk=chunk,
                    article=self.articles[chunk.article_id],
                    score=h["score"],
                    also_in=tuple(h["also_in"]),
                    dense_score=h.get("dense_score"),
                    lexical_score=h.get("lexical_score"),
                )
            )
        return out

    def question_vector(self, qid: str) -> np.ndarray:
        return np.asarray(self.vectors[self._text_row[self._qrow[qid]["question"]]])

    def idf(self, terms: Sequence[str]) -> list[float]:
        """The index's idf of each term (terms of the cached questions only)."""
        return [self._idf[t] for t in terms]

    def embedder(self, fallback: Callable[[], Embedder] | None = None) -> CachedEmbedder:
        return CachedEmbedder(self.data["texts"], self.vectors, self.model_id, fallback)


def _write_atomic(path: Path, write: Callable[[Any], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_cache(
    search: Callable[[str, np.ndarray], Sequence[Hit]],
    embedder: Embedder,
    idf: Callable[[Sequence[str]], list[float]],
    questions: Sequence[EvalQuestion],
    progress: Callable[[int, int], None] | None = None,
) -> ReadingCache:
    """Retrieve once for every question (``search(question, vector)``) and embed once every
    question and every sentence of the articles retrieved."""
    qvecs = embedder.embed([q.question for q in questions])
    articles: dict[str, Article] = {}
    rows = []
    terms: set[str] = set()
    for i, (q, qvec) in enumerate(zip(questions, qvecs, strict=True), start=1):
        hits = search(q.question, qvec)
        for h in hits:
            articles[h.article.id] = h.article
        terms |= set(tokenize(q.question))
        rows.append(
            {
                "id": q.id,
                "question": q.question,
                "hits": [
                    {
                        "chunk": asdict(h.chunk),
                        "score": h.score,
                        "also_in": list(h.also_in),
                        "dense_score": h.dense_score,
                        "lexical_score": h.lexical_score,
                    }
                    for h in hits
                ],
            }
        )
        if progress is not None:
            progress(i, len(questions))
    sentences = {a.text[s:e] for a in articles.values() for s, e in split_sentences(a.text)} - {
        q.question for q in questions
    }
    texts = [q.question for q in questions] + sorted(sentences)
    vectors = np.concatenate([qvecs, embedder.embed(texts[len(questions) :])]).astype(np.float32)
    sorted_terms = sorted(terms)
    data = {
        "version": VERSION,
        "model_id": embedder.model_id,
        "articles": {aid: _article_json(a) for aid, a in articles.items()},
        "questions": rows,
        "idf": dict(zip(sorted_terms, idf(sorted_terms), strict=True)),
        "texts": texts,
    }
    return ReadingCache(data, vectors)
