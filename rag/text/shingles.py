"""Near-duplicate text: hashed word shingles, containment, and collapsing ranked near-copies.

Shingle hashes are stable across processes and machines: each word is hashed with BLAKE2b
(8 bytes) and an n-gram's hash is an order-sensitive mix of its words' hashes. Ingestion groups
articles by them (rag.ingest.dedup), retrieval collapses repeated passages, and the extractive
answerer skips quotes that say the same thing twice.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

__all__ = ["MIX", "collapse", "containment", "finalize", "jaccard", "shingle_array", "shingles"]

T = TypeVar("T")

_WORD_RE = re.compile(r"[^\W_]+")
_APOSTROPHES = re.compile(r"['\u2019\u02bc]")
MIX = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the rolling n-gram hash


def _words(text: str) -> list[str]:
    """Lowercase words with punctuation stripped ("don't" -> "dont", "e-mail" -> "e", "mail")."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _WORD_RE.findall(_APOSTROPHES.sub("", text))


@functools.lru_cache(maxsize=1 << 18)
def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def finalize(h: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: spreads the bits of the rolling hash."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def shingle_array(text: str, n: int = 5) -> np.ndarray:
    """Sorted unique uint64 hashes of the word n-grams of ``text`` (see :func:`shingles`)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    words = _words(text)
    if not words:
        return np.zeros(0, np.uint64)
    hashes = np.fromiter((_word_hash(w) for w in words), np.uint64, len(words))
    width = min(n, len(hashes))  # fewer than n words: one shingle of all of them
    grams = np.zeros(len(hashes) - width + 1, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(width):  # h = sum of word_hash * MIX^(width-1-j), mod 2^64
            grams = grams * MIX + hashes[j : len(hashes) - width + 1 + j]
        return np.unique(finalize(grams))


def shingles(text: str, n: int = 5) -> set[int]:
    """Hashed word ``n``-grams of the normalised text; fewer than ``n`` words give one shingle."""
    return set(shingle_array(text, n).tolist())


def containment(a: set[int], b: set[int]) -> float:
    """``|a & b| / min(|a|, |b|)``: the share of the smaller set found in the other (0 if empty)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def jaccard(a: set[int], b: set[int]) -> float:
    """``|a & b| / |a | b|``; 0 when both are empty."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def collapse(
    items: Sequence[T],
    key_text: Callable[[T], str],
    threshold: float,
    keep_apart: Callable[[T, T], bool] | None = None,
) -> list[tuple[T, list[T]]]:
    """Keep items in order, folding each near-copy of an earlier kept item into that item's list.

    An item is a near-copy when the containment of its shingles with a kept item's is
    ``>= threshold`` (and above 0: texts without words never collapse). It attaches to the
    first, i.e. best-placed, such kept item, unless ``keep_apart(kept, item)`` says the two must
    both be shown (versions that disagree on a fact).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
    kept: list[tuple[T, list[T], set[int]]] = []
    for item in items:
        sh = shingles(key_text(item))
        for kept_item, dups, kept_sh in kept:
            c = containment(sh, kept_sh)
            if c > 0.0 and c >= threshold and not (keep_apart and keep_apart(kept_item, item)):
                dups.append(item)
                break
        else:
            kept.append((item, [], sh))
    return [(item, dups) for item, dups, _ in kept]
