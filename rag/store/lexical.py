"""Incremental BM25 index over chunk ids (rag.store.lexical_files saves it as JSON + ``.npy``).

Scores are BM25 in the Lucene form: ``idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` with
``idf(t) = log(1 + (N - df + 0.5) / (df + 0.5))``. This drops Okapi's constant ``(k1 + 1)``
numerator (ranking is unchanged) so scores equal ``bm25s.BM25(method="lucene")`` exactly.
Repeated query terms count once.

Layout: per document, its distinct term ids and counts are appended to CSR-like arrays; removal
only clears a "live" flag and the arrays are compacted once more than a quarter of the rows are
dead. Search uses an inverted (CSC) view built lazily in two segments: a large base and a small
tail of recent additions, so adding a few documents to a big index rebuilds only the tail.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from rag.text.tokens import tokenize

__all__ = ["TUNED_B", "TUNED_K1", "LexicalIndex"]

_MAX_TF = np.iinfo(np.uint16).max  # postings hold a term's count in one passage as uint16


def _live_df(
    term_ids: np.ndarray,
    ptr: np.ndarray,
    live: np.ndarray,
    n_terms: int,
    rows_per_block: int = 1 << 16,
) -> np.ndarray:
    """Document frequency of every term over the live rows, a block of rows at a time (at
    once, the selected copy and bincount's int64 cast of it would add ~850 MB at 1M passages)."""
    df = np.zeros(n_terms, np.int64)
    for first in range(0, len(live), rows_per_block):
        end = min(first + rows_per_block, len(live))
        lo = int(ptr[first])
        keep = np.repeat(live[first:end], np.diff(ptr[first : end + 1]))
        df += np.bincount(term_ids[lo : int(ptr[end])][keep], minlength=n_terms)
    return df


def _tf16(counts: np.ndarray) -> np.ndarray:
    """Term counts as uint16, as the postings hold them (no copy if they are already).

    Half the bytes of int32 (140 MB less at a million passages); a count past 65,535 in one
    passage is clipped, where BM25 has long saturated.
    """
    if counts.dtype == np.uint16:
        return counts
    if len(counts) and int(counts.max()) > _MAX_TF:
        counts = np.minimum(counts, _MAX_TF)
    return counts.astype(np.uint16)


class _Buffer:
    """A 1-D array that grows by doubling, so appends are amortised O(appended)."""

    def __init__(self, dtype: type | np.dtype, data: np.ndarray | None = None) -> None:
        self._data = np.zeros(16, dtype) if data is None else np.ascontiguousarray(data, dtype)
        self._n = 0 if data is None else len(data)

    def extend(self, values: np.ndarray) -> None:
        need = self._n + len(values)
        if need > len(self._data):
            grown = np.zeros(max(need, 2 * len(self._data)), self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = values
        self._n = need

    @property
    def view(self) -> np.ndarray:
        return self._data[: self._n]


# What new indexes use: chosen on SQuAD v1.1 with bench/tune_retrieval.py (passages of ~1,100
# characters carrying their article title; short passages and long titles favour a low b).
TUNED_K1 = 0.9
TUNED_B = 0.4


class LexicalIndex:
    """BM25 over chunk ids (int64 chosen by the caller). Not safe for concurrent writers."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        if not (math.isfinite(k1) and k1 >= 0):
            raise ValueError(f"k1 must be a finite number >= 0, got {k1!r}")
        if not 0.0 <= b <= 1.0:
            raise ValueError(f"b must be between 0 and 1, got {b!r}")
        self.k1 = float(k1)
        self.b = float(b)
        self._terms: list[str] = []
        self._vocab: dict[str, int] = {}
        self._doc_ptr = _Buffer(np.int64, np.zeros(1, np.int64))
        self._term_ids = _Buffer(np.int32)
        self._term_counts = _Buffer(np.int32)
        self._doc_len = _Buffer(np.int32)
        self._doc_ids = _Buffer(np.int64)
        self._live = _Buffer(np.bool_)
        self._df = np.zeros(0, np.int64)
        self._n_live = 0
        self._live_len = 0  # total length of live documents, for avgdl
        self._lock = threading.Lock()
        self._read_only = False
        self._terms_dropped = False  # read-only, postings built, term arrays let go
        self._reset_caches()

    def make_read_only(self) -> None:
        """Searches only from here on; changes raise RuntimeError. The per-document term
        arrays, which only adding, removing and saving use, are let go once the first search
        has built the postings from them (at a million passages about 540 MB, as much again
        as the postings); an index that is never searched never builds them. Until then the
        term counts are kept as the postings hold them (uint16), so that building the postings
        needs no converted copy of them next to the originals."""
        with self._lock:
            self._read_only = True
            if not self._terms_dropped:
                self._term_counts = _Buffer(np.uint16, _tf16(self._term_counts.view))
            self._drop_term_arrays_if_built()

    def _drop_term_arrays_if_built(self) -> None:
        n_rows = len(self._live.view)
        if self._base is not None and self._base[0] == n_rows and self._tail is None:
            self._term_ids = _Buffer(np.int32)
            self._term_counts = _Buffer(np.int32)
            self._terms_dropped = True

    @classmethod
    def from_arrays(
        cls, k1: float, b: float, terms: list[str], arrays: dict[str, np.ndarray]
    ) -> LexicalIndex:
        """An index over arrays that :meth:`arrays` gave (rag.store.lexical_files checks them first)."""
        index = cls(k1=k1, b=b)
        ptr, tids, live = arrays["doc_ptr"], arrays["term_ids"], arrays["live"]
        index._terms = terms
        index._vocab = {t: i for i, t in enumerate(terms)}
        index._doc_ptr = _Buffer(np.int64, ptr)
        index._term_ids = _Buffer(np.int32, tids)
        index._term_counts = _Buffer(np.int32, arrays["term_counts"])
        index._doc_len = _Buffer(np.int32, arrays["doc_len"])
        index._doc_ids = _Buffer(np.int64, arrays["doc_ids"])
        index._live = _Buffer(np.bool_, live)
        index._df = _live_df(tids, ptr, live, len(terms))
        index._n_live = int(live.sum())
        index._live_len = int(arrays["doc_len"][live].sum())
        return index

    def arrays(self) -> tuple[list[str], dict[str, np.ndarray]]:
        """The terms and the per-document arrays (views, not copies), as they are saved."""
        self._check_writable()
        return self._terms, {
            "doc_ptr": self._doc_ptr.view,
            "term_ids": self._term_ids.view,
            "term_counts": self._term_counts.view,
            "doc_len": self._doc_len.view,
            "doc_ids": self._doc_ids.view,
            "live": self._live.view,
        }

    def _check_writable(self) -> None:
        if self._read_only:
            raise RuntimeError("this lexical index was opened for searching only")

    # --- caches ---------------------------------------------------------------------------

    def _reset_caches(self) -> None:
        self._sorted_ids: np.ndarray | None = None  # live ids, sorted
        self._sorted_rows: np.ndarray | None = None  # their rows
        self._base: tuple[int, sp.csc_matrix] | None = None  # (end row, postings of rows < end)
        self._tail: sp.csc_matrix | None = None  # postings of rows >= base end
        self._norm: np.ndarray | None = None  # k1 * (1 - b + b * dl / avgdl) per row

    def _id_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        if self._sorted_ids is None or self._sorted_rows is None:
            rows = np.flatnonzero(self._live.view)
            ids = self._doc_ids.view[rows]
            order = np.argsort(ids, kind="stable")
            self._sorted_ids, self._sorted_rows = ids[order], rows[order]
        return self._sorted_ids, self._sorted_rows

    def _postings(self, first: int, end: int) -> sp.csc_matrix:
        """Documents x terms counts of rows ``first:end`` as CSC (columns = posting lists)."""
        if self._terms_dropped:  # cannot happen: every row is in the postings already
            raise RuntimeError("the term arrays of this read-only index are gone")
        ptr = self._doc_ptr.view
        lo, hi = int(ptr[first]), int(ptr[end])
        csr = sp.csr_matrix(
            (
                _tf16(self._term_counts.view[lo:hi]),
                self._term_ids.view[lo:hi],
                ptr[first : end + 1] - lo,
            ),
            shape=(end - first, len(self._terms)),
        )
        return csr.tocsc()

    def _segments(self) -> list[tuple[int, sp.csc_matrix]]:
        n_rows = len(self._live.view)
        with self._lock:
            base_end = self._base[0] if self._base is not None else 0
            if self._base is None or (n_rows - base_end) > max(1000, n_rows // 8):
                self._base, self._tail = (n_rows, self._postings(0, n_rows)), None
                base_end = n_rows
            if self._tail is None and base_end < n_rows:
                self._tail = self._postings(base_end, n_rows)
            if self._norm is None:
                avgdl = (self._live_len / self._n_live if self._n_live else 0.0) or 1.0
                dl = self._doc_len.view.astype(np.float64)
                self._norm = self.k1 * (1.0 - self.b + self.b * dl / avgdl)
            segments = [(0, self._base[1])]
            if self._tail is not None:
                segments.append((base_end, self._tail))
            if self._read_only and not self._terms_dropped:
                self._drop_term_arrays_if_built()
            return segments

    # --- public API -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n_live

    def idf(self, terms: Sequence[str]) -> list[float]:
        """BM25 idf of already-tokenised terms; a term the index has never seen gets the highest."""
        n = self._n_live
        out = []
        for t in terms:
            col = self._vocab.get(t)
            df = int(self._df[col]) if col is not None and col < len(self._df) else 0
            out.append(math.log(1.0 + (n - df + 0.5) / (df + 0.5)))
        return out

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, int | np.integer):
            return False
        ids, _ = self._id_lookup()
        pos = int(np.searchsorted(ids, doc_id))
        return pos < len(ids) and int(ids[pos]) == int(doc_id)

    def ids(self) -> np.ndarray:
        """Ids of the documents in the index, in insertion order (int64)."""
        return self._doc_ids.view[self._live.view].copy()

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        """Tokenise and index ``texts`` under ``ids``; an id already present raises ValueError."""
        if len(ids) != len(texts):
            raise ValueError(f"ids and texts differ in length ({len(ids)} vs {len(texts)})")
        self.add_tokens(ids, [tokenize(text) for text in texts])

    def add_tokens(self, ids: Sequence[int], tokens: Sequence[Sequence[str]]) -> None:
        """Index already tokenised documents (see :func:`tokenize`)."""
        self._check_writable()
        if len(ids) != len(tokens):
            raise ValueError(f"ids and tokens differ in length ({len(ids)} vs {len(tokens)})")
        new_ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(new_ids) == 0:
            return
        if len(np.unique(new_ids)) != len(new_ids):
            raise ValueError("ids contains the same id twice")
        known, _ = self._id_lookup()
        pos = np.searchsorted(known, new_ids).clip(max=max(len(known) - 1, 0))
        clash = new_ids[known[pos] == new_ids] if len(known) else new_ids[:0]
        if len(clash):
            raise ValueError(f"ids already in the lexical index: {clash[:5].tolist()}")

        vocab, terms = self._vocab, self._terms
        flat: list[int] = []
        for doc in tokens:
            for tok in doc:
                tid = vocab.get(tok)
                if tid is None:
                    tid = vocab[tok] = len(terms)
                    terms.append(tok)
                flat.append(tid)
        lengths = np.fromiter((len(doc) for doc in tokens), np.int64, len(tokens))
        rows = np.repeat(np.arange(len(tokens), dtype=np.int64), lengths)
        width = max(len(terms), 1)
        keys = rows * width + np.asarray(flat, dtype=np.int64)
        keys, counts = np.unique(keys, return_counts=True)  # distinct (row, term), row-major
        row_of, term_of = np.divmod(keys, width)
        per_row = np.bincount(row_of, minlength=len(tokens))

        self._doc_ptr.extend(self._doc_ptr.view[-1] + np.cumsum(per_row))
        self._term_ids.extend(term_of.astype(np.int32))
        self._term_counts.extend(counts.astype(np.int32))
        self._doc_len.extend(lengths.astype(np.int32))
        self._doc_ids.extend(new_ids)
        self._live.extend(np.ones(len(new_ids), np.bool_))
        self._df = np.concatenate([self._df, np.zeros(len(terms) - len(self._df), np.int64)])
        self._df += np.bincount(term_of, minlength=len(terms))
        self._n_live += len(new_ids)
        self._live_len += int(lengths.sum())
        self._tail = self._norm = None
        # Keep the id lookup sorted without re-sorting everything (O(n) insert).
        if self._sorted_ids is not None and self._sorted_rows is not None:
            first_row = len(self._live.view) - len(new_ids)
            order = np.argsort(new_ids)
            at = np.searchsorted(self._sorted_ids, new_ids[order])
            self._sorted_ids = np.insert(self._sorted_ids, at, new_ids[order])
            self._sorted_rows = np.insert(self._sorted_rows, at, first_row + order)

    def remove(self, ids: Iterable[int]) -> int:
        """Drop the documents with these ids; unknown ids are ignored. Returns how many went."""
        self._check_writable()
        gone = np.unique(np.fromiter((int(i) for i in ids), np.int64))
        known, rows = self._id_lookup()
        if len(gone) == 0 or len(known) == 0:
            return 0
        pos = np.searchsorted(known, gone).clip(max=len(known) - 1)
        hit = pos[known[pos] == gone]
        if len(hit) == 0:
            return 0
        dead_rows = rows[hit]
        ptr = self._doc_ptr.view
        tids = np.concatenate([self._term_ids.view[ptr[r] : ptr[r + 1]] for r in dead_rows])
        self._df -= np.bincount(tids, minlength=len(self._df))
        self._live.view[dead_rows] = False
        self._n_live -= len(dead_rows)
        self._live_len -= int(self._doc_len.view[dead_rows].sum())
        self._sorted_ids = np.delete(known, hit)
        self._sorted_rows = np.delete(rows, hit)
        self._norm = None
        if len(self._live.view) - self._n_live > len(self._live.view) // 4:
            self._compact()
        return len(dead_rows)

    def _compact(self) -> None:
        """Drop dead rows and terms no live document uses; invalidates every cache."""
        live, ptr = self._live.view, self._doc_ptr.view
        lengths = np.diff(ptr)
        keep_entries = np.repeat(live, lengths)
        used = np.flatnonzero(self._df > 0)
        remap = np.full(len(self._terms), -1, np.int64)
        remap[used] = np.arange(len(used))
        self._terms = [self._terms[t] for t in used.tolist()]
        self._vocab = {t: i for i, t in enumerate(self._terms)}
        self._df = self._df[used]
        self._doc_ptr = _Buffer(np.int64, np.concatenate([[0], np.cumsum(lengths[live])]))
        self._term_ids = _Buffer(np.int32, remap[self._term_ids.view[keep_entries]])
        self._term_counts = _Buffer(np.int32, self._term_counts.view[keep_entries])
        self._doc_len = _Buffer(np.int32, self._doc_len.view[live])
        self._doc_ids = _Buffer(np.int64, self._doc_ids.view[live])
        self._live = _Buffer(np.bool_, np.ones(self._n_live, np.bool_))
        self._reset_caches()

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (id, BM25 score) pairs with score > 0, best first."""
        return self.search_tokens(tokenize(query), k)

    def search_tokens(self, tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Like :meth:`search` for an already tokenised query."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        df = self._df
        found = {self._vocab[t] for t in tokens if t in self._vocab}
        # Rarest first; the order is canonical (df, then the term) so float sums never depend
        # on vocabulary order, i.e. on the history of adds and removes.
        terms = sorted((t for t in found if df[t] > 0), key=lambda t: (df[t], self._terms[t]))
        if k == 0 or not terms or self._n_live == 0:
            return []
        segments = self._segments()
        n = self._n_live
        idf = {t: math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in terms}

        # MaxScore-style shortcut: a term in more than 1/8 of the documents adds less than its
        # idf to any score. If the k-th best score over documents that contain a rarer query
        # term beats the sum of those idfs, no other document can reach the top k.
        n_common = sum(1 for t in terms if df[t] > n // 8)
        rare, common = terms[: len(terms) - n_common], terms[len(terms) - n_common :]
        if rare and common:
            rows, scores = self._score_sparse(rare, segments, idf)
            if len(rows) >= k:
                for t in common:
                    for seg_rows, tf in self._term_postings(t, segments):
                        pos = np.searchsorted(seg_rows, rows).clip(max=len(seg_rows) - 1)
                        hit = seg_rows[pos] == rows
                        scores[hit] += self._weight(idf[t], tf[pos[hit]], rows[hit])
                top = self._top(rows, scores, k)
                if top[-1][1] > sum(idf[t] for t in common):
                    return top

        postings = sum(int(df[t]) for t in terms)
        if postings * 16 < len(self._live.view):
            return self._top(*self._score_sparse(terms, segments, idf), k)
        dense = np.zeros(len(self._live.view), np.float64)
        touched = np.zeros(len(self._live.view), np.bool_)  # scanning bytes beats float64s
        for t in terms:
            for seg_rows, tf in self._term_postings(t, segments):
                dense[seg_rows] += self._weight(idf[t], tf, seg_rows)
                touched[seg_rows] = True
        rows = np.flatnonzero(touched & self._live.view)
        return self._top(rows, dense[rows], k)

    @staticmethod
    def _term_postings(
        t: int, segments: list[tuple[int, sp.csc_matrix]]
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(sorted rows, term counts) of term ``t`` in each segment that has it."""
        for first, csc in segments:
            if t < csc.shape[1] and csc.indptr[t] < csc.indptr[t + 1]:
                lo, hi = csc.indptr[t], csc.indptr[t + 1]
                yield csc.indices[lo:hi].astype(np.int64) + first, csc.data[lo:hi]

    def _weight(self, idf: float, tf: np.ndarray, rows: np.ndarray) -> np.ndarray:
        assert self._norm is not None
        tf = tf.astype(np.float64)
        return idf * tf / (tf + self._norm[rows])

    def _score_sparse(
        self, terms: list[int], segments: list[tuple[int, sp.csc_matrix]], idf: dict[int, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Live rows containing any of ``terms`` and their summed scores (terms in order)."""
        parts = [
            (rows, self._weight(idf[t], tf, rows))
            for t in terms
            for rows, tf in self._term_postings(t, segments)
        ]
        rows, inverse = np.unique(np.concatenate([r for r, _ in parts]), return_inverse=True)
        scores = np.bincount(inverse.reshape(-1), weights=np.concatenate([w for _, w in parts]))
        live = self._live.view[rows]
        return rows[live], scores[live]

    def _top(self, rows: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (id, score), ties by smaller id."""
        if len(rows) > k:
            kth = -np.partition(-scores, k - 1)[k - 1]
            keep = scores >= kth  # every tie at the k-th score, so the id decides among them
            rows, scores = rows[keep], scores[keep]
        doc_ids = self._doc_ids.view[rows]
        order = np.lexsort((doc_ids, -scores))[:k]
        return [(int(doc_ids[i]), float(scores[i])) for i in order]
