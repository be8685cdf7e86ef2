"""HTML and text rendering of answers and sources for the page. Every piece of article text is escaped.

Article text is untrusted: it may hold ``<script>``, markdown links to ``javascript:`` or ``$`` signs that
Streamlit's markdown would turn into maths. :func:`escape` makes all of it inert text; markup is only ever
added around escaped pieces, at character offsets computed on the raw text.

Navigation needs no script: a citation chip is ``<a href="#id">`` to the quote's ``<mark id>`` inside a
folded ``<details>`` card, and browsers open a closed ``<details>`` when a fragment link targets its content.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from rag.text.tokens import tokenize
from rag.types import Answer, Citation, Conflict, Hit, OtherVersion

# Characters markdown (and Streamlit's LaTeX) would interpret; HTML entities render them as themselves.
_MARKDOWN_CHARS = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+-.!|~$<>:@=\"'&"}
_CITE = re.compile(r"\[(\d+)\]")
_WORD = re.compile(r"\w+")


def escape(text: str) -> str:
    """Inert HTML for any text: tags, entities and markdown syntax all shown as typed."""
    out = "".join(_MARKDOWN_CHARS.get(c, c) for c in text)
    # A blank line would end the HTML block and hand the rest to the markdown parser.
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def md(text: str) -> str:
    """Untrusted text for an st.info/st.error message (markdown, no HTML): shown as typed."""
    return escape(" ".join(str(text).split()))


_LABEL_MARKUP = re.compile(r"[\\`*_{}\[\]<>#|~$!]|:[a-z_]+:")


def label(text: str) -> str:
    """Untrusted text as a widget label: Streamlit renders labels as Markdown (links, images,
    emoji shortcodes), so the characters that would make markup are left out, not escaped."""
    return " ".join(_LABEL_MARKUP.sub(" ", text).split())


def attr(text: str) -> str:
    """A value for a double-quoted HTML attribute."""
    return html.escape(text, quote=True)


def anchor(key: str, n: int) -> str:
    """Element id of the quote of citation ``n`` in answer ``key`` (its chip links here)."""
    return f"cite-{key}-{n}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """ "1 article", "2 articles", "1 duplicate group"."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def page_key(text: str) -> str:
    """A short stable id fragment for anchors derived from a query."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


@dataclass(frozen=True)
class Span:
    """``text[start:end]`` to be wrapped in ``<mark>`` (with an optional id and class)."""

    start: int
    end: int
    ident: str | None = None
    cls: str | None = None
    inner: tuple[int, int] | None = None  # a part to stand out inside the mark (a short answer)


def highlight(text: str, spans: Iterable[Span]) -> str:
    """Escaped ``text`` with each span wrapped in ``<mark>``; spans overlapping an earlier one are merged
    into it (the earlier one keeps its id), spans outside the text are clipped or dropped."""
    clean: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        start, end = max(0, s.start), min(len(text), s.end)
        if end <= start:
            continue
        if clean and start < clean[-1].end:
            last = clean[-1]
            clean[-1] = Span(last.start, max(last.end, end), last.ident, last.cls, last.inner)
            continue
        clean.append(Span(start, end, s.ident, s.cls, s.inner))
    out, pos = [], 0
    for s in clean:
        out.append(escape(text[pos : s.start]))
        ident = f' id="{attr(s.ident)}"' if s.ident else ""
        cls = f' class="{attr(s.cls)}"' if s.cls else ""
        body = escape(text[s.start : s.end])
        if s.inner is not None and s.start <= s.inner[0] < s.inner[1] <= s.end:
            a, b = s.inner
            body = (
                f'{escape(text[s.start : a])}<span class="short">{escape(text[a:b])}</span>'
                f"{escape(text[b : s.end])}"
            )
        out.append(f"<mark{ident}{cls}>{body}</mark>")
        pos = s.end
    out.append(escape(text[pos:]))
    return "".join(out)


def term_spans(text: str, query: str) -> list[Span]:
    """Words of ``text`` that match a content word of ``query`` after stemming (patrols ~ patrol)."""
    wanted = set(tokenize(query))
    if not wanted:
        return []
    spans = []
    for m in _WORD.finditer(text):
        toks = tokenize(m.group())
        if toks and all(t in wanted for t in toks):
            spans.append(Span(m.start(), m.end(), cls="term"))
    return spans


# --- answers ------------------------------------------------------------------------------------
def _with_chips(text: str, key: str, numbers: set[int]) -> str:
    parts, pos = [], 0
    for m in _CITE.finditer(text):
        parts.append(escape(text[pos : m.start()]))
        n = int(m.group(1))
        if n in numbers:
            parts.append(
                f'<a class="cite-chip" href="#{anchor(key, n)}" title="show source {n}">{n}</a>'
            )
        else:
            parts.append(escape(m.group(0)))
        pos = m.end()
    parts.append(escape(text[pos:]))
    return "".join(parts)


def answer_html(answer: Answer, key: str) -> str:
    """The answer with each ``[n]`` of an existing citation turned into a chip linking to its quote,
    and sentences whose citations don't support them flagged."""
    numbers = {c.n for c in answer.citations}
    text = answer.text
    flagged: list[tuple[int, int]] = []
    search_from = 0
    for s in answer.sentences:
        if s.supported or not s.text.strip():
            continue
        i = text.find(s.text, search_from)
        if i < 0:
            i = text.find(s.text)
        if i >= 0 and not any(a < i + len(s.text) and i < b for a, b in flagged):
            flagged.append((i, i + len(s.text)))
            search_from = i + len(s.text)
    flagged.sort()
    parts, pos = [], 0
    lead = _conflict_lead(answer, text)
    if lead is not None:  # the sentence that says the sources disagree, as a warning box
        parts.append(
            f'<div class="conflict" title="the sources give different values">⚠ '
            f"{_with_chips(text[:lead], key, numbers)}</div>"
        )
        pos = lead
        flagged = [(a, b) for a, b in flagged if a >= lead]
    elif answer.conflicts:
        parts.append(_conflict_box(answer.conflicts, key, numbers))
    for a, b in flagged:
        parts.append(_with_chips(text[pos:a], key, numbers))
        parts.append(
            '<span class="unsupported" title="not supported by the passages it cites">'
            f"{_with_chips(text[a:b], key, numbers)}</span>"
            '<span class="unsupported-flag" title="not supported by the passages it cites">'
            " ⚠ unsupported</span>"
        )
        pos = b
    parts.append(_with_chips(text[pos:], key, numbers))
    return f'<div class="answer">{_short_answer(answer, key)}{"".join(parts)}{_confidence(answer)}</div>'


def _conflict_lead(answer: Answer, text: str) -> int | None:
    """Where the answer's opening "The sources disagree: ..." sentence ends, if it has one."""
    if not answer.conflicts or not answer.sentences:
        return None
    first = answer.sentences[0].text
    if not first.startswith("The sources disagree") or not text.startswith(first):
        return None
    return len(first)


def _conflict_box(conflicts: Sequence[Conflict], key: str, numbers: set[int]) -> str:
    """The disagreements of an answer whose text does not state them (an LLM's answer)."""
    lines = []
    for c in conflicts:
        sides = [
            f"{_with_chips(f'[{n}]', key, numbers)} <strong>{escape(value)}</strong>"
            + (f' <span class="date">{escape(date)}</span>' if date else "")
            for n, value, date in zip(c.citations, c.values, c.dates, strict=True)
        ]
        lines.append(" vs ".join(sides))
    return (
        '<div class="conflict" title="the sources give different values">⚠ The sources '
        f"disagree: {'; '.join(lines)}</div>"
    )


def _short_answer(answer: Answer, key: str) -> str:
    """ "Harbor Lights — [1]": the short answer first, linked to the quote it is highlighted in."""
    if not answer.short_answer or not answer.citations or answer.abstained:
        return ""
    n = answer.citations[0].n
    return (
        f'<div class="short-answer"><strong>{escape(answer.short_answer)}</strong> — '
        f'<a class="cite-chip" href="#{anchor(key, n)}" title="show source {n}">{n}</a></div>'
    )


def _confidence(answer: Answer) -> str:
    if answer.confidence is None:
        return ""
    c = answer.confidence
    level = "high" if c >= 0.7 else "medium" if c >= 0.4 else "low"
    return (
        f' <span class="confidence conf-{level}" title="calibrated probability that the answer '
        f'is right">confidence {c:.2f} ({level})</span>'
    )


def quote_spans(
    c: Citation, key: str, short: tuple[int, int] | None = None, base: int | None = None
) -> list[Span]:
    """The mark of a citation's quote inside its passage (which starts at article offset ``base``,
    by default the citation's own passage); with ``short`` (article offsets inside the quote) the
    short answer stands out inside the mark."""
    base = c.passage_start if base is None else base
    inner = None
    if short is not None and c.start <= short[0] < short[1] <= c.end:
        inner = (short[0] - base, short[1] - base)
    return [Span(c.start - base, c.end - base, anchor(key, c.n), "quote", inner)]


def source_label(source: str, url: str | None = None) -> str:
    """The source as shown: a link for a web address, else the file name (full path on hover)."""
    link = url if url and re.match(r"https?://", url, re.IGNORECASE) else None
    if link is None and re.match(r"https?://", source, re.IGNORECASE):
        link = source
    if link:
        return (
            f'<a href="{attr(link)}" target="_blank" rel="noopener noreferrer nofollow">'
            f"{escape(link)}</a>"
        )
    name = PurePosixPath(source.replace("\\", "/")).name or source
    return f'<span class="src" title="{attr(source)}">{escape(name)}</span>'


def _whole_article(text: str, spans: Sequence[Span], target: str) -> str:
    """A folded full text; its summary is a link to the first highlighted span, so one click opens it
    and scrolls the quote into view."""
    return (
        '<details class="whole"><summary>'
        f'<a class="whole-link" href="#{attr(target)}">show whole article</a></summary>'
        f'<div class="article-text">{highlight(text, spans)}</div></details>'
    )


def page_label(pages: Iterable[int | None]) -> str:
    """``p. 3`` or ``pp. 3, 5`` for the PDF pages of some quotes; "" when none has a page."""
    numbers = sorted({p for p in pages if p is not None})
    if not numbers:
        return ""
    return ("p. " if len(numbers) == 1 else "pp. ") + ", ".join(map(str, numbers))


SCORE_HELP = "how closely the passage matches the question (retrieval score; not a probability)"


_OPENING_QUOTES = "\"“‘'«„"


def quoted(text: str) -> str:
    """``text`` in quotation marks, or as it is when it opens with one already (a quote of
    speech), so no mark is doubled; ``rag ask`` prints quotes the same way."""
    return text if text[:1] in _OPENING_QUOTES else f"“{text}”"


def relevance(score: float) -> str:
    """The one score label of the page, for answers' sources and search results alike."""
    return f"relevance {score:.2f}"


def _meta(
    title: str, date: str | None, source: str, url: str | None, score: str, pages: str = ""
) -> str:
    parts = [f'<span class="title">{escape(title)}</span>']
    if date:
        parts.append(f'<span class="date">{escape(date)}</span>')
    parts.append(
        source_label(source, url) + (f' <span class="page">{pages}</span>' if pages else "")
    )
    parts.append(f'<span class="score" title="{SCORE_HELP}">{score}</span>')
    return " · ".join(parts)


def _also_in(
    sources: Sequence[str],
    versions: Sequence[OtherVersion] = (),
    span: tuple[int, int] | None = None,
) -> str:
    """ "also in: a.txt, ferry_v2.txt — 231 (here: 212)": the other sources of the passage, and
    for a version of the article that gives a fact differently, the differing words side by side
    (those inside the passage ``span``; else "differs elsewhere"). A version that differs inside
    the passage is listed even when it is not one of ``sources``."""
    by_source = {v.source: v for v in versions}
    listed = list(dict.fromkeys(sources))
    if span is not None:
        listed += [v.source for v in versions if v.changes_within(*span) and v.source not in listed]
    if not listed:
        return ""
    items = []
    for s in listed:
        v = by_source.get(s)
        item = source_label(s)
        if v is not None and v.changes:
            inside = v.changes_within(*span) if span is not None else v.changes
            shown = inside or v.changes
            words = "; ".join(
                f"<strong>{escape(c.there)}</strong> (here: {escape(c.here)})" for c in shown[:3]
            )
            more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
            where = "" if inside else "differs elsewhere: "
            item += f' <span class="differs">— {where}{words}{more}</span>'
        items.append(item)
    return '<div class="also-in">also in: ' + ", ".join(items) + "</div>"


def source_cards_html(
    answer: Answer, key: str, article_texts: Mapping[str, str] | None = None
) -> list[str]:
    """One folded card per cited passage (citations quoting the same passage share a card).

    A card shows title, date, source, relevance, the passage with each quote highlighted (``<mark>``
    with the id its chip links to), "also in" versions and the whole article with the quotes marked.
    """
    texts = article_texts or {}
    # Grouped by the passage each quote actually lies in, not by ``chunk_id``: a quote taken from
    # another paragraph of the same article must get its own card, or its mark would be placed at
    # its offsets inside somebody else's passage and highlight an unrelated sentence.
    groups: dict[tuple[str, int, int], list[Citation]] = {}
    for c in answer.citations:
        groups.setdefault(_passage_key(c), []).append(c)
    cards = []
    for place, cites in groups.items():
        first = cites[0]
        numbers = "".join(f'<span class="card-n">{c.n}</span>' for c in cites)
        spans = [s for c in cites for s in quote_spans(c, key, _short_span(answer, c), place[1])]
        quotes = " … ".join(escape(quoted(c.quote)) for c in cites)
        whole = ""
        text = texts.get(first.article_id)
        if text is not None:
            full = [Span(c.start, c.end, f"{anchor(key, c.n)}-full", "quote") for c in cites]
            whole = _whole_article(text, full, f"{anchor(key, first.n)}-full")
        score = relevance(max(c.score for c in cites))
        meta = _meta(
            first.title,
            first.date,
            first.source,
            first.url,
            score,
            page_label(c.page for c in cites),
        )
        cards.append(
            f'<details class="source-card" id="{attr(anchor(key, first.n))}-card"><summary>'
            f"{numbers} {meta}"
            f'<div class="card-quote">{quotes}</div></summary>'
            f'<div class="passage">{highlight(_shown_passage(first, place), spans)}</div>'
            f"{_also_in(first.also_in, first.versions, _passage_span(first))}{whole}</details>"
        )
    return cards


def _passage_key(c: Citation) -> tuple[str, int, int]:
    """Which passage a citation's quote is shown in: its article and the passage's span, or the
    quote's own span should the quote not lie inside its passage (a mark never lands on other
    words)."""
    p0, p1 = _passage_span(c)
    if p0 <= c.start <= c.end <= p1:
        return c.article_id, p0, p1
    return c.article_id, c.start, c.end


def _shown_passage(c: Citation, key: tuple[str, int, int]) -> str:
    """The text of the passage ``key`` (see :func:`_passage_key`) that holds ``c``'s quote."""
    return c.passage if key[1:] == _passage_span(c) else c.quote


def _passage_span(c: Citation) -> tuple[int, int]:
    return c.passage_start, c.passage_start + len(c.passage)


def _short_span(answer: Answer, c: Citation) -> tuple[int, int] | None:
    if not answer.short_answer or answer.short_answer_start is None or c is not answer.citations[0]:
        return None
    return answer.short_answer_start, answer.short_answer_end or answer.short_answer_start


def hit_card_html(
    h: Hit, n: int, query: str = "", key: str = "hit", article_text: str | None = None
) -> str:
    """A search result: the passage with the query's words highlighted, open; whole article folded."""
    spans = term_spans(h.chunk.text, query) if query else []
    whole = ""
    if article_text is not None:
        ident = f"{key}-{n}-full"
        full = [Span(h.chunk.start, h.chunk.end, ident, "quote")]
        whole = _whole_article(article_text, full, ident)
    meta = _meta(
        h.article.title,
        h.article.date,
        h.article.source,
        h.article.url,
        relevance(h.score),
        page_label([h.article.page_at(h.chunk.start)]),
    )
    return (
        f'<div class="hit-card" id="{attr(key)}-{n}"><div class="hit-meta">'
        f'<span class="card-n">{n}</span> {meta}</div>'
        f'<div class="passage">{highlight(h.chunk.text, spans)}</div>'
        f"{_also_in(h.also_in, h.versions, (h.chunk.start, h.chunk.end))}{whole}</div>"
    )


def answer_with_sources(answer: Answer) -> str:
    """Plain text for "copy answer with sources": the answer and a numbered reference list
    (title, date, source, quote)."""
    lines = [answer.text.strip()]
    if answer.citations:
        lines += ["", "Sources:"]
    for c in answer.citations:
        dated = f", {c.date}" if c.date else ""
        where = c.url or c.source
        page = f", {page_label([c.page])}" if c.page is not None else ""
        lines.append(f"[{c.n}] {c.title}{dated}. {where}{page}. {quoted(c.quote)}")
    return "\n".join(lines)
