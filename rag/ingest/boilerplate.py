"""Find the parts of a web-page text dump that are not the article, line by line.

Works on lines (not paragraphs) because page dumps put navigation, bylines, comment controls and
footers on lines of their own. Everything is conservative: a body paragraph dropped by mistake is
worse than a footer line left in, so each rule needs a strong, whole-line signal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.ingest.metadata import author_from_byline, date_line, is_byline, trailing_author
from rag.types import Removal


@dataclass
class Line:
    """One input line: collapsed text, its leading indentation, and whether it is code."""

    text: str
    indent: int = 0
    verbatim: bool = False


@dataclass
class Boilerplate:
    """What :func:`find_boilerplate` decided: a reason per dropped line, and metadata it saw."""

    reasons: list[str | None]
    title: str | None = None
    date: str | None = None
    author: str | None = None
    removals: list[Removal] = field(default_factory=list)


def _whole(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:{pattern})$", re.I)


NAVIGATION = _whole(
    r"pages?\s*[-–—:]\s*menu|menu|main menu|navigation|skip to (?:main )?content|skip navigation"
    r"|home|back to top|toggle navigation|search(?: this (?:blog|site))?|(?:log|sign) ?in"
    r"|newer posts?\s*older posts?(?:\s*home)?|older posts?|newer posts?|home\s*[»>›].{0,80}"
)
# Outside the page header only unmistakable navigation goes: a lone "Home" or "Search" may be
# a subheading of the article.
NAVIGATION_ANYWHERE = _whole(
    r"pages?\s*[-–—:]\s*menu|skip to (?:main )?content|skip navigation|back to top"
    r"|toggle navigation|newer posts?\s*older posts?(?:\s*home)?|home\s*[»>›].{0,80}"
)
_MENU_SEPARATORS = re.compile(r"\s+[|•·»›]\s+")
SHARE = re.compile(
    r"read more|continue reading|read the (?:full|rest of the) (?:story|article)"
    r"|share (?:to|on) (?:twitter|facebook|pinterest|linkedin|whatsapp|x)|share(?: this)?"
    r"(?: (?:article|story|post))?:?|tweet|email this|blogthis!|print(?: this)?"
    r"|subscribe(?: now| to (?:our|the) newsletter)?|sign up for (?:our|the) newsletter"
    r"|follow us(?: on \w+)?|like this:|related(?: posts| articles| stories)?:?"
    r"|facebook|twitter|whatsapp|linkedin|pinterest|reddit|e-?mail|copy link",
    re.I,
)
_SHARE_TOKEN_SPLIT = re.compile(r"[\s|•·,/]+")
ADVERT = _whole(r"advertisement|sponsored(?: content)?|ad")
COOKIE = re.compile(
    r"\b(?:we|this (?:web)?site|our (?:web)?site)\b.{0,60}\buses? cookies\b"
    r"|\bby (?:continuing|using|browsing)\b.{0,80}\b(?:consent|agree|accept)\w*\b.{0,60}cookies"
    r"|\baccept (?:all )?cookies\b|\bcookie (?:policy|settings|preferences|notice|consent)\b",
    re.I,
)
_COOKIE_BUTTON = _whole(r"accept(?: all)?|got it|i agree|ok(?:ay)?|agree|more (?:details|info)…?")
COMMENT_HEADER = _whole(
    r"(?:\d+|no|one)\s+comments?:?|comments?:?|(?:leave|post|add|write) a (?:comment|reply):?"
    r"|\d+ (?:responses?|replies|thoughts) (?:to|on) .{0,200}|join the discussion|reader comments"
    r"|(?:show|view|load) (?:all )?comments"
)
COMMENT_SAID = re.compile(r"^.{1,60}\s(?:said|says|wrote)\s*(?:\.\.\.|…|:)$", re.I)
COMMENT_MARKER = _whole(
    r"reply|replydelete|reply delete|delete|replies|report(?: abuse)?|reply ↓|like|likes?"
)
MODERATION = re.compile(
    r"^(?:comments are moderated|post a comment|subscribe to:? post comments"
    r"|newer post\s*older post|note: only a member of this blog may post a comment)",
    re.I,
)
FOOTER = re.compile(
    r"^contact(?: us)?\s*(?:$|:|at\b|by\b)|^tel(?:ephone)?[.:]|^phone:|^fax:|all rights reserved"
    r"|^©|^\(c\)\s*\d{4}|^copyright\s*(?:©|\(c\)|\d{4})|^privacy policy"
    r"|^terms (?:of|and) (?:use|service|conditions)|^powered by\b|^labels?:|^tags?:|^filed under:"
    r"|^email us\b|^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$",
    re.I,
)
NUMBERED = re.compile(r"^(\d{1,3})[.)]\s")
PAGE_NUMBER = _whole(r"\d{1,4}|page \d{1,4}(?: of \d{1,4})?|- \d{1,4} -")


def _is_menu(text: str) -> bool:
    """'Home | News | Sport | Contact': three or more short items between separators."""
    items = _MENU_SEPARATORS.split(text)
    return len(items) >= 3 and all(0 < len(i.split()) <= 3 for i in items)


def _is_share(text: str) -> bool:
    if len(text) > 120:
        return False
    if SHARE.fullmatch(text.strip(" .:!»›>")):
        return True
    # Blogger glues its buttons together: "Email ThisBlogThis!Share to TwitterShare to Facebook".
    rest = SHARE.sub(" ", text)
    return rest != text and not _SHARE_TOKEN_SPLIT.sub("", rest).strip(" .:!»›>-")


def _is_title_like(lines: list[Line], i: int) -> bool:
    """A short line standing alone in its block, not ending like a sentence fragment."""
    text = lines[i].text
    if not text or len(text) >= 200 or lines[i].verbatim:
        return False
    alone = (i == 0 or not lines[i - 1].text) and (i + 1 >= len(lines) or not lines[i + 1].text)
    return alone and text[-1] not in ".,;:" and not NUMBERED.match(text)


class _Marker:
    def __init__(self, lines: list[Line]) -> None:
        self.lines = lines
        self.reasons: list[str | None] = [None] * len(lines)
        self.title: str | None = None
        self.date: str | None = None
        self.author: str | None = None

    def mark(self, i: int, reason: str) -> None:
        if self.reasons[i] is None and self.lines[i].text:
            self.reasons[i] = reason

    def byline(self, i: int) -> None:
        self.mark(i, "byline")
        self.author = self.author or author_from_byline(self.lines[i].text)
        self.date = self.date or date_line(self.lines[i].text)


def _comment_start(lines: list[Line]) -> int | None:
    """Index of the first line of the reader comment thread, or None."""
    n = len(lines)
    texts = [ln.text for ln in lines]
    candidates: list[int] = []
    # Never before some body text: a page does not open with its comments.
    first_body = next((i for i, t in enumerate(texts) if len(t) > 150), n)
    for i in range(first_body, n):
        if COMMENT_HEADER.match(texts[i]) and len(texts[i]) < 250:
            candidates.append(i)
            break
    said = [i for i in range(first_body, n) if COMMENT_SAID.match(texts[i])]
    markers = [i for i in range(first_body, n) if COMMENT_MARKER.match(texts[i])]
    if len(said) >= 2 or (said and markers):
        candidates.append(said[0])
    if len(markers) >= 2:
        # Walk back from the first "Reply" to the start of its comment: a numbered item, or the
        # start of the block (a comment body is one block, its control line the next).
        m = markers[0]
        start = m
        for j in range(m - 1, max(first_body - 1, m - 40), -1):
            if NUMBERED.match(texts[j]) and lines[j].indent > 0:
                start = j
                break
        else:
            j = m - 1
            while j >= 0 and not texts[j]:
                j -= 1
            while j >= 0 and texts[j]:
                start = j
                j -= 1
        if start > first_body or len(texts[first_body]) > 150:
            candidates.append(max(start, first_body))
    # Blogger without reply buttons: an indented numbered list ("  1. ...") that runs up to
    # the "Comments are moderated" footer.
    mod = next((i for i in range(first_body, n) if MODERATION.match(texts[i])), None)
    if mod is not None:
        first_item = None
        for j in range(mod - 1, first_body, -1):
            if not texts[j]:
                continue
            if lines[j].indent == 0:
                break
            if NUMBERED.match(texts[j]):
                first_item = j
        first_number = NUMBERED.match(texts[first_item]) if first_item is not None else None
        if first_item is not None and first_number and first_number.group(1) == "1":
            candidates.append(first_item)
    return min(candidates) if candidates else None


def _mark_comments(mk: _Marker, keep_comments: bool) -> int:
    """Mark the comment thread and what follows it; return where the article region ends."""
    lines, n = mk.lines, len(mk.lines)
    start = _comment_start(lines)
    if start is None:
        return n
    texts = [ln.text for ln in lines]
    markers = [i for i in range(start, n) if COMMENT_MARKER.match(texts[i])]
    mod = next((i for i in range(start, n) if MODERATION.match(texts[i])), None)
    end = n
    if mod is not None and (not markers or mod > markers[-1]):
        end = mod
    elif markers:
        end = markers[-1] + 1
    for i in range(start, end):
        if not keep_comments:
            mk.mark(i, "comments")
        elif COMMENT_MARKER.match(texts[i]):
            mk.mark(i, "comment controls")
    for i in range(end, n):
        mk.mark(i, "footer")
    return start


def _mark_footer(mk: _Marker, region_end: int) -> None:
    lines = mk.lines
    nonblank = [i for i in range(region_end) if lines[i].text]
    tail = nonblank[-12:]
    anchors = [
        i
        for i in tail
        if len(lines[i].text) < 120
        and (FOOTER.search(lines[i].text) or MODERATION.match(lines[i].text))
    ]
    if not anchors:
        return
    first = anchors[0]
    rest = [i for i in nonblank if i >= first]
    if all(len(lines[i].text) < 200 for i in rest):
        for i in rest:
            mk.mark(i, "footer")
    else:
        for i in anchors:
            if len(lines[i].text) < 200:
                mk.mark(i, "footer")


def _mark_header(mk: _Marker, region_end: int, find_title: bool) -> None:
    lines = mk.lines
    nonblank = [i for i in range(region_end) if lines[i].text][:12]
    if not nonblank:
        return
    # A date line among the first few lines, with only short lines above it, splits a blog
    # page into site header (above) and the post (title, byline, body) below.
    date_at = None
    for k, i in enumerate(nonblank[:6]):
        if date_line(lines[i].text):
            if all(len(lines[j].text) < 150 for j in nonblank[:k]):
                date_at = k
            break
    pos = 0
    if date_at is not None:
        above = nonblank[:date_at]
        after = nonblank[date_at + 1] if date_at + 1 < len(nonblank) else None
        title_after = after is not None and _is_title_like(lines, after)
        for i in above:
            text = lines[i].text
            if is_byline(text):
                mk.byline(i)
            elif COOKIE.search(text):
                mk.mark(i, "cookie notice")
            elif (
                find_title
                and not title_after
                and mk.title is None
                and _is_title_like(lines, i)
                and not NAVIGATION.match(text)
            ):
                mk.title = text
                mk.mark(i, "title")
            else:
                mk.mark(i, "navigation")
        mk.date = date_line(lines[nonblank[date_at]].text)
        mk.author = mk.author or trailing_author(lines[nonblank[date_at]].text)
        mk.mark(nonblank[date_at], "date")
        pos = date_at + 1
    for i in nonblank[pos:]:
        text = lines[i].text
        if NAVIGATION.match(text) or _is_menu(text):
            mk.mark(i, "navigation")
        elif is_byline(text):
            mk.byline(i)
        elif (iso := date_line(text)) is not None:
            mk.date = mk.date or iso
            mk.author = mk.author or trailing_author(text)
            mk.mark(i, "date")
        elif find_title and mk.title is None and _is_title_like(lines, i):
            mk.title = text
            mk.mark(i, "title")
        elif not lines[i].verbatim and (reason := _furniture(text)) is not None:
            mk.mark(i, reason)  # dropped wherever it stands, so the header goes on past it
        elif mk.reasons[i] is None:
            break  # the body starts here


def _furniture(text: str) -> str | None:
    """Why a line is dropped wherever it stands on the page (None: it is not)."""
    if len(text) < 600 and COOKIE.search(text):
        return "cookie notice"
    if _is_share(text):
        return "share links"
    if ADVERT.match(text):
        return "advertisement"
    if len(text) < 200 and NAVIGATION_ANYWHERE.match(text):
        return "navigation"  # not '|' menus here: a table row looks the same
    return None


def _mark_anywhere(mk: _Marker, pdf: bool) -> None:
    lines = mk.lines
    for i, line in enumerate(lines):
        text = line.text
        if not text or line.verbatim:
            continue
        if mk.reasons[i] is None and (reason := _furniture(text)) is not None:
            mk.mark(i, reason)
        if mk.reasons[i] == "cookie notice":  # here or in the header: its buttons go too
            for j in (i - 1, i + 1, i + 2):
                if 0 <= j < len(lines) and _COOKIE_BUTTON.match(lines[j].text):
                    mk.mark(j, "cookie notice")
        elif mk.reasons[i] is not None:
            continue
        elif re.match(r"^posted by\b.{1,80}\bat \d{1,2}:\d{2}", text, re.I):
            mk.byline(i)
        elif pdf and PAGE_NUMBER.match(text):
            mk.mark(i, "page number")


def find_boilerplate(
    lines: list[Line], *, keep_comments: bool = False, find_title: bool = True, pdf: bool = False
) -> Boilerplate:
    """Decide for every line whether it is article text (reason None) or boilerplate."""
    mk = _Marker(lines)
    region_end = _mark_comments(mk, keep_comments)
    _mark_footer(mk, region_end)
    _mark_header(mk, region_end, find_title)
    _mark_anywhere(mk, pdf)
    removals: list[Removal] = []
    run: list[str] = []
    run_reason: str | None = None
    for line, reason in [*zip(lines, mk.reasons, strict=True), (Line("\0"), "\0")]:
        if reason is None and not line.text and run:
            run.append("")  # blank lines inside a dropped run stay in it
            continue
        if reason != run_reason or reason is None:
            if run and run_reason is not None:
                removals.append(Removal("\n".join(run).strip("\n"), run_reason))
            run, run_reason = [], reason
        if reason is not None:
            run.append(line.text)
    return Boilerplate(mk.reasons, mk.title, mk.date, mk.author, removals)
