"""A quote's context: the sentences around it in its article, and when a quote must reach back.

News style names a thing once and refers back to it after: "The movie *Harbor Lights* dominated
the ceremony. The blockbuster won best picture." A quote of the second sentence alone does not say
what won. :func:`refers_back` recognises a sentence that opens that way (a pronoun, or "the" plus a
noun that the sentence does not name), and :func:`widen` extends such a quote to the sentence
before it, as one contiguous verbatim span. :func:`full_name_mention` finds where an article first
names in full a person the quote calls by surname only ("Trevino said ...").
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from rag.text.sentences import split_sentences

__all__ = [
    "ArticleSentences",
    "article_sentences",
    "full_name_mention",
    "is_question",
    "paragraph_at",
    "refers_back",
]

_PRONOUN = re.compile(
    r"^[\"“'‘(]*(?:he|she|it|they|his|her|its|their|them|him|this|these|those|that|such|both|"
    r"the latter|the former|the two|the three|the pair|the group|the same|its|there)\b",
    re.IGNORECASE,
)
# "The blockbuster won", "The 69-year-old general leads", "The company's shares": a definite
# noun phrase of lower-case words (a name would be capitalised: "The Broncos" names itself).
_DEFINITE = re.compile(
    r"^[\"“'‘(]*(?:[Tt]he|[Tt]his|[Tt]hat|[Tt]hese|[Tt]hose)\s+(?:[a-z0-9][\w'’-]*,?\s+){0,6}?"
    r"[a-z][\w'’-]*(?:'s|’s)?\s+[a-z]"
)


def is_question(sentence: str) -> bool:
    """Whether ``sentence`` is a question (a headline ending in "?" included): never an answer,
    nor the context a quote reaches back to."""
    return sentence.rstrip("\"'”’)] \t\n").endswith("?")


def refers_back(sentence: str) -> bool:
    """Whether ``sentence`` opens with a reference to something named before it."""
    s = sentence.lstrip()
    return bool(_PRONOUN.match(s) or _DEFINITE.match(s))


def paragraph_at(text: str, pos: int) -> tuple[int, int]:
    """The blank-line-separated paragraph of ``text`` that holds offset ``pos``."""
    start = text.rfind("\n\n", 0, pos)
    end = text.find("\n\n", pos)
    return (0 if start < 0 else start + 2, len(text) if end < 0 else end)


@functools.lru_cache(maxsize=64)
def article_sentences(text: str) -> ArticleSentences:
    """The sentences of an article text, split once for all the questions that read it."""
    return ArticleSentences(text)


@dataclass
class ArticleSentences:
    """The sentence spans of one article (offsets into its text), split once and shared."""

    text: str

    def __post_init__(self) -> None:
        self.spans = split_sentences(self.text)

    def within(self, start: int, end: int) -> list[tuple[int, int]]:
        """Sentences overlapping ``start:end``, clipped to it."""
        out = []
        for a, b in self.spans:
            if b <= start:
                continue
            if a >= end:
                break
            out.append((max(a, start), min(b, end)))
        return out

    def index_of(self, pos: int) -> int | None:
        """Index of the sentence that holds offset ``pos``."""
        lo, hi = 0, len(self.spans)
        while lo < hi:
            mid = (lo + hi) // 2
            a, b = self.spans[mid]
            if pos < a:
                hi = mid
            elif pos >= b:
                lo = mid + 1
            else:
                return mid
        return None

    def neighbour(self, start: int, end: int, step: int) -> tuple[int, int] | None:
        """The sentence just before (``step=-1``) or after (``+1``) the span, in its paragraph."""
        i = self.index_of(start if step < 0 else end - 1)
        if i is None or not 0 <= i + step < len(self.spans):
            return None
        a, b = self.spans[i + step]
        gap = self.text[b:start] if step < 0 else self.text[end:a]
        return None if "\n\n" in gap or "\n" in gap.strip(" \t") else (a, b)

    def widen(self, start: int, end: int, names: int = 2) -> int:
        """The start of the quote ``start:end`` once it reaches back to what it refers to: the
        sentence before joins while the quote opens with a reference back (``names`` at most)."""
        for _ in range(names):
            if not refers_back(self.text[start:end]):
                break
            before = self.neighbour(start, end, -1)
            if before is None or is_question(self.text[before[0] : before[1]]):
                break
            start = before[0]
        return start


_CAPITAL = re.compile(r"(?<=\s)[A-Z][a-zà-ÿ'’-]{2,}\b")


def full_name_mention(text: str, quote: str, asked: set[str]) -> tuple[int, int] | None:
    """The sentence of ``text`` that first names in full a person ``quote`` calls by surname.

    A capitalised word of the quote (not asked about) that the article elsewhere writes after
    other capitalised words ("Cmdr. Armando Trevino") is a surname; returns the span of the
    sentence holding its first full mention, or None when the quote already names them in full.
    """
    for surname in dict.fromkeys(_CAPITAL.findall(" " + quote)):
        if surname.lower() in asked:
            continue
        m = re.search(rf"\b(?:[A-Z][a-zà-ÿ'’-]+\.?\s+)+{re.escape(surname)}\b", text)
        if m is None or m.group(0) in quote or m.group(0).split()[0].lower() in asked:
            continue
        p0, p1 = paragraph_at(text, m.start())
        for a, b in split_sentences(text[p0:p1]):
            if p0 + a <= m.start() < p0 + b and not is_question(text[p0 + a : p0 + b]):
                return p0 + a, p0 + b
    return None
