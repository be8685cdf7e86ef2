"""The BM25 index on disk: ``.npy`` arrays and a JSON file of terms and parameters, no pickle.

Loading checks everything it reads (types, lengths, offsets, ranges, lengths against counts,
duplicate ids): a damaged or hand-edited index raises CorruptIndex instead of answering wrongly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from rag.errors import CorruptIndex
from rag.store.lexical import LexicalIndex

__all__ = ["load", "save"]

FORMAT = "rag-lexical"
VERSION = 1
_META = "lexical.json"
_ARRAYS = {  # file stem -> allowed dtype kinds
    "doc_ptr": "iu",
    "term_ids": "iu",
    "term_counts": "iu",
    "doc_len": "iu",
    "doc_ids": "iu",
    "live": "b",
}


def _row_sums(values: np.ndarray, ptr: np.ndarray, rows_per_block: int = 1 << 16) -> np.ndarray:
    """Sum of ``values[ptr[i]:ptr[i+1]]`` for every row i, without a per-entry row array.

    Summed a block of rows at a time, so the int64 copy is one block's, not all of ``values``
    (that would be 570 MB at a million passages, on top of the index while it opens).
    """
    out = np.zeros(len(ptr) - 1, np.int64)
    for first in range(0, len(out), rows_per_block):
        end = min(first + rows_per_block, len(out))
        starts = ptr[first:end]
        nonempty = starts < ptr[first + 1 : end + 1]
        if nonempty.any():
            # reduceat sums from each start to the next start; empty rows are left out so
            # the next start of a non-empty row is exactly its end.
            lo, hi = int(ptr[first]), int(ptr[end])
            block = values[lo:hi].astype(np.int64)
            out[first:end][nonempty] = np.add.reduceat(block, starts[nonempty] - lo)
    return out


def save(index: LexicalIndex, directory: Path) -> None:
    """Write ``index`` into ``directory`` (created if needed), fsyncing every file. An index
    opened for searching only cannot be saved (RuntimeError): it may have let its arrays go."""
    terms, arrays = index.arrays()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        with open(directory / f"{name}.npy", "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "k1": index.k1,
        "b": index.b,
        "n_rows": len(arrays["live"]),
        "n_entries": len(arrays["term_ids"]),
        "terms": terms,
    }
    with open(directory / _META, "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


def load(directory: Path) -> LexicalIndex:
    """Read an index written by :func:`save`; damage of any kind raises CorruptIndex."""
    directory = Path(directory)

    def bad(why: str) -> CorruptIndex:
        return CorruptIndex(f"lexical index in {directory} is damaged: {why}")

    try:
        with open(directory / _META, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise bad(f"{_META} is missing") from None
    except (OSError, ValueError) as exc:
        raise bad(f"{_META} is unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise bad(f"{_META} was not written by this tool")
    if meta.get("version") != VERSION:
        raise bad(f"unsupported format version {meta.get('version')!r}")
    terms, n_rows, n_entries = meta.get("terms"), meta.get("n_rows"), meta.get("n_entries")
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise bad("the term list is not a list of strings")
    if len(set(terms)) != len(terms):
        raise bad("the term list repeats a term")
    if not (isinstance(n_rows, int) and isinstance(n_entries, int)):
        raise bad("row or entry count missing")
    try:
        k1, b = float(meta["k1"]), float(meta["b"])
        LexicalIndex(k1=k1, b=b)  # the constructor validates them
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"bad BM25 parameters ({exc})") from None

    arrays: dict[str, np.ndarray] = {}
    for name, kinds in _ARRAYS.items():
        path = directory / f"{name}.npy"
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise bad(f"{path.name} is missing") from None
        except (OSError, ValueError, EOFError) as exc:
            raise bad(f"{path.name} is unreadable ({exc})") from None
        if array.ndim != 1 or array.dtype.kind not in kinds:
            raise bad(f"{path.name} has shape {array.shape} and type {array.dtype}")
        arrays[name] = array
    ptr, tids, counts = arrays["doc_ptr"], arrays["term_ids"], arrays["term_counts"]
    for name in ("doc_len", "doc_ids", "live"):
        if len(arrays[name]) != n_rows:
            raise bad(f"{name}.npy has {len(arrays[name])} rows, expected {n_rows}")
    if len(ptr) != n_rows + 1 or len(tids) != n_entries or len(counts) != n_entries:
        raise bad("document pointers and term arrays disagree in length")
    if ptr[0] != 0 or ptr[-1] != n_entries or np.any(np.diff(ptr) < 0):
        raise bad("document pointers are not a valid offset array")
    if n_entries and (tids.min() < 0 or tids.max() >= len(terms) or counts.min() <= 0):
        raise bad("term ids or counts out of range")
    if not np.array_equal(_row_sums(counts, ptr), arrays["doc_len"]):
        raise bad("document lengths do not match the term counts")
    live = arrays["live"]
    if len(np.unique(arrays["doc_ids"][live])) != int(live.sum()):
        raise bad("a document id occurs twice")
    return LexicalIndex.from_arrays(k1, b, terms, arrays)
