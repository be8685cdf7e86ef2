"""Near-duplicate groups on Milvus: the questions rag.store.grouping asks of a store
(``GroupRows``), answered from a write session's view of the articles collection."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from rag.store.milvus import rows

if TYPE_CHECKING:
    from rag.store.milvus.writer import MilvusWriter

__all__ = ["SessionGroups"]


class SessionGroups:
    """What rag.store.grouping needs, answered from the session's view."""

    def __init__(self, writer: MilvusWriter) -> None:
        self.w = writer

    def candidates(self, keys: Collection[int]) -> dict[int, set[str]]:
        wanted, out = sorted(keys), {}  # type: ignore[var-annotated]
        for i in range(0, len(wanted), 512):
            part = wanted[i : i + 512]
            found = rows.query_all(
                self.w.client, self.w.names.articles,
                f"array_contains_any(bands, {rows.id_list(part)}) and part == 0 and {self.w._vis()}",
                ["article_id", "bands"],
            )  # fmt: skip
            asked = set(part)
            for r in found:
                for k in r["bands"]:
                    if int(k) in asked:
                        out.setdefault(int(k), set()).add(r["article_id"])
        return out

    def texts(self, ids: Collection[str]) -> dict[str, str]:
        found = rows.query_in(self.w.client, self.w.names.articles, "article_id", sorted(ids),
                              self.w._vis(), rows.ARTICLE_FIELDS)  # fmt: skip
        return {a: "".join(r["text"] for r in sorted(p, key=lambda r: int(r["part"])))
                for a, p in rows.by_article(found).items()}  # fmt: skip

    def groups_of(self, ids: Collection[str]) -> dict[str, str | None]:
        found = self.w._heads(ids, ["article_id", "group_id"])
        return {r["article_id"]: r["group_id"] or None for r in found}

    def members(self, group_id: str) -> list[str]:
        found = rows.query_all(
            self.w.client, self.w.names.articles,
            f"group_id == {rows.quote(group_id)} and part == 0 and {self.w._vis()}", ["article_id"],
        )  # fmt: skip
        return [r["article_id"] for r in found]

    def set_groups(self, changes: Mapping[str, str | None], sizes: Mapping[str, int],
                   dropped: Collection[str]) -> None:  # fmt: skip
        for article_id, group in changes.items():
            self.w._replace_head(article_id, group=(group,))
        if changes:
            self.w.changed = True
