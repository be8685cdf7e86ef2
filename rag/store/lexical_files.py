"""A segment's BM25 data on disk: ``.npy`` arrays and a JSON list of terms, no pickle.

Loading checks what it reads (types, lengths, offsets, ranges, lengths against counts): a damaged
or hand-edited file raises CorruptIndex instead of answering wrongly. :func:`load_v1` reads the
single BM25 index of the previous index format, for the upgrade.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import CorruptIndex
from rag.store.lexical import LexicalSegment

__all__ = ["FILES", "check_forward", "load", "load_v1", "save"]

FORMAT = "rag-lexical-segment"
VERSION = 2
_META = "terms.json"
_ARRAYS = {  # file stem -> allowed dtype kinds
    "post_ptr": "iu",
    "post_rows": "iu",
    "post_tf": "u",
    "doc_len": "iu",
    "fwd_ptr": "iu",
    "fwd_terms": "iu",
}
FILES = [_META, *(f"{name}.npy" for name in _ARRAYS)]
_BLOCK = 1 << 22  # entries summed at a time: bounded temporaries at a million passages
# A row whose counts sum below its length must hold a count clipped at 65,535.
_CLIPPED_SUM_FLOOR = np.iinfo(np.uint16).max


def save(seg: LexicalSegment, directory: Path) -> None:
    """Write ``seg`` into ``directory`` (created), fsyncing every file."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in _ARRAYS:
        with open(directory / f"{name}.npy", "wb") as f:
            np.save(f, np.asarray(getattr(seg, name)), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "n_docs": seg.n_docs,
        "n_entries": len(seg.post_rows),
        "terms": seg.terms,
    }
    with open(directory / _META, "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


def _bad(directory: Path, why: str) -> CorruptIndex:
    return CorruptIndex(f"lexical index in {directory} is damaged: {why}")


def _read_meta(directory: Path, fmt: str, version: int, name: str) -> dict[str, Any]:
    try:
        with open(directory / name, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise _bad(directory, f"{name} is missing") from None
    except (OSError, ValueError) as exc:
        raise _bad(directory, f"{name} is unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise _bad(directory, f"{name} was not written by this tool")
    if meta.get("version") != version:
        raise _bad(directory, f"unsupported format version {meta.get('version')!r}")
    terms = meta.get("terms")
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise _bad(directory, "the term list is not a list of strings")
    if len(set(terms)) != len(terms):
        raise _bad(directory, "the term list repeats a term")
    return meta


def _array(directory: Path, name: str, kinds: str, mmap: bool = False) -> np.ndarray:
    path = directory / f"{name}.npy"
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise _bad(directory, f"{path.name} is missing") from None
    except (OSError, ValueError, EOFError) as exc:
        raise _bad(directory, f"{path.name} is unreadable ({exc})") from None
    if array.ndim != 1 or array.dtype.kind not in kinds:
        raise _bad(directory, f"{path.name} has shape {array.shape} and type {array.dtype}")
    return array


def _offsets(ptr: np.ndarray, n: int, total: int) -> bool:
    return len(ptr) == n + 1 and ptr[0] == 0 and ptr[-1] == total and not np.any(np.diff(ptr) < 0)


def _row_sums(rows: np.ndarray, weights: np.ndarray, n_rows: int) -> np.ndarray:
    out = np.zeros(n_rows, np.int64)
    for lo in range(0, len(rows), _BLOCK):
        out += np.bincount(rows[lo : lo + _BLOCK], weights[lo : lo + _BLOCK], n_rows).astype(
            np.int64
        )
    return out


def load(directory: Path, mmap_forward: bool = True) -> LexicalSegment:
    """Read a segment written by :func:`save`; damage of any kind raises CorruptIndex. The
    per-row term arrays are memory-mapped (only deletions and merges read them)."""
    meta = _read_meta(directory, FORMAT, VERSION, _META)
    terms, n_docs, n_entries = meta["terms"], meta.get("n_docs"), meta.get("n_entries")
    if not (isinstance(n_docs, int) and isinstance(n_entries, int)):
        raise _bad(directory, "row or entry count missing")
    a = {
        name: _array(directory, name, kinds, mmap_forward and name.startswith("fwd"))
        for name, kinds in _ARRAYS.items()
    }
    if len(a["doc_len"]) != n_docs:
        raise _bad(directory, f"doc_len.npy has {len(a['doc_len'])} rows, expected {n_docs}")
    if len(a["post_rows"]) != n_entries or len(a["post_tf"]) != n_entries:
        raise _bad(directory, "postings and their counts disagree in length")
    if len(a["fwd_terms"]) != n_entries:
        raise _bad(directory, "the per-row terms and the postings disagree in length")
    if not _offsets(a["post_ptr"], len(terms), n_entries):
        raise _bad(directory, "posting pointers are not a valid offset array")
    if not _offsets(a["fwd_ptr"], n_docs, n_entries):
        raise _bad(directory, "row pointers are not a valid offset array")
    rows, tf = a["post_rows"], a["post_tf"]
    if n_entries and (rows.min() < 0 or rows.max() >= n_docs or tf.min() == 0):
        raise _bad(directory, "posting rows or counts out of range")
    sums = _row_sums(rows, tf, n_docs)
    doc_len = a["doc_len"].astype(np.int64)
    if np.any(sums > doc_len) or np.any((sums < doc_len) & (sums < _CLIPPED_SUM_FLOOR)):
        raise _bad(directory, "document lengths do not match the term counts")
    return LexicalSegment(
        terms=terms,
        post_ptr=a["post_ptr"].astype(np.int64, copy=False),
        post_rows=rows.astype(np.int32, copy=False),
        post_tf=tf.astype(np.uint16, copy=False),
        doc_len=a["doc_len"].astype(np.int32, copy=False),
        fwd_ptr=a["fwd_ptr"],
        fwd_terms=a["fwd_terms"],
    )


def check_forward(seg: LexicalSegment, directory: Path) -> list[str]:
    """Slower checks for ``rag check``: the per-row terms name exactly the postings' terms."""
    if len(seg.fwd_terms) and (seg.fwd_terms.min() < 0 or seg.fwd_terms.max() >= len(seg.terms)):
        return [f"lexical index in {directory}: per-row term ids out of range"]
    df = np.zeros(len(seg.terms), np.int64)
    for lo in range(0, len(seg.fwd_terms), _BLOCK):
        df += np.bincount(np.asarray(seg.fwd_terms[lo : lo + _BLOCK]), minlength=len(seg.terms))
    if not np.array_equal(df, np.diff(seg.post_ptr)):
        return [f"lexical index in {directory}: per-row terms disagree with the postings"]
    return []


# --- the previous format (one BM25 index per snapshot), read once by the upgrade --------------

_V1_ARRAYS = {"doc_ptr": "iu", "term_ids": "iu", "term_counts": "iu", "doc_len": "iu",
              "doc_ids": "iu", "live": "b"}  # fmt: skip


def load_v1(directory: Path) -> tuple[float, float, LexicalSegment, np.ndarray]:
    """(k1, b, segment, passage ids) of a BM25 index of the previous format, live rows only, in
    ascending id order; damage raises CorruptIndex."""
    meta = _read_meta(directory, "rag-lexical", 1, "lexical.json")
    try:
        k1, b = float(meta["k1"]), float(meta["b"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(directory, f"bad BM25 parameters ({exc})") from None
    a = {name: _array(directory, name, kinds) for name, kinds in _V1_ARRAYS.items()}
    n_rows, n_entries = meta.get("n_rows"), meta.get("n_entries")
    for name in ("doc_len", "doc_ids", "live"):
        if len(a[name]) != n_rows:
            raise _bad(directory, f"{name}.npy has {len(a[name])} rows, expected {n_rows}")
    ptr, tids, counts = a["doc_ptr"], a["term_ids"], a["term_counts"]
    if not isinstance(n_entries, int) or not _offsets(ptr, len(a["live"]), n_entries):
        raise _bad(directory, "document pointers are not a valid offset array")
    if len(tids) != n_entries or len(counts) != n_entries:
        raise _bad(directory, "document pointers and term arrays disagree in length")
    terms = meta["terms"]
    if n_entries and (tids.min() < 0 or tids.max() >= len(terms) or counts.min() <= 0):
        raise _bad(directory, "term ids or counts out of range")
    row_of = np.repeat(np.arange(len(a["live"]), dtype=np.int64), np.diff(ptr))
    if not np.array_equal(_row_sums(row_of, counts, len(a["live"])), a["doc_len"].astype(np.int64)):
        raise _bad(directory, "document lengths do not match the term counts")
    del row_of
    live = np.flatnonzero(a["live"])
    ids = a["doc_ids"][live].astype(np.int64)
    if len(np.unique(ids)) != len(ids):
        raise _bad(directory, "a document id occurs twice")
    import scipy.sparse as sp

    csr = sp.csr_matrix((counts, tids, ptr), shape=(len(a["live"]), len(terms)))
    order = np.argsort(ids, kind="stable")
    rows = live[order]
    part = LexicalSegment.from_rows(terms, csr, a["doc_len"])
    return k1, b, LexicalSegment.merge([(part, rows)]), ids[order]
