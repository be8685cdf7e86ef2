"""HTML pages: metadata from the head, main text via trafilatura, a stdlib fallback, and a record
of what was left out.

Only text ever leaves this module: scripts, styles, iframes and event handlers are never run and
never kept (their content is skipped by the parser and trafilatura drops them too).
"""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser

from rag.ingest.boilerplate import COMMENT_MARKER, COOKIE, FOOTER, NAVIGATION, Line
from rag.ingest.cleaning import Cleaned, clean_lines, normalize_chars, to_lines
from rag.ingest.metadata import author_from_byline, date_line, is_byline, parse_date, site_from_url
from rag.types import Removal

_SKIP = {"script", "style", "iframe", "noscript", "template", "svg", "canvas", "object", "embed",
         "select", "button", "textarea", "math", "frame", "frameset", "applet"}  # fmt: skip
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr"}  # fmt: skip
_BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td",
          "th", "table", "section", "article", "header", "footer", "nav", "aside", "blockquote",
          "pre", "main", "figure", "figcaption", "dd", "dt", "dl", "hr", "form", "address",
          "title", "body", "details", "summary"}  # fmt: skip
_TAG_REASON = {"nav": "navigation", "footer": "footer", "aside": "sidebar", "form": "form",
               "header": "header", "menu": "navigation"}  # fmt: skip
_ROLE_REASON = {"navigation": "navigation", "contentinfo": "footer", "complementary": "sidebar",
                "banner": "header", "menu": "navigation", "menubar": "navigation"}  # fmt: skip
_CLASS_REASON = [
    (re.compile(r"comment|disqus|respond|replies"), "comments"),
    (re.compile(r"cookie|consent|gdpr"), "cookie notice"),
    (re.compile(r"share|sharing|social"), "share links"),
    (re.compile(r"byline|author"), "byline"),
    (re.compile(r"^(?:nav|navbar|menu|breadcrumbs?|navigation)$"), "navigation"),
    (re.compile(r"^(?:footer|site-footer|colophon)$"), "footer"),
    (re.compile(r"^(?:sidebar|widget|related)$"), "sidebar"),
    (re.compile(r"^(?:ad|ads|advert|advertisement|sponsored)$"), "advertisement"),
]
_DATE_META = ("article:published_time", "og:published_time", "datepublished", "date", "pubdate",
              "publishdate", "publish-date", "dc.date.issued", "dc.date", "sailthru.date",
              "parsely-pub-date", "article.published")  # fmt: skip
_MAIN_EXCLUDED = {"navigation", "footer", "sidebar", "form", "header", "comments",
                  "cookie notice", "share links", "advertisement"}  # fmt: skip
_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
_SPACES = re.compile(r"\s+")

logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # it logs every odd page


def declared_charset(data: bytes) -> str | None:
    """The charset a page declares in its first 4 KB (``<meta charset>`` or http-equiv)."""
    m = _CHARSET.search(data[:4096])
    return m.group(1).decode("ascii", "replace").lower() if m else None


def _element_reason(tag: str, attrs: dict[str, str]) -> str | None:
    if tag in _TAG_REASON:
        return _TAG_REASON[tag]
    role = attrs.get("role", "").lower()
    if role in _ROLE_REASON:
        return _ROLE_REASON[role]
    tokens = re.split(r"[\s_]+", f"{attrs.get('class', '')} {attrs.get('id', '')}".lower())
    for token in filter(None, tokens):
        for pattern, reason in _CLASS_REASON:
            if pattern.search(token):
                return reason
    return None


class _PageParser(HTMLParser):
    """Visible text as lines tagged with the page region they sit in, plus head metadata."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.lines: list[tuple[str, str | None]] = []
        self._stack: list[tuple[str, str | None]] = []
        self._skip = 0
        self._buf: list[str] = []
        self._buf_reason: str | None = None
        self._in_title = False
        self._title: list[str] = []
        self._in_h1 = False
        self._h1: list[str] = []

    def _reason(self) -> str | None:
        in_article = any(t in ("article", "main") for t, _ in self._stack)
        for _tag, reason in reversed(self._stack):
            if reason and not (reason == "header" and in_article):
                return reason
        return None

    def _flush(self) -> None:
        text = _SPACES.sub(" ", "".join(self._buf)).strip()
        if text:
            self.lines.append((text, self._buf_reason))
        self._buf, self._buf_reason = [], None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag in _SKIP:
            if tag not in _VOID:
                self._skip += 1
            return
        if tag == "meta":
            key = (a.get("property") or a.get("name") or a.get("itemprop") or "").lower()
            if key and a.get("content") and key not in self.meta:
                self.meta[key] = a["content"].strip()
        elif tag == "link" and "canonical" in a.get("rel", "").lower() and a.get("href"):
            self.meta.setdefault("canonical", a["href"].strip())
        elif tag == "time" and a.get("datetime"):
            self.meta.setdefault("time", a["datetime"])
        if tag in _BLOCK:
            self._flush()
        if tag == "title":
            self._in_title = True
        elif tag == "h1" and not self._h1:
            self._in_h1 = True
        if tag not in _VOID:
            self._stack.append((tag, _element_reason(tag, a)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if tag in _BLOCK:
            self._flush()
        if tag == "title":
            self._in_title = False
        elif tag == "h1":
            self._in_h1 = False
        if any(t == tag for t, _ in self._stack):
            while self._stack and self._stack.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self._title.append(data)
            return
        if self._in_h1:
            self._h1.append(data)
        if not self._buf:
            self._buf_reason = self._reason()
        self._buf.append(data)

    def close(self) -> None:
        super().close()
        self._flush()
        self.meta["title"] = _SPACES.sub(" ", "".join(self._title)).strip()
        self.meta["h1"] = _SPACES.sub(" ", "".join(self._h1)).strip()


def _trafilatura(html: str, keep_comments: bool) -> str | None:
    try:
        import trafilatura

        return trafilatura.extract(
            html,
            output_format="txt",
            include_comments=keep_comments,
            include_tables=True,
            include_links=False,
            include_images=False,
            favor_recall=True,  # a dropped body paragraph costs more than a kept footer line
            deduplicate=False,
        )
    except Exception:  # noqa: BLE001 - any parser failure means "use the fallback"
        return None


def _line_reason(text: str) -> str | None:
    if date_line(text):
        return "date"
    if is_byline(text):
        return "byline"
    if COOKIE.search(text):
        return "cookie notice"
    if COMMENT_MARKER.match(text):
        return "comments"
    if NAVIGATION.match(text):
        return "navigation"
    if FOOTER.search(text):
        return "footer"
    return None


def clean_html(html: str, *, keep_comments: bool = False) -> tuple[Cleaned, dict[str, str]]:
    """Cleaned main text of a page, and its metadata (title, date, author, url, site)."""
    html = normalize_chars(html)
    parser = _PageParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser rarely fails; keep what it saw
        pass
    meta = parser.meta
    extracted = _trafilatura(html, keep_comments) or ""
    if not extracted.strip():
        extracted = "\n".join(t for t, r in parser.lines if r not in _MAIN_EXCLUDED)
    lines: list[Line] = []
    for line in to_lines(extracted):
        lines += [line, Line("")]  # each extracted line is a paragraph of its own
    title = meta.get("og:title") or meta.get("h1") or meta.get("title") or None
    removals: list[Removal] = []
    first = next((i for i, ln in enumerate(lines) if ln.text), None)
    titles = {t.casefold() for t in (title, meta.get("h1"), meta.get("title")) if t}
    if first is not None and lines[first].text.casefold() in titles:
        lines[first] = Line("")  # listed as a "title" removal below, with the page's other lines
    cleaned = clean_lines(lines, keep_comments=keep_comments, join_lines=False, find_title=False)
    text_reasons = {
        piece: r.reason for r in cleaned.removals for piece in r.text.split("\n") if piece
    }
    kept = set(cleaned.text.split("\n\n"))
    for text, region in parser.lines:
        if text in kept or (len(text) >= 25 and text in cleaned.text):
            continue
        if title and text.casefold() in titles:
            reason = "title"
        else:
            reason = text_reasons.get(text) or region or _line_reason(text) or "boilerplate"
        if removals and removals[-1].reason == reason:
            removals[-1] = Removal(f"{removals[-1].text}\n{text}", reason)
        else:
            removals.append(Removal(text, reason))
    cleaned.removals = removals
    byline = next((t for t, r in parser.lines if r == "byline"), None)
    author = meta.get("author") or meta.get("article:author") or meta.get("dc.creator")
    if author and author.startswith(("http://", "https://")):
        author = None
    date = next((parse_date(meta[k]) for k in _DATE_META if parse_date(meta.get(k))), None)
    url = meta.get("canonical") or meta.get("og:url") or None
    info = {
        "title": title or cleaned.title or "",
        "date": date or parse_date(meta.get("time")) or cleaned.date or "",
        "author": author or (byline and author_from_byline(byline)) or cleaned.author or "",
        "url": url or "",
        "site": meta.get("og:site_name") or site_from_url(url) or "",
    }
    return cleaned, {k: v for k, v in info.items() if v}
