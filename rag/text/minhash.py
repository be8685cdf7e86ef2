"""MinHash sketches of texts and their LSH band keys: how near-duplicate candidates are found.

A sketch is a text's set of 5-word shingle hashes (rag.text.shingles) with its MinHash signature
(128 permutations). Two texts become candidates when their signatures agree on both rows of at
least one of 64 bands; :func:`band_keys` names each band's value with one int64, so a store can
persist them and find the candidates of a new text with an index lookup instead of comparing it
with every stored text. Candidates are then checked with exact shingle containment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.text.shingles import MIX, finalize, shingle_array

__all__ = ["N_BANDS", "N_PERM", "ROWS_PER_BAND", "Sketch", "band_keys", "candidate_pairs",
           "components", "versions", "sketch_texts"]  # fmt: skip

N_PERM = 128
ROWS_PER_BAND = 2  # 64 bands of 2 rows: see rag.ingest.dedup for the recall this gives
N_BANDS = N_PERM // ROWS_PER_BAND
_SEED = 20240607


def _minhash(sets: list[np.ndarray], n_perm: int = N_PERM) -> np.ndarray:
    """MinHash signatures (len(sets) x n_perm, uint32) of non-empty uint64 sets.

    Permutation i is the multiply-shift hash ``(a_i * x + b_i mod 2^64) >> 32`` with random
    odd ``a_i``: a 2-universal family, fixed by a seed so signatures are reproducible.
    """
    rng = np.random.default_rng(_SEED)
    a = (rng.integers(0, 2**63, n_perm, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
    b = rng.integers(0, 2**63, n_perm, dtype=np.uint64) << np.uint64(1)
    sig = np.zeros((len(sets), n_perm), np.uint32)
    # Shingles hashed per block: 4k * n_perm * 8 bytes = 4 MiB, about one core's L2 cache.
    # The work is memory-bound: 64k-shingle blocks ran several times slower on BBC articles.
    budget = 1 << 12
    start = 0
    with np.errstate(over="ignore"):
        while start < len(sets):
            stop, size = start, 0
            while stop < len(sets) and (stop == start or size + len(sets[stop]) <= budget):
                size += len(sets[stop])
                stop += 1
            block = np.concatenate(sets[start:stop])
            offsets = np.cumsum([0] + [len(s) for s in sets[start : stop - 1]])
            hashed = np.multiply(a[:, None], block[None, :])  # in place from here: big arrays
            hashed += b[:, None]
            hashed >>= np.uint64(32)
            sig[start:stop] = np.minimum.reduceat(hashed.astype(np.uint32), offsets, axis=1).T
            start = stop
    return sig


@dataclass(frozen=True)
class Sketch:
    """What grouping needs of one text: its shingle hashes and their MinHash signature."""

    shingles: np.ndarray  # sorted unique uint64
    signature: np.ndarray  # N_PERM uint32 (all zero when there are no shingles)


def sketch_texts(texts: Sequence[str]) -> list[Sketch]:
    """Sketches of ``texts``, the same whether computed together, one by one or in any order."""
    sets = [shingle_array(t) for t in texts]
    usable = [i for i, s in enumerate(sets) if len(s)]
    sig = np.zeros((len(sets), N_PERM), np.uint32)
    if usable:
        sig[usable] = _minhash([sets[i] for i in usable])
    return [Sketch(s, sig[i]) for i, s in enumerate(sets)]


def _band_values(sig: np.ndarray, start: int, rows: int) -> np.ndarray:
    key = np.zeros(len(sig), np.uint64)
    with np.errstate(over="ignore"):
        for col in range(start, start + rows):
            # Two 32-bit values fit a 64-bit key exactly; for longer bands a rare key
            # collision only adds a candidate, which is checked later anyway.
            value = sig[:, col].astype(np.uint64)
            key = (key << np.uint64(32)) | value if rows <= 2 else finalize(key * MIX + value)
    return key


def band_keys(signatures: np.ndarray) -> np.ndarray:
    """The ``N_BANDS`` keys (int64) under which a store files each text for candidate lookup:
    one row per signature (``n x N_PERM`` uint32 in, ``n x N_BANDS`` out). Two texts share a key
    when their signatures agree on a whole band (or, with odds of about 2^-64, by a hash
    collision, which costs one more containment check). A text without shingles has no
    near-duplicates: leave it out (its signature is all zero)."""
    sig = np.asarray(signatures, np.uint32).reshape(-1, N_BANDS, ROWS_PER_BAND).astype(np.uint64)
    with np.errstate(over="ignore"):
        value = (sig[:, :, 0] << np.uint64(32)) | sig[:, :, 1]
        band = np.arange(1, N_BANDS + 1, dtype=np.uint64)
        keys = finalize(value * MIX + band[None, :])
    return keys.view(np.int64)


def candidate_pairs(sig: np.ndarray, rows: int = ROWS_PER_BAND) -> np.ndarray:
    """Pairs (i < j) of signature rows that agree on every row of at least one band."""
    n, n_perm = sig.shape
    found: list[np.ndarray] = []
    for start in range(0, n_perm - rows + 1, rows):
        key = _band_values(sig, start, rows)
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        sizes = np.diff(np.r_[starts, n])
        # Most buckets hold one text and most shared ones two: those pairs in one step, and a
        # loop only over the larger buckets (not a split into n small arrays).
        two = starts[sizes == 2]
        found.append(np.stack([order[two], order[two + 1]], axis=1))
        for first, size in zip(starts[sizes > 2].tolist(), sizes[sizes > 2].tolist(), strict=True):
            members = order[first : first + size]
            i, j = np.triu_indices(size, k=1)
            found.append(np.stack([members[i], members[j]], axis=1))
    if not found:
        return np.zeros((0, 2), np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    return np.unique(pairs, axis=0)


def versions(a: Sketch, b: Sketch, threshold: float) -> bool:
    """Whether two texts are versions of one story: the containment of their shingles
    (shared / the smaller set) is at least ``threshold`` (and they share something)."""
    if not len(a.shingles) or not len(b.shingles):
        return False
    shared = len(np.intersect1d(a.shingles, b.shingles, assume_unique=True))
    return shared > 0 and shared / min(len(a.shingles), len(b.shingles)) >= threshold


def components(sketches: Sequence[Sketch], threshold: float) -> list[list[int]]:
    """The connected components (lists of positions, singletons included) of the "versions"
    relation among ``sketches``, over LSH candidate pairs."""
    parent = list(range(len(sketches)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    usable = [i for i, s in enumerate(sketches) if len(s.shingles)]
    if len(usable) >= 2:
        sig = np.stack([sketches[i].signature for i in usable])
        for p, q in candidate_pairs(sig).tolist():
            i, j = usable[p], usable[q]
            if versions(sketches[i], sketches[j], threshold):
                parent[find(i)] = find(j)
    members: dict[int, list[int]] = {}
    for i in range(len(sketches)):
        members.setdefault(find(i), []).append(i)
    return list(members.values())
