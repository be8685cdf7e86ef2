"""BM25 over segments: each segment's postings are immutable, the statistics are global and exact.

Scores are BM25 in the Lucene form: ``idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` with
``idf(t) = log(1 + (N - df + 0.5) / (df + 0.5))``. This drops Okapi's constant ``(k1 + 1)``
numerator (ranking is unchanged) so scores equal ``bm25s.BM25(method="lucene")`` exactly.
Repeated query terms count once.

A :class:`LexicalSegment` holds the passages of one segment, by row (rows follow the segment's
sorted passage ids): the postings (per term, the rows that have it and how often), each row's
length, and each row's distinct terms (so that the statistics of deleted rows can be
subtracted). ``N``, ``avgdl`` and every ``df`` are summed over the live rows of all segments, so
a passage scores the same whether the index is one segment or many, and whatever was deleted.
:class:`LexicalView` is one segment with the deletions of one commit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["TUNED_B", "TUNED_K1", "LexicalBuilder", "LexicalSegment", "LexicalView", "idf",
           "search"]  # fmt: skip

# What new indexes use: chosen on SQuAD v1.1 with bench/tune_retrieval.py (passages of ~1,100
# characters carrying their article title; short passages and long titles favour a low b).
TUNED_K1 = 0.9
TUNED_B = 0.4
_MAX_TF = np.iinfo(np.uint16).max  # postings hold a term's count in one passage as uint16


def _tf16(counts: np.ndarray) -> np.ndarray:
    """Term counts as uint16 (half the bytes of int32); a count past 65,535 in one passage is
    clipped, where BM25 has long saturated."""
    if counts.dtype == np.uint16:
        return counts
    return np.minimum(counts, _MAX_TF).astype(np.uint16)


@dataclass(eq=False)
class LexicalSegment:
    """The BM25 data of one segment; never changed once built."""

    terms: list[str]
    post_ptr: np.ndarray  # int64, len(terms) + 1: postings of term t are [ptr[t], ptr[t+1])
    post_rows: np.ndarray  # int32, ascending within a term
    post_tf: np.ndarray  # uint16
    doc_len: np.ndarray  # int32 per row: tokens in the passage
    fwd_ptr: np.ndarray  # int64 per row + 1: the row's distinct terms are fwd_terms[ptr[r]:...]
    fwd_terms: np.ndarray  # int32 (may be a read-only memory map: only deletions read it)
    _vocab: dict[str, int] | None = field(default=None, repr=False)

    @property
    def n_docs(self) -> int:
        return len(self.doc_len)

    @property
    def vocab(self) -> dict[str, int]:
        if self._vocab is None:
            self._vocab = {t: i for i, t in enumerate(self.terms)}
        return self._vocab

    @classmethod
    def from_rows(cls, terms: list[str], csr: sp.csr_matrix, doc_len: np.ndarray) -> LexicalSegment:
        """From a rows x terms matrix of term counts (rows in passage-id order)."""
        csr.sort_indices()
        csc = csr.tocsc()
        csc.sort_indices()
        return cls(
            terms=terms,
            post_ptr=csc.indptr.astype(np.int64),
            post_rows=csc.indices.astype(np.int32),
            post_tf=_tf16(csc.data),
            doc_len=np.asarray(doc_len, np.int32),
            fwd_ptr=csr.indptr.astype(np.int64),
            fwd_terms=csr.indices.astype(np.int32),
        )

    @classmethod
    def build(cls, tokens: Sequence[Sequence[str]]) -> LexicalSegment:
        """A segment over tokenised passages, one row each, in the order given."""
        builder = LexicalBuilder()
        builder.add(tokens)
        return builder.build(np.arange(len(tokens)))

    @classmethod
    def merge(
        cls, parts: Sequence[tuple[LexicalSegment, np.ndarray]], order: np.ndarray | None = None
    ) -> LexicalSegment:
        """One segment of the rows ``keep`` of each part, parts and rows in the order given
        (then rearranged by ``order``, positions in that concatenation); terms that no kept row
        uses are dropped."""
        vocab: dict[str, int] = {}
        blocks, lengths = [], []
        for seg, keep in parts:
            csr = seg.rows_matrix()[keep]
            used = np.flatnonzero(np.bincount(csr.indices, minlength=len(seg.terms)))
            remap = np.full(len(seg.terms), -1, np.int64)
            for t in used.tolist():
                remap[t] = vocab.setdefault(seg.terms[t], len(vocab))
            csr = sp.csr_matrix((csr.data, remap[csr.indices], csr.indptr), shape=csr.shape)
            blocks.append(csr)
            lengths.append(seg.doc_len[keep])
        width = len(vocab)
        blocks = [sp.csr_matrix((b.data, b.indices, b.indptr), shape=(b.shape[0], width))
                  for b in blocks]  # fmt: skip
        merged = (
            sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, 0), dtype=np.int64)
        )
        doc_len = np.concatenate(lengths) if lengths else np.zeros(0, np.int32)
        if order is not None and not np.array_equal(order, np.arange(len(order))):
            merged, doc_len = merged[order], doc_len[order]
        return cls.from_rows(list(vocab), sp.csr_matrix(merged), doc_len)

    def rows_matrix(self) -> sp.csr_matrix:
        """Rows x terms counts (CSR), rebuilt from the postings."""
        csc = sp.csc_matrix(
            (self.post_tf.astype(np.int32), self.post_rows, self.post_ptr),
            shape=(self.n_docs, len(self.terms)),
        )
        return csc.tocsr()

    def term_counts_of(self, rows: np.ndarray) -> np.ndarray:
        """For each term, in how many of ``rows`` it occurs (rows are distinct)."""
        if len(rows) == 0:
            return np.zeros(len(self.terms), np.int64)
        ptr = self.fwd_ptr
        picked = [np.asarray(self.fwd_terms[ptr[r] : ptr[r + 1]]) for r in rows.tolist()]
        return np.bincount(np.concatenate(picked), minlength=len(self.terms)).astype(np.int64)


class LexicalBuilder:
    """Passages tokenised as they arrive, turned into a segment at commit."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.docs: list[np.ndarray] = []  # term ids of each passage, in order

    def add(self, tokens: Sequence[Sequence[str]]) -> None:
        vocab = self.vocab
        for doc in tokens:
            self.docs.append(
                np.fromiter((vocab.setdefault(t, len(vocab)) for t in doc), np.int32, len(doc))
            )

    def build(self, rows: np.ndarray) -> LexicalSegment:
        """A segment of the passages at positions ``rows`` (in that order)."""
        picked = [self.docs[r] for r in rows.tolist()]
        lengths = np.fromiter((len(d) for d in picked), np.int64, len(picked))
        flat = np.concatenate(picked) if picked else np.zeros(0, np.int32)
        row_of = np.repeat(np.arange(len(picked), dtype=np.int64), lengths)
        csr = sp.csr_matrix(
            (np.ones(len(flat), np.int64), (row_of, flat.astype(np.int64))),
            shape=(len(picked), len(self.vocab)),
        )
        csr.sum_duplicates()
        part = LexicalSegment.from_rows(list(self.vocab), csr, lengths)
        return LexicalSegment.merge([(part, np.arange(len(picked)))])  # drops unused terms


class LexicalView:
    """One segment as one commit sees it: without the rows deleted since it was written."""

    def __init__(self, seg: LexicalSegment, ids: np.ndarray, deleted_rows: np.ndarray) -> None:
        self.seg = seg
        self.ids = ids  # passage id of each row
        self.live: np.ndarray | None = None  # None: every row is live
        self.df = np.diff(seg.post_ptr)
        self.n_live = seg.n_docs
        self.live_len = int(seg.doc_len.sum(dtype=np.int64))
        if len(deleted_rows):
            self.live = np.ones(seg.n_docs, np.bool_)
            self.live[deleted_rows] = False
            self.df = self.df - seg.term_counts_of(deleted_rows)
            self.n_live -= len(deleted_rows)
            self.live_len -= int(seg.doc_len[deleted_rows].sum(dtype=np.int64))
        self._norm: tuple[float, np.ndarray] | None = None

    def term_df(self, term: str) -> int:
        t = self.seg.vocab.get(term)
        return 0 if t is None else int(self.df[t])

    def norm(self, k1: float, b: float, avgdl: float) -> np.ndarray:
        """``k1 * (1 - b + b * dl / avgdl)`` per row (kept while avgdl stays the same)."""
        cached = self._norm
        if cached is None or cached[0] != avgdl:
            dl = self.seg.doc_len.astype(np.float64)
            cached = self._norm = (avgdl, k1 * (1.0 - b + b * dl / avgdl))
        return cached[1]

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        t = self.seg.vocab.get(term)
        if t is None or self.df[t] <= 0:
            return None
        lo, hi = int(self.seg.post_ptr[t]), int(self.seg.post_ptr[t + 1])
        return self.seg.post_rows[lo:hi].astype(np.int64), self.seg.post_tf[lo:hi]

    def top(
        self,
        terms: list[str],
        idf: dict[str, float],
        common: list[str],
        k: int,
        norm: np.ndarray,
        allowed: np.ndarray | None,
    ) -> list[tuple[int, float]]:
        """This segment's ``k`` best (passage id, score) for ``terms`` (rarest first), only among
        live rows that ``allowed`` (a row mask) lets through."""
        posts = {t: p for t in terms if (p := self._postings(t)) is not None}
        if not posts:
            return []
        keep = (
            self.live if allowed is None else allowed if self.live is None else self.live & allowed
        )

        def weight(t: str, rows: np.ndarray, tf: np.ndarray) -> np.ndarray:
            tf64 = tf.astype(np.float64)
            return idf[t] * tf64 / (tf64 + norm[rows])

        def sparse(ts: list[str]) -> tuple[np.ndarray, np.ndarray]:
            parts = [(posts[t][0], weight(t, *posts[t])) for t in ts if t in posts]
            if not parts:
                return np.zeros(0, np.int64), np.zeros(0)
            rows, inverse = np.unique(np.concatenate([r for r, _ in parts]), return_inverse=True)
            scores = np.bincount(inverse.reshape(-1), weights=np.concatenate([w for _, w in parts]))
            if keep is not None:
                mask = keep[rows]
                rows, scores = rows[mask], scores[mask]
            return rows, scores

        # MaxScore-style shortcut: a term in more than 1/8 of all passages adds less than its
        # idf to any score. If the k-th best score over rows that contain a rarer query term
        # beats the sum of those idfs, no other row can reach this segment's top k.
        rare = [t for t in terms if t not in common]
        if rare and common:
            rows, scores = sparse(rare)
            if len(rows) >= k:
                for t in common:
                    if t in posts:
                        seg_rows, tf = posts[t]
                        pos = np.searchsorted(seg_rows, rows).clip(max=len(seg_rows) - 1)
                        hit = seg_rows[pos] == rows
                        scores[hit] += weight(t, rows[hit], tf[pos[hit]])
                best = self._best(rows, scores, k)
                if best[-1][1] > sum(idf[t] for t in common):
                    return best

        if sum(len(p[0]) for p in posts.values()) * 16 < self.seg.n_docs:
            return self._best(*sparse(terms), k)
        dense = np.zeros(self.seg.n_docs, np.float64)
        touched = np.zeros(self.seg.n_docs, np.bool_)  # scanning bytes beats float64s
        for t in terms:
            if t in posts:
                seg_rows, tf = posts[t]
                dense[seg_rows] += weight(t, seg_rows, tf)
                touched[seg_rows] = True
        if keep is not None:
            touched &= keep
        rows = np.flatnonzero(touched)
        return self._best(rows, dense[rows], k)

    def _best(self, rows: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (id, score), ties by smaller id."""
        if len(rows) > k:
            kth = -np.partition(-scores, k - 1)[k - 1]
            chosen = scores >= kth  # every tie at the k-th score, so the id decides among them
            rows, scores = rows[chosen], scores[chosen]
        ids = self.ids[rows]
        order = np.lexsort((ids, -scores))[:k]
        return [(int(ids[i]), float(scores[i])) for i in order]


def _totals(views: Sequence[LexicalView]) -> tuple[int, float]:
    n = sum(v.n_live for v in views)
    total = sum(v.live_len for v in views)
    return n, ((total / n) if n else 0.0) or 1.0


def idf(views: Sequence[LexicalView], terms: Sequence[str]) -> list[float]:
    """BM25 idf of already-tokenised terms; a term no live passage has gets the highest."""
    n, _ = _totals(views)
    out = []
    for t in terms:
        df = sum(v.term_df(t) for v in views)
        out.append(math.log(1.0 + (n - df + 0.5) / (df + 0.5)))
    return out


def search(
    views: Sequence[LexicalView],
    tokens: Sequence[str],
    k: int,
    k1: float,
    b: float,
    allowed: Sequence[np.ndarray | None] | None = None,
) -> list[tuple[int, float]]:
    """Up to ``k`` (passage id, BM25 score) with score > 0, best first, ties by smaller id;
    ``allowed``: per view, a mask of the rows a filter lets through (None: all)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n, avgdl = _totals(views)
    if k == 0 or n == 0:
        return []
    df = {t: sum(v.term_df(t) for v in views) for t in set(tokens)}
    # Rarest first; the order is canonical (df, then the term) so float sums never depend on
    # how the passages are split into segments or on the history of adds and removes.
    terms = sorted((t for t in df if df[t] > 0), key=lambda t: (df[t], t))
    if not terms:
        return []
    weights = {t: math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in terms}
    common = [t for t in terms if df[t] > n // 8]
    found: list[tuple[int, float]] = []
    for i, view in enumerate(views):
        if view.n_live:
            mask = allowed[i] if allowed is not None else None
            found += view.top(terms, weights, common, k, view.norm(k1, b, avgdl), mask)
    found.sort(key=lambda p: (-p[1], p[0]))
    return found[:k]
