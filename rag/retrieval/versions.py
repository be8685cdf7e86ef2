"""Versions of a story: which members of a near-duplicate group give a fact differently.

Ingestion groups near-duplicate articles (``rag/ingest/dedup.py``). A group may hold plain
reprints and versions that differ in a fact: an updated count, a corrected name, a changed date.
This module is the one place that tells them apart, for every door:

- :func:`other_versions`: an article's other versions, each with the facts it gives differently
  (result cards, answers);
- :func:`group_differences`: a group's members against its fullest version (``rag stats``, the
  library), and :func:`with_version_differences` adds that to the stats dictionary.

Differences come from the stored texts (:func:`rag.text.versions.fact_differences`), computed
when first asked for and cached by article id. Ids are content hashes, so a pair's differences
never go stale; group membership is cached per index snapshot. Computing them at ingest and
storing them with the group would change nothing for the callers of these functions.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rag.text.versions import fact_differences
from rag.types import Article, FactChange, OtherVersion

__all__ = [
    "GroupDifferences",
    "VersionReader",
    "group_differences",
    "other_versions",
    "version_changes",
    "with_version_differences",
]


class VersionReader(Protocol):
    """What this module needs of the index: a group's members, fullest first."""

    def group_members(self, group_id: str) -> Sequence[Article]: ...


@dataclass(frozen=True)
class GroupDifferences:
    """A near-duplicate group: its fullest version and the others, each with what it changes."""

    group_id: str
    fullest: Article
    others: tuple[OtherVersion, ...]

    @property
    def differs(self) -> bool:
        """Whether some version gives a fact differently (else the group is plain reprints)."""
        return any(v.changes for v in self.others)


class _Lru:
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


_PAIRS = _Lru(4096)
_MEMBERS: weakref.WeakKeyDictionary[Any, _Lru] = weakref.WeakKeyDictionary()
_MEMBERS_LOCK = threading.Lock()


def version_changes(here: Article, there: Article) -> tuple[FactChange, ...]:
    """The facts ``there`` gives differently from ``here`` (offsets into each), cached by id."""
    if here.id == there.id:
        return ()
    key = (here.id, there.id) if here.id < there.id else (there.id, here.id)
    diffs = _PAIRS.get(key)
    if diffs is None:
        first, second = (here, there) if key[0] == here.id else (there, here)
        diffs = tuple(fact_differences(first.text, second.text))
        _PAIRS.put(key, diffs)
    if key[0] == here.id:
        return tuple(FactChange(d.kind, d.a_text, d.b_text, *d.a, *d.b) for d in diffs)
    return tuple(FactChange(d.kind, d.b_text, d.a_text, *d.b, *d.a) for d in diffs)


def _generation(reader: VersionReader) -> Any:
    """What changes when the index does: the commit the reader sees (None if it cannot say)."""
    return getattr(reader, "version", None)


def _members(reader: VersionReader, group_id: str) -> tuple[Article, ...]:
    with _MEMBERS_LOCK:
        try:
            cache = _MEMBERS.get(reader)
            if cache is None:
                cache = _MEMBERS[reader] = _Lru(1024)
        except TypeError:  # a reader that cannot be weakly referenced: no cache
            cache = _Lru(0)
    key = (_generation(reader), group_id)
    members = cache.get(key)
    if members is None:
        members = tuple(reader.group_members(group_id))
        cache.put(key, members)
    return members  # type: ignore[no-any-return]


def other_versions(reader: VersionReader, article: Article) -> tuple[OtherVersion, ...]:
    """The other members of ``article``'s near-duplicate group (fullest first), each with the facts
    it gives differently from ``article``; empty when the article is in no group."""
    if not article.group_id:
        return ()
    return tuple(
        OtherVersion(m, version_changes(article, m))
        for m in _members(reader, article.group_id)
        if m.id != article.id
    )


def group_differences(reader: VersionReader, group_id: str) -> GroupDifferences | None:
    """The group's fullest version and its other members with what each changes against it
    (None when the group has no members)."""
    members = _members(reader, group_id)
    if not members:
        return None
    fullest = next((m for m in members if m.id == group_id), members[0])
    others = tuple(
        OtherVersion(m, version_changes(fullest, m)) for m in members if m.id != fullest.id
    )
    return GroupDifferences(group_id, fullest, others)


def with_version_differences(reader: VersionReader, stats: dict[str, Any]) -> dict[str, Any]:
    """``stats`` (as the index reader gives them) with each duplicate group told apart: plain
    reprints, or versions with differences, and per article the facts it gives differently from
    the group's fullest version."""
    groups = stats.get("duplicate_groups") or []
    differing = 0
    for g in groups:
        diff = group_differences(reader, g["group"])
        changes = {v.source: v.changes for v in diff.others} if diff else {}
        g["differs"] = bool(diff and diff.differs)
        differing += g["differs"]
        for a in g["articles"]:
            a["differences"] = [
                {"kind": c.kind, "fullest": c.here, "this": c.there}
                for c in changes.get(a["source"], ())
            ]
    stats["groups_with_differences"] = differing
    stats["reprint_groups"] = len(groups) - differing
    return stats
