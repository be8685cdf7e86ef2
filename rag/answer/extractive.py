"""The offline default answerer: quotes the sentences of the retrieved passages that best answer the question.

Every quote is a verbatim slice of its article at the offsets given in its citation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.answer.abstention import abstain
from rag.embedder import Embedder
from rag.settings import Settings
from rag.text.sentences import split_sentences
from rag.text.shingles import containment, shingles
from rag.text.terms import Idf, term_weights, weighted_share
from rag.text.tokens import tokenize
from rag.types import Answer, AnswerSentence, Citation, Hit

_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)s?\b")
_MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec|Monday|Tuesday|Wednesday|Thursday|Friday|"
    r"Saturday|Sunday|century|decade)\b"
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
    r"fifty|hundred|thousand|million|billion|dozen|half|percent)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zà-ÿ]+(?:\s+[A-Z][a-zà-ÿ]+)*")


def question_kind(question: str) -> str | None:
    """The kind of thing asked for: 'date', 'number', 'name', 'place', or None."""
    q = question.lower()
    if re.search(
        r"\b(when|what year|which year|what date|what century|what decade|how long ago)\b", q
    ):
        return "date"
    if re.search(
        r"\b(how many|how much|how long|how old|how far|how big|what percent|what number)\b", q
    ):
        return "number"
    if re.search(r"\b(who|whom|whose)\b", q):
        return "name"
    if re.search(r"\bwhere\b", q):
        return "place"
    return None


def kind_match(kind: str | None, sentence: str, question: str) -> float:
    """1.0 when the sentence holds the kind of thing asked for (beyond what the question says)."""
    if kind == "date":
        return 1.0 if _YEAR.search(sentence) or _MONTH.search(sentence) else 0.0
    if kind == "number":
        return 1.0 if _NUMBER.search(sentence) else 0.0
    if kind in ("name", "place"):
        asked = {w.lower() for w in re.findall(r"\w+", question)}
        names = [m.group(0) for m in _NAME.finditer(sentence)]
        return 1.0 if any(n.split()[0].lower() not in asked for n in names) else 0.0
    return 0.0


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage and the features that score it against the question."""

    hit_index: int
    start: int  # offsets in the article
    end: int
    text: str
    cosine: float  # embedding similarity to the question
    overlap: float  # share of the question's key terms (idf-weighted) found in the sentence
    kind: float  # 1 when it holds the kind of thing asked for (a date for "when", ...)
    prior: float  # 1 / (1 + rank of its passage)
    phrase: float = 0.0  # share of the question's consecutive key-term pairs found as pairs
    score: float = 0.0
    passage: tuple[int, int] | None = (
        None  # article span to show as its passage (default: the hit's)
    )


@dataclass(frozen=True)
class Weights:
    """How the features combine; defaults chosen with bench/tune_answers.py on SQuAD."""

    lexical: float = 0.8
    kind: float = 0.3
    rank: float = 0.08
    phrase: float = 0.4

    def score(self, c: Candidate) -> float:
        return (
            c.cosine
            + self.lexical * c.overlap
            + self.kind * c.kind
            + self.rank * c.prior
            + self.phrase * c.phrase
        )


def sentence_spans(hits: Sequence[Hit]) -> list[tuple[int, int, int, str]]:
    """(hit index, start, end, text) of every sentence worth quoting in the hits' passages."""
    spans = []
    for i, hit in enumerate(hits):
        base = hit.chunk.start
        for s, e in split_sentences(hit.chunk.text):
            text = hit.chunk.text[s:e]
            if len(text) >= 12 and re.search(r"[A-Za-z]{3}", text):
                spans.append((i, base + s, base + e, text))
    return spans


class ExtractiveAnswerer:
    """Scores each sentence of the retrieved passages against the question and quotes the best."""

    def __init__(
        self,
        embedder: Embedder,
        settings: Settings,
        idf: Idf | None = None,
        weights: Weights | None = None,
    ) -> None:
        self.embedder = embedder
        self.settings = settings
        self.idf = idf
        self.weights = weights or Weights()

    def candidates(
        self, question: str, hits: Sequence[Hit], question_vector: np.ndarray | None = None
    ) -> list[Candidate]:
        spans = sentence_spans(hits)
        if not spans:
            return []
        qvec = (
            question_vector if question_vector is not None else self.embedder.embed([question])[0]
        )
        svecs = self.embedder.embed([t for *_, t in spans])
        cosines = svecs @ np.asarray(qvec, dtype=np.float32)
        weights = term_weights(question, self.idf)
        kind = question_kind(question)
        out = []
        q_tokens = tokenize(question)
        q_pairs = set(zip(q_tokens, q_tokens[1:], strict=False))
        for (i, start, end, text), cos in zip(spans, cosines, strict=True):
            tokens = tokenize(text)
            found = set(tokens)
            pairs = set(zip(tokens, tokens[1:], strict=False))
            phrase = len(q_pairs & pairs) / len(q_pairs) if q_pairs else 0.0
            overlap = weighted_share(weights, found)
            c = Candidate(
                i,
                start,
                end,
                text,
                float(cos),
                overlap,
                kind_match(kind, text, question),
                1 / (1 + i),
                phrase,
            )
            out.append(replace(c, score=self.weights.score(c)))
        return out

    def answer(
        self, question: str, hits: Sequence[Hit], question_vector: np.ndarray | None = None
    ) -> Answer:
        cands = sorted(self.candidates(question, hits, question_vector), key=lambda c: -c.score)
        if not cands or not self.answerable(cands):
            return abstain(question, hits)
        if self.coverage(question, hits) < self.settings.min_coverage:
            return abstain(
                question, hits, ("the question's key terms are missing from the articles",)
            )
        chosen = [cands[0]]
        chosen_shingles = [shingles(cands[0].text)]
        for c in cands[1:]:
            if len(chosen) >= self.settings.max_quotes or c.score < cands[0].score - 0.15:
                break
            sh = shingles(c.text)
            if any(containment(sh, o) >= 0.5 for o in chosen_shingles):
                continue  # says the same thing as a quote already chosen
            chosen.append(c)
            chosen_shingles.append(sh)
        if question_kind(question) == "name":
            chosen = name_the_person(question, hits, chosen)
        return compose(question, hits, chosen)

    def answerable(self, ranked: Sequence[Candidate]) -> bool:
        """Whether the best sentence is relevant enough to answer from (else: abstain)."""
        return ranked[0].score >= self.settings.abstain_threshold

    def coverage(self, question: str, hits: Sequence[Hit]) -> float:
        """The idf-weighted share of the question's key terms found anywhere in the passages.

        A question whose rare terms appear nowhere in what was retrieved ("the Canadian prime
        minister") is about something the articles don't cover, however close the topic.
        """
        weights = term_weights(question, self.idf)
        if not sum(weights.values()):
            return 1.0
        found: set[str] = set()
        for h in hits:
            found |= set(tokenize(h.article.title)) | set(tokenize(h.chunk.text))
        return weighted_share(weights, found)


_PERSON = re.compile(r"\b[A-Z][a-zà-ÿ'’-]+\.?(?:\s+[A-Z][a-zà-ÿ'’-]+\.?)*\s+[A-Z][a-zà-ÿ'’-]+\b")
_CAPITAL = re.compile(r"(?<=\s)[A-Z][a-zà-ÿ'’-]{2,}\b")


def _paragraph(text: str, pos: int) -> tuple[int, int]:
    start = text.rfind("\n\n", 0, pos)
    end = text.find("\n\n", pos)
    return (0 if start < 0 else start + 2, len(text) if end < 0 else end)


def _sentence_at(text: str, pos: int) -> tuple[int, int] | None:
    p0, p1 = _paragraph(text, pos)
    for a, b in split_sentences(text[p0:p1]):
        if p0 + a <= pos < p0 + b:
            return p0 + a, p0 + b
    return None


def name_the_person(question: str, hits: Sequence[Hit], chosen: list[Candidate]) -> list[Candidate]:
    """For "who" questions, make the quotes name the person.

    News style names a person in full once and by surname or a description later, so the best
    sentence may say "The 69-year-old general leads..." or "Trevino said...". Then the sentence
    before it (when it names someone) joins the quote, and the article's first full mention of the
    surname is quoted too.
    """
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    top = chosen[0]
    article = hits[top.hit_index].article.text
    if not any(m.group(0).split()[-1].lower() not in asked for m in _PERSON.finditer(top.text)):
        chunk = hits[top.hit_index].chunk
        before = [
            (chunk.start + a, chunk.start + b)
            for a, b in split_sentences(chunk.text)
            if chunk.start + b <= top.start
        ]
        if before and "\n\n" not in article[before[-1][1] : top.start]:
            a, _ = before[-1]
            if any(w.lower() not in asked for w in _CAPITAL.findall(" " + article[a : top.start])):
                top = replace(top, start=a, text=article[a : top.end])
                chosen = [top, *chosen[1:]]
    quoted = " ".join(c.text for c in chosen)
    for c in list(chosen):
        text = hits[c.hit_index].article.text
        for surname in dict.fromkeys(_CAPITAL.findall(" " + c.text)):
            if surname.lower() in asked:
                continue
            m = re.search(rf"\b(?:[A-Z][a-zà-ÿ'’-]+\.?\s+)+{re.escape(surname)}\b", text)
            if m is None or m.group(0) in quoted or m.group(0).split()[0].lower() in asked:
                continue
            span = _sentence_at(text, m.start())
            if span is None or any(o.start <= span[0] < o.end for o in chosen):
                continue
            extra = replace(
                c,
                start=span[0],
                end=span[1],
                text=text[span[0] : span[1]],
                passage=_paragraph(text, span[0]),
            )
            return [*chosen, extra]
    return chosen


def compose(question: str, hits: Sequence[Hit], chosen: Sequence[Candidate]) -> Answer:
    """Number the quotes: the best one first, the others by passage rank and position, so quotes
    from one passage read in order; quotes from outside the retrieved passages come last."""
    first_rank: dict[int, int] = {}
    for rank, c in enumerate(chosen):
        first_rank.setdefault(c.hit_index, rank)
    rest = sorted(
        chosen[1:], key=lambda c: (c.passage is not None, first_rank[c.hit_index], c.start)
    )
    ordered = [chosen[0], *rest]
    citations: list[Citation] = []
    sentences: list[AnswerSentence] = []
    for n, c in enumerate(ordered, start=1):
        hit = hits[c.hit_index]
        assert hit.article.text[c.start : c.end] == c.text, "quote must be verbatim at its offsets"
        p0, p1 = c.passage or (hit.chunk.start, hit.chunk.end)
        if not p0 <= c.start < c.end <= p1:  # a quote widened past its passage: widen the passage
            p0, p1 = min(p0, c.start), max(p1, c.end)
        citations.append(
            Citation(
                n=n,
                source=hit.article.source,
                title=hit.article.title,
                passage=hit.article.text[p0:p1],
                passage_start=p0,
                quote=c.text,
                start=c.start,
                end=c.end,
                score=round(hit.score, 4),
                article_id=hit.article.id,
                chunk_id=hit.chunk.id,
                date=hit.article.date,
                url=hit.article.url,
                also_in=hit.also_in,
                page=hit.article.page_at(c.start),
            )
        )
        sentences.append(AnswerSentence(text=c.text, citations=(n,)))
    text = " ".join(f"{s.text} [{s.citations[0]}]" for s in sentences)
    return Answer(
        question=question,
        text=text,
        citations=tuple(citations),
        abstained=False,
        closest=tuple(hits),
        sentences=tuple(sentences),
    )
