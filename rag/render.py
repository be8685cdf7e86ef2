"""HTML and text rendering of answers and sources for the page. Every piece of article text is escaped.

Article text is untrusted: it may hold ``<script>``, markdown links to ``javascript:`` or ``$`` signs that
Streamlit's markdown would turn into maths. :func:`escape` makes all of it inert text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from rag.types import Answer, Citation, Hit

# Characters markdown (and Streamlit's LaTeX) would interpret; HTML entities render them as themselves.
_MARKDOWN_CHARS = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+-.!|~$<>:@"}
_CITE = re.compile(r"\[(\d+)\]")


def escape(text: str) -> str:
    """Inert HTML for any text: tags, entities and markdown syntax all shown as typed."""
    out = html.escape(text, quote=True)
    out = "".join(_MARKDOWN_CHARS.get(c, c) for c in out.replace("&amp;", "\0"))
    return out.replace("\0", "&amp;").replace("\n", "<br>")


def anchor(key: str, n: int) -> str:
    return f"cite-{key}-{n}"


def highlight(text: str, start: int, end: int, mark_id: str | None = None) -> str:
    """Escaped ``text`` with ``text[start:end]`` wrapped in ``<mark>``."""
    start, end = max(0, start), min(len(text), end)
    ident = f' id="{html.escape(mark_id)}"' if mark_id else ""
    return (
        f"{escape(text[:start])}<mark{ident}>{escape(text[start:end])}</mark>{escape(text[end:])}"
    )


def answer_html(answer: Answer, key: str) -> str:
    """The answer with each ``[n]`` turned into a chip linking to its source card."""
    numbers = {c.n for c in answer.citations}
    unsupported = {s.text for s in answer.sentences if not s.supported}
    parts = []
    pos = 0
    text = answer.text
    for m in _CITE.finditer(text):
        parts.append(escape(text[pos : m.start()]))
        n = int(m.group(1))
        if n in numbers:
            parts.append(f'<a class="cite-chip" href="#{anchor(key, n)}">[{n}]</a>')
        else:
            parts.append(escape(m.group(0)))
        pos = m.end()
    parts.append(escape(text[pos:]))
    body = "".join(parts)
    for s in unsupported:
        body = body.replace(
            escape(s),
            f'<span class="unsupported" title="not supported by its citations">{escape(s)}</span>',
            1,
        )
    return f'<div class="answer">{body}</div>'


def source_card_html(c: Citation, key: str, article_text: str | None = None) -> str:
    """A source card: title, date, source link, the passage with the quote highlighted, the score,
    "also in" versions, and the whole article with the quote highlighted (folded)."""
    rel_start, rel_end = c.start - c.passage_start, c.end - c.passage_start
    src = escape(c.source)
    if c.url and re.match(r"https?://", c.url):
        src = f'<a href="{html.escape(c.url, quote=True)}" target="_blank" rel="noopener">{escape(c.url)}</a>'
    meta = [f"<b>[{c.n}] {escape(c.title)}</b>"]
    if c.date:
        meta.append(escape(c.date))
    meta.append(src)
    meta.append(f"relevance {c.score:.3f}")
    also = ""
    if c.also_in:
        also = '<div class="also-in">also in: ' + ", ".join(escape(s) for s in c.also_in) + "</div>"
    whole = ""
    if article_text is not None:
        whole = (
            '<details class="whole"><summary>show whole article</summary>'
            f'<div class="article-text">{highlight(article_text, c.start, c.end, anchor(key, c.n) + "-full")}'
            "</div></details>"
        )
    return (
        f'<details class="source-card" id="{anchor(key, c.n)}-card"><summary>{" · ".join(meta)}</summary>'
        f'<div class="passage">{highlight(c.passage, rel_start, rel_end, anchor(key, c.n))}</div>'
        f"{also}{whole}</details>"
    )


def hit_card_html(h: Hit, n: int, query_terms: Sequence[str] = ()) -> str:
    """A search result: the passage with the query's words highlighted."""
    text = escape(h.chunk.text)
    for term in sorted({t for t in query_terms if len(t) > 2}, key=len, reverse=True):
        text = re.sub(
            rf"(?<![\w&#])({re.escape(escape(term))})(?![\w;])",
            r"<mark>\1</mark>",
            text,
            flags=re.IGNORECASE,
        )
    meta = [f"<b>[{n}] {escape(h.article.title)}</b>"]
    if h.article.date:
        meta.append(escape(h.article.date))
    meta.append(escape(h.article.source))
    meta.append(f"score {h.score:.3f}")
    also = (
        f'<div class="also-in">also in: {", ".join(escape(s) for s in h.also_in)}</div>'
        if h.also_in
        else ""
    )
    return f'<div class="hit-card"><div>{" · ".join(meta)}</div><div class="passage">{text}</div>{also}</div>'


def answer_with_sources(answer: Answer) -> str:
    """Plain text for "copy answer with sources": the answer and a numbered reference list."""
    lines = [answer.text, ""]
    if answer.citations:
        lines.append("Sources:")
    for c in answer.citations:
        dated = f", {c.date}" if c.date else ""
        lines.append(f"[{c.n}] {c.title}{dated}. {c.url or c.source}. \u201c{c.quote}\u201d")
    return "\n".join(lines).strip()


PAGE_CSS = """
<style>
.cite-chip { display:inline-block; padding:0 .35em; margin:0 .1em; border-radius:.6em;
  background:#e8eefc; color:#1a4fd6 !important; font-size:.85em; text-decoration:none !important; }
.source-card { border:1px solid #ddd; border-radius:.5em; padding:.4em .7em; margin:.3em 0; }
.source-card summary { cursor:pointer; }
.source-card .passage, .hit-card .passage { margin:.4em 0; line-height:1.5; }
.source-card mark, .hit-card mark, .article-text mark { background:#ffe58a; padding:0 .1em; }
.article-text { max-height:24em; overflow:auto; border-left:3px solid #eee; padding-left:.6em; }
.also-in { color:#666; font-size:.85em; }
.unsupported { text-decoration: underline wavy #d33; }
.hit-card { border-bottom:1px solid #eee; padding:.4em 0; }
</style>
"""
