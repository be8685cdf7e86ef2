"""Frozen value types shared by every part of the system.

Offsets are always character offsets into ``Article.text``, the cleaned text that is stored and shown.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field


def content_hash(text: str) -> str:
    """Stable id of a piece of text: the first 16 bytes of its SHA-256, hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class Removal:
    """A piece of the raw input that cleaning dropped, and why."""

    text: str
    reason: str


@dataclass(frozen=True)
class PageSpan:
    """Characters ``start:end`` of the cleaned text came from page ``page`` (1-based) of a PDF."""

    start: int
    end: int
    page: int


@dataclass(frozen=True)
class Document:
    """What a loader makes of one record of a file: cleaned text plus the metadata found."""

    text: str
    title: str
    source: str
    date: str | None = None
    author: str | None = None
    url: str | None = None
    site: str | None = None
    removed: tuple[Removal, ...] = ()
    pages: tuple[PageSpan, ...] = ()


@dataclass(frozen=True)
class Article:
    """An indexed article. ``id`` is the content hash of ``text``."""

    id: str
    source: str
    title: str
    text: str
    date: str | None = None
    author: str | None = None
    url: str | None = None
    site: str | None = None
    group_id: str | None = None  # near-duplicate group (id of the fullest version), if any
    pages: tuple[PageSpan, ...] = ()  # PDF pages, in text order; empty for other files

    def page_at(self, offset: int) -> int | None:
        """The PDF page the character at ``offset`` came from (None: not a PDF). Offsets in the
        whitespace that joins two pages count for the page before it."""
        page = None
        for span in self.pages:
            if span.start > offset:
                break
            page = span.page
        return page


@dataclass(frozen=True)
class Chunk:
    """A passage of an article: ``article.text[start:end] == text``."""

    id: str
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class FactChange:
    """A fact another version of an article gives differently: the words here and there.

    ``here_start:here_end`` are offsets in this article, ``there_start:there_end`` in the other
    version; ``kind`` is "number", "date" or "name" (a place is a name).
    """

    kind: str
    here: str
    there: str
    here_start: int
    here_end: int
    there_start: int
    there_end: int


@dataclass(frozen=True)
class OtherVersion:
    """Another member of an article's near-duplicate group, and the facts it gives differently
    (none: a plain reprint)."""

    article: Article
    changes: tuple[FactChange, ...] = ()

    @property
    def source(self) -> str:
        return self.article.source

    def changes_within(self, start: int, end: int) -> tuple[FactChange, ...]:
        """The changes whose words here lie inside ``start:end`` of this article."""
        return tuple(c for c in self.changes if start <= c.here_start and c.here_end <= end)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its article and fused relevance score (higher is better)."""

    chunk: Chunk
    article: Article
    score: float
    also_in: tuple[str, ...] = ()  # sources of near-duplicate passages collapsed into this one
    dense_score: float | None = None
    lexical_score: float | None = None
    # The other versions of the article (its near-duplicate group), with the facts they change.
    versions: tuple[OtherVersion, ...] = ()


@dataclass(frozen=True)
class Citation:
    """One numbered source of an answer: the passage and the verbatim quote inside it."""

    n: int
    source: str
    title: str
    passage: str
    passage_start: int
    quote: str
    start: int
    end: int
    score: float
    article_id: str
    chunk_id: str
    date: str | None = None
    url: str | None = None
    also_in: tuple[str, ...] = ()
    page: int | None = None  # the PDF page the quote starts on
    versions: tuple[OtherVersion, ...] = ()  # other versions of the article (see Hit.versions)


@dataclass(frozen=True)
class AnswerSentence:
    """A sentence of an answer, the citation numbers it carries, and whether they support it."""

    text: str
    citations: tuple[int, ...]
    supported: bool = True
    support: float | None = None


@dataclass(frozen=True)
class Conflict:
    """Two citations of an answer that give different values of one kind for what was asked.

    The pairs run in citation order: the newer version first when both are dated. ``values`` are
    verbatim: ``spans`` are their offsets in each citation's article.
    """

    kind: str  # number, date or name
    values: tuple[str, str]
    citations: tuple[int, int]
    sources: tuple[str, str]
    dates: tuple[str | None, str | None]
    spans: tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    closest: tuple[Hit, ...] = ()
    sentences: tuple[AnswerSentence, ...] = ()
    mode: str = "extractive"
    standalone_question: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # The entity, number or date inside the first quote that answers ("" when none does), and its
    # offsets in that quote's article: article_text[short_answer_start:short_answer_end].
    short_answer: str = ""
    short_answer_start: int | None = None
    short_answer_end: int | None = None
    confidence: float | None = None  # calibrated probability that the answer is right (0-1)
    conflicts: tuple[Conflict, ...] = ()  # cited passages that disagree on what was asked

    def short_line(self) -> str:
        """The short answer with the citation it lies in ("Trevino — [1]"), or "" without one."""
        if not (self.short_answer and self.citations):
            return ""
        return f"{self.short_answer} — [{self.citations[0].n}]"


@dataclass(frozen=True)
class Filters:
    """Restrict results to articles whose source matches and whose date lies in a range.

    ``source`` is a glob (``*``, ``?``, ``[...]``) matched against the whole source and against its
    file name (so ``002_*`` finds ``/any/folder/002_story.txt``), or else a piece of text the
    source contains. Dates are ISO ``YYYY-MM-DD``, inclusive; articles without a date are left out
    by a date filter.
    """

    source: str | None = None
    date_from: str | None = None
    date_to: str | None = None

    def active(self) -> bool:
        return bool(self.source or self.date_from or self.date_to)

    def source_matches(self, source: str) -> bool:
        """Whether ``source`` passes the source filter (True when there is none)."""
        if not self.source:
            return True
        if not any(ch in self.source for ch in "*?["):
            return self.source in source
        name = source.split("#", 1)[0].replace("\\", "/").rsplit("/", 1)[-1]
        return fnmatch.fnmatchcase(source, self.source) or fnmatch.fnmatchcase(name, self.source)

    def date_matches(self, date: str | None) -> bool:
        """Whether an article dated ``date`` passes the date range (True when there is none)."""
        if not (self.date_from or self.date_to):
            return True
        if not date:
            return False
        return (not self.date_from or date >= self.date_from) and (
            not self.date_to or date <= self.date_to
        )

    def describe(self) -> str:
        """The active filters in words: 'source matching "002_*", dated from 2009-01-01'."""
        parts = []
        if self.source:
            parts.append(f"source matching “{self.source}”")
        if self.date_from:
            parts.append(f"dated from {self.date_from}")
        if self.date_to:
            parts.append(f"dated to {self.date_to}")
        return ", ".join(parts)
