"""Check an LLM answer against the passages it cites; pure functions, no LangChain.

The model is asked to put ``[n]`` after every claim. Here we split the answer into sentences, drop
citation numbers that name no passage and links that are not an article's own address, find in
each cited passage the span that best matches the sentence, mark the sentence supported when that
match is close enough and its names and numbers occur in a cited passage, and renumber the passages
actually cited as 1..m in order of first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.answer.abstention import ABSTENTION, is_abstention
from rag.text.sentences import split_sentences
from rag.types import AnswerSentence, Citation, Hit

Similarity = Callable[[str, Sequence[str]], list[float]]

# One citation group: [3], [1, 2], [2-4], [1,3-5]. [n][m] is two groups.
_MARKER_RE = re.compile(r"\[\s*\d+(?:\s*[-–,;]\s*\d+)*\s*\]")
_URL_RE = re.compile(r"https?://[^\s\[\])>\"'”’]+")
_SPECIFIC_RE = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")
_MAX_RANGE = 50  # a range like [1-100000] is a model glitch, not 100000 citations


def parse_marker(marker: str) -> list[int]:
    """The numbers in one citation group: ``"[1, 3-5]"`` -> ``[1, 3, 4, 5]``."""
    numbers: list[int] = []
    for part in re.split(r"[,;]", marker.strip("[] ")):
        ends = [int(x) for x in re.split(r"[-–]", part) if x.strip()]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] < _MAX_RANGE:
            numbers.extend(range(ends[0], ends[1] + 1))
        else:
            numbers.extend(ends)
    return numbers


def strip_markers(sentence: str) -> str:
    """The sentence without citation groups, with the space before them tidied away."""
    out = _MARKER_RE.sub("", sentence)
    out = re.sub(r"\s+([.,;:!?])", r"\1", out)
    return re.sub(r"\s{2,}", " ", out).strip()


def candidate_spans(text: str) -> list[tuple[int, int]]:
    """Spans a claim may be matched against: each sentence, and each pair of adjacent sentences."""
    sents = split_sentences(text)
    if not sents:
        return [(0, len(text))] if text.strip() else []
    pairs = [(a[0], b[1]) for a, b in zip(sents, sents[1:], strict=False)]
    return sents + pairs


@dataclass(frozen=True)
class Verified:
    """What verification made of an answer; ``llm.py`` turns it into an ``Answer``."""

    text: str
    sentences: tuple[AnswerSentence, ...]
    citations: tuple[Citation, ...]
    abstained: bool
    notes: tuple[str, ...]


def verify(
    answer_text: str,
    hits: Sequence[Hit],
    similarity: Similarity,
    threshold: float,
) -> Verified:
    """Check every sentence of ``answer_text`` against the ``hits`` (numbered from 1) it cites."""
    notes: list[str] = []
    raw = answer_text.strip()
    if not raw or is_abstention(raw):
        if raw:
            notes.append("the model said the passages don't answer the question")
        else:
            notes.append("the model returned an empty answer")
        return Verified(ABSTENTION, (), (), True, tuple(notes))

    allowed_urls = {h.article.url.rstrip("/") for h in hits if h.article.url}
    spans_cache: dict[int, list[tuple[int, int]]] = {}
    # Per passage (old number): best (score, span) over every sentence that cites it.
    best_quote: dict[int, tuple[float, tuple[int, int]]] = {}
    order: list[int] = []  # old numbers, in order of first valid use
    drafts: list[tuple[int, int, str, list[list[int]], float | None, bool]] = []
    removed: set[int] = set()

    for start, end in split_sentences(raw, markers=True):
        before = len(notes)
        sentence = _drop_links(raw[start:end], allowed_urls, notes)
        # A sentence with a foreign link, or a name/number its passages lack, is never vouched for.
        tainted = len(notes) > before
        groups: list[list[int]] = []
        for m in _MARKER_RE.finditer(sentence):
            valid = []
            for num in parse_marker(m.group()):
                if 1 <= num <= len(hits):
                    if num not in valid:
                        valid.append(num)
                elif num not in removed:
                    removed.add(num)
                    notes.append(f"removed citation [{num}]: no such passage")
            groups.append(valid)
        cited = list(dict.fromkeys(n for g in groups for n in g))
        support: float | None = None
        if cited:
            # Links (kept or replaced) are not claims; only the words around them are checked.
            claim = strip_markers(_URL_RE.sub("", sentence.replace("(link removed)", "")))
            flat: list[tuple[int, tuple[int, int]]] = []
            for num in cited:
                if num not in spans_cache:
                    spans_cache[num] = candidate_spans(hits[num - 1].chunk.text)
                flat.extend((num, span) for span in spans_cache[num])
            texts = [hits[num - 1].chunk.text[a:b] for num, (a, b) in flat]
            scores = [float(s) for s in similarity(claim, texts)] if texts else []
            if len(scores) != len(texts):
                raise ValueError("similarity must return one score per candidate span")
            support = max(scores, default=0.0)
            for (num, span), score in zip(flat, scores, strict=True):
                if num not in best_quote or score > best_quote[num][0]:
                    best_quote[num] = (score, span)
            for num in cited:
                if num not in order:
                    order.append(num)
                best_quote.setdefault(num, (0.0, (0, len(hits[num - 1].chunk.text))))
            # Embedding similarity is topical: "leads the Chihuahua contingent" scores high against
            # "leads the Sonora contingent". Names and numbers must appear in a cited passage.
            missing = missing_specifics(claim, [hits[n - 1] for n in cited])
            if missing:
                tainted = True
                notes.append(f"not in the cited passages: {', '.join(missing)}")
        drafts.append((start, end, sentence, groups, support, tainted))

    renumber = {old: new for new, old in enumerate(order, start=1)}
    out_parts: list[str] = []
    sentences: list[AnswerSentence] = []
    pos = 0
    for start, end, sentence, groups, support, tainted in drafts:
        out_parts.append(raw[pos:start])
        pos = end
        text = _rewrite_markers(sentence, groups, renumber)
        out_parts.append(text)
        nums = tuple(dict.fromkeys(renumber[n] for g in groups for n in g))
        supported = support is not None and support >= threshold and not tainted
        sentences.append(AnswerSentence(text, nums, supported, support))
    out_parts.append(raw[pos:])

    if not any(s.supported for s in sentences):
        # The rejected draft is not returned: it may carry text an injected passage asked for.
        notes.append("no sentence of the model's answer was supported by the passages it cited")
        return Verified(ABSTENTION, (), (), True, tuple(notes))
    unsupported = sum(not s.supported for s in sentences)
    if unsupported:
        notes.append(f"{unsupported} sentence(s) not supported by their cited passages")

    citations = tuple(_citation(renumber[old], hits[old - 1], *best_quote[old]) for old in order)
    return Verified("".join(out_parts), tuple(sentences), citations, False, tuple(notes))


def _specifics(text: str) -> list[str]:
    """Numbers, and capitalised words other than the first: what a claim must not get wrong."""
    out = []
    for i, m in enumerate(_SPECIFIC_RE.finditer(text)):
        tok = m.group()
        if tok[0].isdigit() or (i > 0 and tok[0].isupper() and len(tok) > 1):
            out.append(tok)
    return out


def missing_specifics(claim: str, hits: Sequence[Hit]) -> list[str]:
    """Names and numbers of ``claim`` found in none of the ``hits`` (passage text or title)."""
    have = {
        t.lower().replace(",", "")
        for h in hits
        for t in _SPECIFIC_RE.findall(h.chunk.text + " " + h.article.title)
    }
    missing = [t for t in _specifics(claim) if t.lower().replace(",", "") not in have]
    return list(dict.fromkeys(missing))


def _drop_links(sentence: str, allowed: set[str], notes: list[str]) -> str:
    """Replace links that are not the address of a retrieved article (injected or invented)."""

    def repl(m: re.Match[str]) -> str:
        url = m.group().rstrip(".,;:!?")
        tail = m.group()[len(url) :]
        if url.rstrip("/") in allowed:
            return m.group()
        notes.append(f"removed link {url}: not the address of a retrieved article")
        return "(link removed)" + tail

    return _URL_RE.sub(repl, sentence)


def _rewrite_markers(sentence: str, groups: list[list[int]], renumber: dict[int, int]) -> str:
    it = iter(groups)

    def repl(_m: re.Match[str]) -> str:
        nums = list(dict.fromkeys(renumber[n] for n in next(it)))
        return "[" + ", ".join(str(n) for n in nums) + "]" if nums else ""

    out = _MARKER_RE.sub(repl, sentence)
    out = re.sub(r"[ \t]+([.,;:!?])", r"\1", out)  # "claim [7]." with [7] removed -> "claim."
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def _citation(n: int, hit: Hit, score: float, span: tuple[int, int]) -> Citation:
    chunk, article = hit.chunk, hit.article
    a, b = span
    quote = chunk.text[a:b]
    start, end = chunk.start + a, chunk.start + b
    assert article.text[start:end] == quote, "chunk offsets do not match the article text"
    return Citation(
        n=n,
        source=article.source,
        title=article.title,
        passage=chunk.text,
        passage_start=chunk.start,
        quote=quote,
        start=start,
        end=end,
        score=score,
        article_id=article.id,
        chunk_id=chunk.id,
        date=article.date,
        url=article.url,
        also_in=hit.also_in,
        page=article.page_at(start),
    )
