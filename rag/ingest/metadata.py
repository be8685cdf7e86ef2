"""Article metadata found in text: dates normalised to ISO ``YYYY-MM-DD``, authors from bylines."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlsplit

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+"
# "Tuesday, May 5, 2009", "May 5th 2009", "5 May 2009", "2009-05-05", "2009/05/05"
_DATE_PATTERNS = [
    re.compile(
        rf"\b(?:{_WEEKDAY})?{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b",
        re.I,
    ),
    re.compile(
        rf"\b(?:{_WEEKDAY})?(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+"
        r"(?P<year>\d{4})\b",
        re.I,
    ),
    re.compile(r"\b(?P<year>\d{4})[-/.](?P<mnum>\d{1,2})[-/.](?P<day>\d{1,2})(?!\d)"),
]
# What may surround a date on a line that is only a date ("Posted on ... at 10:05 AM").
_DATE_FILLER = re.compile(
    r"\b(?:posted|published|updated|last|modified|on|at|date|dated|time)\b|"
    r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?|\b(?:[ap]m|gmt|utc|[ecmp][sd]t)\b|"
    r"T\d{2}:\d{2}\S*|[\s,.:;|/()\-–—]+",
    re.I,
)


def _valid(year: int, month: int, day: int) -> str | None:
    if not 1000 <= year <= 2999:
        return None
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _from_match(m: re.Match[str]) -> str | None:
    groups = m.groupdict()
    month = int(groups["mnum"]) if groups.get("mnum") else _MONTHS[groups["mon"].lower()[:3]]
    return _valid(int(groups["year"]), month, int(groups["day"]))


def _find_date(text: str) -> tuple[str, re.Match[str]] | None:
    best: tuple[str, re.Match[str]] | None = None
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            iso = _from_match(m)
            if iso and (best is None or m.start() < best[1].start()):
                best = (iso, m)
                break
    return best


def parse_date(text: str | None) -> str | None:
    """The first full date (day, month and year) in ``text`` as ``YYYY-MM-DD``, or None."""
    if not text:
        return None
    found = _find_date(text[:500])
    return found[0] if found else None


_TRAILING_BY = re.compile(r"\s+by:?\s+(?P<name>[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,3})\s*$", re.I)


def trailing_author(text: str) -> str | None:
    """The name in a trailing 'by Name' of a dated line ('Posted on March 3, 2021 by Jo Doe')."""
    m = _TRAILING_BY.search(text)
    return m.group("name") if m and m.group("name")[0].isupper() else None


def date_line(text: str) -> str | None:
    """The ISO date if the line is only a date (with weekday, 'Posted on', a time, a trailing
    'by Name'), else None."""
    if len(text) > 80:
        return None
    if trailing_author(text):
        text = text[: _TRAILING_BY.search(text).start()]  # type: ignore[union-attr]
    found = _find_date(text)
    if not found:
        return None
    iso, m = found
    rest = text[: m.start()] + " " + text[m.end() :]
    return iso if not _DATE_FILLER.sub("", rest).strip() else None


_NAME = r"[A-Z][\w.'’-]*(?:\s+(?:[A-Z][\w.'’-]*|de|del|da|van|von|la|le|bin))*"
_BY_NAME = re.compile(rf"(?:^|[\s,|(])By:?\s+(?P<name>{_NAME})")
_POSTED_BY = re.compile(
    r"\b(?:posted|written|published|submitted)\s+by:?\s+(?P<name>[^,|;]+?)"
    r"(?=\s+(?:at|on)\s|\s*[,|;(]|\s*$)",
    re.I,
)
_BYLINE_START = re.compile(
    r"^(?:by:?\s+\S|written by\s|posted by\s|words by\s|story by\s|author:\s*\S)", re.I
)


def is_byline(text: str) -> bool:
    """A short line that names the author: 'By X', 'Posted by X at 10:05 AM', '... posted by X'."""
    if len(text) > 200:
        return False
    return bool(_BYLINE_START.match(text) or _POSTED_BY.search(text))


def author_from_byline(text: str) -> str | None:
    """The author named in a byline; prefers 'By Name' over the 'posted by' account name."""
    m = _BY_NAME.search(text)
    if m:
        name = m.group("name").strip(" .,")
        name = re.split(r"\s+(?:at|on|and|for|in)\s+|,", name)[0].strip()
        if name:
            return name
    m = _POSTED_BY.search(text)
    if m:
        name = m.group("name").strip(" .")
        if 0 < len(name) <= 60:
            return name
    m = re.match(r"^author:\s*(.{1,60})$", text.strip(), re.I)
    return m.group(1).strip() if m else None


def site_from_url(url: str | None) -> str | None:
    """The host of a URL without a leading 'www.'."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host
