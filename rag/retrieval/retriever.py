"""Hybrid retrieval: dense + lexical candidates, fused, near-duplicates collapsed, optional MMR and filters."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np

from rag.embedder import Embedder
from rag.retrieval.fusion import convex, mmr, rrf
from rag.retrieval.versions import other_versions
from rag.settings import Settings
from rag.store.base import StoreReader
from rag.text.sentences import split_sentences
from rag.text.shingles import collapse, containment, shingles
from rag.text.terms import term_weights, weighted_share
from rag.text.tokens import tokenize
from rag.text.versions import fact_differences
from rag.types import Article, Chunk, Filters, Hit


class Retriever:
    """Finds the passages that best match a question."""

    def __init__(self, reader: StoreReader, embedder: Embedder, settings: Settings) -> None:
        self.reader = reader
        self.embedder = embedder
        self.settings = settings

    def embed_query(self, query: str) -> np.ndarray:
        return np.asarray(self.embedder.embed([query])[0], dtype=np.float32)

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        use_mmr: bool | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        s = self.settings
        k = k or s.k
        if k < 1:
            raise ValueError("k must be at least 1")
        query = query[: s.max_question_chars]
        if filters is not None and not filters.active():
            filters = None
        fetch = max(s.fetch_k, 3 * k)
        qvec = self.embed_query(query) if query_vector is None else query_vector
        dense = self.reader.dense_search(qvec, fetch, filters) if s.fusion != "lexical" else []
        lexical = self.reader.lexical_search(query, fetch, filters) if s.fusion != "dense" else []
        fused = self._fuse(dense, lexical)
        dense_by_id, lex_by_id = dict(dense), dict(lexical)
        # Take enough candidates that collapsing duplicates still leaves k.
        candidates = fused[: max(3 * k, k + 10)]
        rows = self.reader.passages([i for i, _ in candidates])
        if s.sentence_boost:
            candidates = self._boost_sentences(query, candidates, rows)
        # MMR last: it re-orders by relevance and diversity, and nothing may sort its order away.
        if use_mmr if use_mmr is not None else s.mmr:
            ids = [i for i, _ in candidates]
            order = mmr(
                ids,
                [sc for _, sc in candidates],
                self.reader.vectors_for(ids),
                len(ids),
                s.mmr_lambda,
            )
            by_id = dict(candidates)
            candidates = [(i, by_id[i]) for i in order]
        hits = []
        for pid, score in candidates:
            if pid not in rows:
                continue
            chunk, article = rows[pid]
            hits.append(
                Hit(
                    chunk=chunk,
                    article=article,
                    score=float(score),
                    dense_score=dense_by_id.get(pid),
                    lexical_score=lex_by_id.get(pid),
                )
            )
        if filters is None:  # with a filter, stay inside the sources the user asked for
            hits = [self._prefer_fullest(h) for h in hits]
        return [self._with_versions(h) for h in self._collapse(hits)[:k]]

    def _with_versions(self, hit: Hit) -> Hit:
        """The hit with its article's other versions and the facts they give differently."""
        if not hit.article.group_id:
            return hit
        return replace(hit, versions=other_versions(self.reader, hit.article))

    def _boost_sentences(
        self,
        query: str,
        candidates: list[tuple[int, float]],
        rows: dict[int, tuple[Chunk, Article]],
    ) -> list[tuple[int, float]]:
        """Favour passages with one sentence that holds many of the question's key terms.

        Adds ``sentence_boost`` times the best idf-weighted share of the question's terms found in a
        single sentence: a passage that answers tends to say it in one place, not scattered.
        """
        weights = term_weights(query, self.reader.idf)
        if not weights:
            return candidates
        boosted = []
        for pid, score in candidates:
            best = 0.0
            if pid in rows:
                for sent in sentence_terms(rows[pid][0]):
                    best = max(best, weighted_share(weights, sent))
            boosted.append((pid, score + self.settings.sentence_boost * best))
        boosted.sort(key=lambda p: (-p[1], p[0]))
        return boosted

    def _fuse(
        self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]
    ) -> list[tuple[int, float]]:
        s = self.settings
        if s.fusion == "dense":
            return dense
        if s.fusion == "lexical":
            return lexical
        if s.fusion == "rrf":
            return rrf([dense, lexical], k=s.rrf_k, weights=[s.dense_weight, 1 - s.dense_weight])
        return convex(dense, lexical, s.dense_weight)

    def _prefer_fullest(self, hit: Hit) -> Hit:
        """Cite the fullest version of a story: move a hit from a shorter version to the same passage
        in the fullest one, when that passage is there."""
        group = hit.article.group_id
        if not group or group == hit.article.id:
            return hit
        try:
            fullest = self.reader.article(group)
        except KeyError:
            return hit
        mine = shingles(hit.chunk.text)
        best, best_c = None, 0.0
        pids = self.reader.passage_ids(fullest.id)
        rows = self.reader.passages(pids)  # one query for the whole article, not one per passage
        for chunk, _ in (rows[r] for r in pids if r in rows):
            c = containment(mine, shingles(chunk.text))
            if c > best_c:
                best, best_c = chunk, c
        if best is None or best_c < self.settings.collapse_threshold:
            return hit
        if texts_disagree(hit.chunk.text, best.text):
            return hit  # the versions disagree here: cite this one as it is, the fullest too
        return replace(hit, chunk=best, article=fullest, also_in=(hit.article.source, *hit.also_in))

    def _collapse(self, hits: list[Hit]) -> list[Hit]:
        out = []
        for kept, dups in collapse(
            hits, lambda h: h.chunk.text, self.settings.collapse_threshold, _disagree
        ):
            others = [d.article.source for d in dups] + [s for d in dups for s in d.also_in]
            extra = [s for s in self.reader.sources_of(kept.article.id) if s != kept.article.source]
            also = tuple(
                dict.fromkeys(
                    s for s in [*kept.also_in, *others, *extra] if s != kept.article.source
                )
            )
            out.append(replace(kept, also_in=also))
        return out


def _disagree(a: Hit, b: Hit) -> bool:
    """Two near-copies that give a different number, date or name: both stay in the results."""
    return texts_disagree(a.chunk.text, b.chunk.text)


@lru_cache(maxsize=8192)
def texts_disagree(a: str, b: str) -> bool:
    """Whether two passage texts differ in a fact. Cached, and free for identical texts: an
    archive repeats wire copy, and the same pairs meet again question after question."""
    return a != b and bool(fact_differences(a, b))


@lru_cache(maxsize=20_000)
def sentence_terms(chunk: Chunk) -> tuple[frozenset[str], ...]:
    """The lexical terms of each sentence of a passage (cached: passages recur across questions)."""
    return tuple(frozenset(tokenize(chunk.text[a:b])) for a, b in split_sentences(chunk.text))
