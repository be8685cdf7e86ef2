"""Rows of the Milvus collections: values in and out, filter expressions, paged queries.

Every row carries the version that added it and the version that removed it (``LIVE`` while
none has), so the rows a commit ``v`` holds are ``added <= v and removed > v``: a reader keeps
its commit while a writer adds rows under the next version, and a write session that never
commits is undone by deleting what it added and restoring what it removed.

BM25 terms are our own tokens (rag.text.tokens: folded, stopwords dropped, stemmed); a token
that is not plain ``[a-z0-9]`` is written as ``x_`` + its UTF-8 in hex, so that the ``standard``
analyzer (which splits on anything but word characters) sees exactly one token per term.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rag.store.milvus.connect import LIVE, TEXT_PART_CHARS
from rag.text.tokens import tokenize
from rag.types import Article, Filters, PageSpan

__all__ = ["article_rows", "article_from_rows", "date_number", "encode_terms", "filter_expr",
           "quote", "query_all", "visible"]  # fmt: skip

_PLAIN = re.compile(r"[a-z0-9]+")
_DATE = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
PAGE = 4096  # rows per page of a long query
_QUERY_MAX = 16_384  # Milvus's largest query result
UNDATED = -1


def encode_term(term: str) -> str:
    return term if _PLAIN.fullmatch(term) else "x_" + term.encode("utf-8").hex()


def encode_terms(text: str) -> list[str]:
    """The BM25 terms of ``text``, encoded for the analyzer."""
    return [encode_term(t) for t in tokenize(text)]


def date_number(date: str | None) -> int:
    """``YYYY-MM-DD`` as ``YYYYMMDD`` (missing month or day: 00), ordered like the strings."""
    m = _DATE.match(date or "")
    if not m:
        return UNDATED
    y, mo, d = m.groups()
    return int(y) * 10_000 + int(mo or 0) * 100 + int(d or 0)


def quote(value: str) -> str:
    """A string literal for a Milvus expression."""
    return json.dumps(value, ensure_ascii=False)


def visible(version: int) -> str:
    return f"added <= {version} and removed > {version}"


def id_list(values: Sequence[str] | Sequence[int]) -> str:
    return "[" + ",".join(quote(v) if isinstance(v, str) else str(int(v)) for v in values) + "]"


def filter_expr(filters: Filters, articles: Sequence[str] | None) -> str:
    """The passage filter for ``filters``: the date range on the passages' date numbers, and the
    source glob as the ids of the articles it lets through (resolved from the sources)."""
    parts = []
    if filters.date_from or filters.date_to:
        parts.append(f"date >= {max(date_number(filters.date_from), 0)}")
        if filters.date_to:
            parts.append(f"date <= {date_number(filters.date_to)}")
    if articles is not None:
        parts.append(f"article_id in {id_list(articles)}")
    return " and ".join(parts)


def like_prefilter(glob: str) -> str | None:
    """A ``like`` pattern every source a glob can match satisfies (the longest literal run), so
    the engine narrows the sources before fnmatch decides; None when nothing literal is left."""
    runs = re.split(r"\[[^\]]*\]|[*?\[\]%_\\\"]", glob)
    best = max(runs, key=len)
    return f"%{best}%" if len(best) >= 2 else None


def query_all(
    client: Any, collection: str, expr: str, fields: list[str]
) -> Iterator[dict[str, Any]]:
    """Every row matching ``expr``: one query when it fits (a query stops at 16,384 rows),
    else in pages through an iterator."""
    found = client.query(collection, filter=expr, output_fields=fields, limit=_QUERY_MAX)
    if len(found) < _QUERY_MAX:
        yield from found
        return
    logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
    it = client.query_iterator(collection, batch_size=PAGE, filter=expr, output_fields=fields)
    try:
        while True:
            page = it.next()
            if not page:
                return
            yield from page
    finally:
        it.close()


def query_in(client: Any, collection: str, field: str, values: Sequence[Any], extra: str,
             fields: list[str]) -> list[dict[str, Any]]:  # fmt: skip
    """The rows whose ``field`` is one of ``values`` (asked in slices), filtered by ``extra``."""
    out: list[dict[str, Any]] = []
    values = list(dict.fromkeys(values))
    for i in range(0, len(values), 1000):
        expr = f"{field} in {id_list(values[i : i + 1000])}"
        out += client.query(collection, filter=f"{expr} and {extra}" if extra else expr,
                            output_fields=fields, limit=_QUERY_MAX)  # fmt: skip
    return out


def get_in(
    client: Any, collection: str, keys: Sequence[Any], fields: list[str]
) -> list[dict[str, Any]]:
    """The rows with these primary keys (asked in slices)."""
    out: list[dict[str, Any]] = []
    keys = list(dict.fromkeys(keys))
    for i in range(0, len(keys), 1000):
        out += client.get(collection, ids=keys[i : i + 1000], output_fields=fields)
    return out


def df_at(row: dict[str, Any], version: int) -> int:
    """A term's document frequency as commit ``version`` saw it (0 for commits before both)."""
    if int(row["version"]) <= version:
        return int(row["df"])
    return int(row["df_before"]) if int(row["version_before"]) <= version else 0


TERM_FIELDS = ["term", "df", "version", "df_before", "version_before"]


# --- articles ---------------------------------------------------------------------------------
ARTICLE_FIELDS = ["key", "article_id", "part", "parts", "text", "meta", "group_id", "date",
                  "bands", "added", "removed"]  # fmt: skip


def article_meta(article: Article, chunks: int) -> dict[str, Any]:
    return {
        "source": article.source, "title": article.title, "date": article.date,
        "author": article.author, "url": article.url, "site": article.site,
        "pages": [[p.start, p.end, p.page] for p in article.pages], "chunks": chunks,
        "chars": len(article.text),
    }  # fmt: skip


def article_rows(
    article: Article, meta: dict[str, Any], bands: list[int], version: int, group: str | None
) -> list[dict[str, Any]]:
    """The rows of one article version: its text in parts, the metadata on part 0."""
    text = article.text
    pieces = [text[i : i + TEXT_PART_CHARS] for i in range(0, len(text), TEXT_PART_CHARS)] or [""]
    return [
        {
            "key": row_key(version, f"{article.id}|{n}"),
            "article_id": article.id,
            "part": n,
            "parts": len(pieces),
            "text": piece,
            "meta": json.dumps(meta, ensure_ascii=False) if n == 0 else "",
            "group_id": (group or "") if n == 0 else "",
            "date": date_number(article.date),
            "bands": bands if n == 0 else [],
            "added": version,
            "removed": LIVE,
            "_v": [0.0, 0.0],
        }
        for n, piece in enumerate(pieces)
    ]


def by_article(found: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Article part rows grouped by their article id."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in found:
        grouped.setdefault(r["article_id"], []).append(r)
    return grouped


def article_from_rows(rows: Sequence[dict[str, Any]]) -> Article:
    """An article from all its part rows (any order)."""
    parts = sorted(rows, key=lambda r: int(r["part"]))
    head = parts[0]
    if int(head["part"]) != 0 or len(parts) != int(head["parts"]):
        raise ValueError(f"article {head['article_id']}: parts missing")
    meta = json.loads(head["meta"])
    return Article(
        id=head["article_id"],
        source=meta["source"],
        title=meta["title"],
        text="".join(r["text"] for r in parts),
        date=meta["date"],
        author=meta["author"],
        url=meta["url"],
        site=meta["site"],
        group_id=head["group_id"] or None,
        pages=tuple(PageSpan(*p) for p in meta["pages"]),
    )


def row_key(version: int, name: str) -> str:
    """The primary key of one version of a keyed row (articles, sources)."""
    return f"{version}|{name}"


def fresh(row: dict[str, Any], version: int, **changes: Any) -> dict[str, Any]:
    """A copy of ``row`` as a new version (with a new key where the collection is keyed)."""
    out = {k: v for k, v in row.items() if k != "sparse"}
    out.update(changes, added=version, removed=LIVE)
    if "key" in out:
        out["key"] = row_key(version, out["key"].split("|", 1)[1])
        out["_v"] = [0.0, 0.0]
    return out
