"""Near-duplicate groups kept up to date at the cost of what changed.

Groups are the connected components of "versions of one story" (shingle containment at least
the threshold, checked on LSH candidates: rag.text.minhash), named after their fullest article
(longest text, then smallest id). Each stored article is filed under its 64 MinHash band keys,
so a new article finds its candidates with one lookup; only the groups it joins are renamed.
A removal can split only the group it left, so only that group's members are compared again.
The result equals grouping every article from scratch (``tests/test_grouping.py`` checks it).

Any store can use :func:`regroup` by answering the few questions of :class:`GroupRows`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.text.minhash import Sketch, band_keys, candidate_pairs, components, sketch_texts, versions

if TYPE_CHECKING:
    from rag.store.base import NewArticle

__all__ = ["GroupRows", "regroup", "sketched"]


class GroupRows(Protocol):
    """What regrouping needs of a store (committed rows and this session's, alike)."""

    def candidates(self, keys: Collection[int]) -> dict[int, set[str]]:
        """The articles filed under each of these band keys (keys without any: left out)."""
        ...

    def texts(self, ids: Collection[str]) -> dict[str, str]: ...

    def groups_of(self, ids: Collection[str]) -> dict[str, str | None]: ...

    def members(self, group_id: str) -> list[str]: ...

    def set_groups(self, changes: Mapping[str, str | None], sizes: Mapping[str, int],
                   dropped: Collection[str]) -> None:  # fmt: skip
        """Set articles' group ids, write the sizes of new or changed groups, drop the rest."""
        ...


def _name(members: Collection[str], texts: Mapping[str, str]) -> str:
    return min(members, key=lambda a: (-len(texts[a]), a))


def regroup(
    rows: GroupRows,
    added: Mapping[str, Sketch],
    touched: Collection[str],
    threshold: float,
    others: bool = True,
) -> None:
    """Update the groups after ``added`` articles (with their sketches; all still stored) came
    in and the groups ``touched`` lost members. ``others``: whether articles other than the
    added ones are stored (if not, no lookups are needed)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    old_groups: set[str] = set(touched)
    # A group that lost members may fall apart: compare its remaining members again.
    for gid in touched:
        members = sorted(rows.members(gid))
        texts = rows.texts(members)
        for comp in components(sketch_texts([texts[m] for m in members]), threshold):
            for i in comp:
                union(members[i], members[comp[0]])
    # A new article joins the groups of the articles it is a version of: among the new ones
    # its candidates come from banding their signatures here, among the stored ones from the
    # stored band keys.
    sketches: dict[str, Sketch] = dict(added)
    usable = [a for a, s in added.items() if len(s.shingles)]
    partners: dict[str, set[str]] = {a: set() for a in usable}
    for a in added:
        find(a)
    if len(usable) > 1:
        sig = np.stack([added[a].signature for a in usable])
        for p, q in candidate_pairs(sig).tolist():
            partners[usable[p]].add(usable[q])
    if usable and others:
        keys = band_keys(np.stack([added[a].signature for a in usable]))
        filed = rows.candidates(set(keys.ravel().tolist()))
        empty: set[str] = set()
        for a, row in zip(usable, keys.tolist(), strict=True):
            # (the new articles are stored too: their pairs came from the banding above)
            partners[a] |= set().union(*(filed.get(k, empty) for k in row)) - added.keys()
    every = {c for cands in partners.values() for c in cands}
    current = rows.groups_of(every)

    def check(among: set[str]) -> None:
        """Check the candidates in ``among`` (their texts fetched once), joining versions."""
        unknown = [c for c in among if c not in sketches]
        if unknown:
            texts = rows.texts(unknown)
            sketches.update(zip(texts, sketch_texts(list(texts.values())), strict=True))
        for aid, cands in partners.items():
            for c in cands & among:
                if c in parent and find(c) == find(aid):
                    continue  # joined already, through another member of c's group
                if c in sketches and versions(sketches[aid], sketches[c], threshold):
                    union(aid, c)
                    joined = current.get(c)
                    if joined is not None and joined not in old_groups:
                        old_groups.add(joined)
                        for m in rows.members(joined):
                            union(m, c)

    # A stored group is checked through one member first: a new copy of a much-reprinted story
    # joins the whole group on one check, without the texts of the others. The others are
    # checked only against the new articles that member did not take in.
    first: dict[str, str] = {}
    for c in sorted(every):
        holder = current.get(c)
        if holder is not None and c not in sketches:
            first.setdefault(holder, c)
    later = {c for c in every if c not in sketches and current.get(c) is not None} - set(
        first.values()
    )
    check(every - later)
    check({c for aid, cands in partners.items() for c in cands & later
           if not (c in parent and find(c) == find(aid))})  # fmt: skip
    comps: dict[str, list[str]] = {}
    for a in parent:
        comps.setdefault(find(a), []).append(a)
    # A new article alone stays without a group: only groups and former members need a look.
    grouped = [a for group in comps.values() if len(group) > 1 for a in group]
    lengths = rows.texts(grouped)
    was = rows.groups_of([a for a in parent if len(comps[find(a)]) > 1 or a not in added])
    changes: dict[str, str | None] = {}
    sizes: dict[str, int] = {}
    for group in comps.values():
        name = _name(group, lengths) if len(group) > 1 else None
        if name is not None:
            sizes[name] = len(group)
        for a in group:
            if was.get(a) != name:
                changes[a] = name
    rows.set_groups(changes, sizes, old_groups - set(sizes))


def sketched(items: Sequence[NewArticle]) -> tuple[list[Sketch], dict[int, np.ndarray]]:
    """Each new article's sketch (made here when ingest did not make it) and, by position, the
    band keys of those with shingles; first checks that each article's parts align."""
    for item in items:
        n = len(item.chunks)
        if not (n == len(item.vectors) == len(item.embed_hashes) == len(item.lexical_texts)):
            raise ValueError("chunks, vectors, embed_hashes and lexical_texts must align")
    missing = [i for i, item in enumerate(items) if item.sketch is None]
    made = dict(zip(missing, sketch_texts([items[i].article.text for i in missing]), strict=True))
    sketches = [made[i] if item.sketch is None else item.sketch for i, item in enumerate(items)]
    usable = [i for i, s in enumerate(sketches) if len(s.shingles)]
    signatures = [sketches[i].signature for i in usable]
    keys = dict(zip(usable, band_keys(np.stack(signatures)) if usable else [], strict=True))
    return sketches, keys
