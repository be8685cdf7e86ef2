"""The offline default answerer: quotes the sentences of the retrieved passages that best answer the question.

Each sentence is scored on its similarity to the question, the question's key terms it holds, and
whether it holds the kind of thing asked for (a person for "who", a date for "when" ...) that the
question does not already name. The best one is quoted together with the sentence it refers back
to, the short answer is the entity inside it that answers, and the confidence is a calibrated
probability that the quote answers (below ``min_confidence`` the answerer abstains).

Every quote is a verbatim slice of its article at the offsets given in its citation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.answer.abstention import KEY_TERMS_MISSING, abstain
from rag.answer.confidence import confidence as calibrated
from rag.answer.context import (
    ArticleSentences,
    article_sentences,
    full_name_mention,
    is_question,
    paragraph_at,
    refers_back,
)
from rag.answer.disagreement import quote_counterparts, state_conflicts
from rag.answer.entities import find_entities
from rag.answer.kinds import answer_kind, asked_head, asks_what_called
from rag.answer.short import EntityFinder, counted_terms, kind_match, new_entities, short_answer
from rag.embedder import Embedder
from rag.settings import Settings
from rag.text.shingles import containment, shingles
from rag.text.terms import Idf, term_weights, weighted_share
from rag.text.tokens import tokenize
from rag.types import Answer, AnswerSentence, Citation, Hit

__all__ = ["Candidate", "ExtractiveAnswerer", "Weights", "compose"]


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage and the features that score it against the question."""

    hit_index: int
    start: int  # offsets in the article
    end: int
    text: str
    cosine: float  # embedding similarity to the question
    overlap: float  # share of the question's key terms (idf-weighted) found in the sentence
    kind: float  # 1 when it holds the kind of thing asked for that the question doesn't name
    prior: float  # 1 / (1 + rank of its passage)
    phrase: float = 0.0  # share of the question's consecutive key-term pairs found as pairs
    context: float = 0.0  # key-term share the sentence before adds (question words nearby)
    refers: float = 0.0  # 1 when it opens with a reference back ("He", "The company")
    question: float = 0.0  # 1 when the sentence is itself a question
    score: float = 0.0
    passage: tuple[int, int] | None = None  # article span to show as its passage (default: hit's)
    focus: tuple[int, int] | None = None  # the sentence that scored, inside a widened quote


@dataclass(frozen=True)
class Weights:
    """How the features combine; fitted with bench/tune_answers.py on SQuAD v1.1 questions about
    articles that SQuAD v2.0 does not have (docs/answers.md)."""

    lexical: float = 1.01
    kind: float = 0.37
    rank: float = 0.16
    phrase: float = 0.25
    context: float = 0.48
    refers: float = 0.05
    question: float = -2.0  # a sentence that is a question is never the answer

    def vector(self) -> np.ndarray:
        return np.array(
            [
                1.0,
                self.lexical,
                self.kind,
                self.rank,
                self.phrase,
                self.context,
                self.refers,
                self.question,
            ]
        )

    def score(self, c: Candidate) -> float:
        return float(features(c) @ self.vector())


def features(c: Candidate) -> np.ndarray:
    """The candidate's features in the order of :meth:`Weights.vector`."""
    return np.array(
        [c.cosine, c.overlap, c.kind, c.prior, c.phrase, c.context, c.refers, c.question]
    )


# A verb of a place question that says only "where" and shares its stem with a noun ("based",
# "bases"): a sentence about bases is no closer to where someone is based.
_WHERE_VERBS = frozenset(tokenize("based"))


def _pairs(tokens: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(tokens, tokens[1:], strict=False))


class ExtractiveAnswerer:
    """Scores each sentence of the retrieved passages against the question and quotes the best."""

    def __init__(
        self,
        embedder: Embedder,
        settings: Settings,
        idf: Idf | None = None,
        weights: Weights | None = None,
        entities: EntityFinder = find_entities,
    ) -> None:
        self.embedder = embedder
        self.settings = settings
        self.idf = idf
        self.weights = weights or Weights()
        self.entities = entities

    def candidates(
        self, question: str, hits: Sequence[Hit], question_vector: np.ndarray | None = None
    ) -> list[Candidate]:
        """Every sentence of the passages worth quoting, with its features and score."""
        articles: dict[str, ArticleSentences] = {}
        spans: list[tuple[int, int, int]] = []
        for i, hit in enumerate(hits):
            doc = articles.setdefault(hit.article.id, article_sentences(hit.article.text))
            for s, e in doc.within(hit.chunk.start, hit.chunk.end):
                text = doc.text[s:e]
                if len(text) >= 12 and re.search(r"[A-Za-z]{3}", text):
                    spans.append((i, s, e))
        if not spans:
            return []
        qvec = (
            question_vector if question_vector is not None else self.embedder.embed([question])[0]
        )
        texts = [hits[i].article.text[s:e] for i, s, e in spans]
        cosines = self.embedder.embed(texts) @ np.asarray(qvec, dtype=np.float32)
        weights = term_weights(question, self.idf)
        kind = answer_kind(question)
        if kind == "place":
            for verb in _WHERE_VERBS:  # "Where is he based?" asks where he is, not about bases
                weights.pop(verb, None)
        q_tokens = tokenize(question)
        q_terms = set(q_tokens)
        entity_terms = q_terms - head_terms(question)
        q_pairs = _pairs(q_tokens)
        out = []
        for (i, start, end), text, cos in zip(spans, texts, cosines, strict=True):
            doc = articles[hits[i].article.id]
            tokens = tokenize(text)
            found = set(tokens)
            overlap = weighted_share(weights, found)
            before = doc.neighbour(start, end, -1)
            context = 0.0
            if before is not None:
                near = found | set(tokenize(doc.text[before[0] : before[1]]))
                context = weighted_share(weights, near) - overlap
            match = (
                kind_match(kind, new_entities(text, entity_terms, self.entities))
                if kind != "other"
                else 0.0
            )
            c = Candidate(
                hit_index=i,
                start=start,
                end=end,
                text=text,
                cosine=float(cos),
                overlap=overlap,
                kind=match,
                prior=1 / (1 + i),
                phrase=len(q_pairs & _pairs(tokens)) / len(q_pairs) if q_pairs else 0.0,
                context=context,
                refers=1.0 if refers_back(text) else 0.0,
                question=1.0 if is_question(text) else 0.0,
            )
            out.append(replace(c, score=self.weights.score(c)))
        return out

    def answer(
        self, question: str, hits: Sequence[Hit], question_vector: np.ndarray | None = None
    ) -> Answer:
        cands = sorted(self.candidates(question, hits, question_vector), key=lambda c: -c.score)
        if not cands:
            return abstain(question, hits)
        cands = [c for c in cands if not c.question]
        if not cands:  # a question is never quoted as the answer to a question
            return abstain(question, hits, ("the passages only ask questions",))
        coverage = self.coverage(question, hits)
        chosen = self.choose(question, hits, cands)
        kind = answer_kind(question)
        quoted = quote_counterparts(question, kind, hits, chosen, cands, self.entities, self.widen)
        if quoted is None:
            answer = compose(question, hits, chosen)
        else:  # the sources disagree: quote each side, say so
            hits, chosen = quoted.hits, quoted.quotes
            answer = state_conflicts(compose(question, hits, chosen, ordered=True), quoted)
        span = self.short_span(question, hits, chosen[0], kind)
        conf = calibrated(cands, coverage, kind, span is not None)
        notes: tuple[str, ...] = ()
        if coverage < self.settings.min_coverage:
            notes = (KEY_TERMS_MISSING,)
        elif conf < self.settings.min_confidence:
            notes = (f"confidence {conf:.2f} is below {self.settings.min_confidence:.2f}",)
        if notes:
            return replace(abstain(question, hits, notes), confidence=conf)
        first = answer.citations[0]
        short, s0, s1 = "", None, None
        if span is not None:
            s0, s1 = span
            short = hits[chosen[0].hit_index].article.text[s0:s1]
            assert first.start <= s0 < s1 <= first.end, "the short answer lies inside the quote"
        return replace(
            answer, short_answer=short, short_answer_start=s0, short_answer_end=s1, confidence=conf
        )

    def choose(
        self, question: str, hits: Sequence[Hit], cands: Sequence[Candidate]
    ) -> list[Candidate]:
        """The quotes: the best sentence (with the sentence it refers back to, and the next one
        when that one also answers), then up to ``max_quotes`` others that score close to it."""
        top = self.widen(hits, cands[0], cands)
        chosen = [top]
        chosen_shingles = [shingles(top.text)]
        for c in cands[1:]:
            if len(chosen) >= self.settings.max_quotes or c.score < cands[0].score - 0.15:
                break
            if any(o.hit_index == c.hit_index and o.start <= c.start < o.end for o in chosen):
                continue  # already inside a widened quote
            sh = shingles(c.text)
            if any(containment(sh, o) >= 0.5 for o in chosen_shingles):
                continue  # says the same thing as a quote already chosen
            chosen.append(c)
            chosen_shingles.append(sh)
        if answer_kind(question) == "person":
            extra = self.full_name(question, hits, chosen)
            if extra is not None:
                chosen.append(extra)
        return chosen

    def widen(self, hits: Sequence[Hit], top: Candidate, cands: Sequence[Candidate]) -> Candidate:
        """The top sentence as one contiguous quote with the sentence(s) it refers back to, and
        with the sentence after it when that one scores almost as well (they answer together)."""
        article = hits[top.hit_index].article
        doc = article_sentences(article.text)
        start = doc.widen(top.start, top.end)
        end = top.end
        after = doc.neighbour(top.start, top.end, +1)
        if after is not None:
            nxt = next(
                (c for c in cands[1:4] if c.hit_index == top.hit_index and c.start == after[0]),
                None,
            )
            if nxt is not None and nxt.score >= top.score - 0.1 and nxt.refers:
                end = nxt.end
        if (start, end) == (top.start, top.end):
            return replace(top, focus=(top.start, top.end))
        chunk = hits[top.hit_index].chunk
        passage = None
        if start < chunk.start or end > chunk.end:
            passage = (min(start, chunk.start), max(end, chunk.end))
        return replace(
            top,
            start=start,
            end=end,
            text=article.text[start:end],
            passage=passage,
            focus=(top.start, top.end),
        )

    def full_name(
        self, question: str, hits: Sequence[Hit], chosen: Sequence[Candidate]
    ) -> Candidate | None:
        """For a "who" question whose quote calls the person by surname only, the sentence that
        names them in full (quoted last, with its own paragraph as passage)."""
        asked = {w.lower() for w in re.findall(r"\w+", question)}
        quoted = " ".join(c.text for c in chosen)
        for c in chosen:
            text = hits[c.hit_index].article.text
            span = full_name_mention(text, c.text, asked)
            if span is None or text[span[0] : span[1]] in quoted:
                continue
            if any(o.hit_index == c.hit_index and o.start <= span[0] < o.end for o in chosen):
                continue
            return replace(
                c,
                start=span[0],
                end=span[1],
                text=text[span[0] : span[1]],
                passage=paragraph_at(text, span[0]),
                focus=None,
            )
        return None

    def short_span(
        self, question: str, hits: Sequence[Hit], top: Candidate, kind: str
    ) -> tuple[int, int] | None:
        """Article offsets of the short answer inside the first quote, or None."""
        focus = top.focus or (top.start, top.end)
        span = short_answer(
            kind,
            top.text,
            (focus[0] - top.start, focus[1] - top.start),
            set(tokenize(question)),
            self.entities,
            year_only=bool(re.search(r"\b(?:what|which) year\b", question, re.IGNORECASE)),
            counted_terms=counted_terms(question),
            head_terms=head_terms(question),
            called=asks_what_called(question),
        )
        return None if span is None else (top.start + span[0], top.start + span[1])

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


def compose(
    question: str, hits: Sequence[Hit], chosen: Sequence[Candidate], ordered: bool = False
) -> Answer:
    """Number the quotes: the best one first, the others by passage rank and position, so quotes
    from one passage read in order; quotes from outside the retrieved passages come last
    (``ordered``: number them as given).

    A citation's passage always holds its quote: the hit's passage, or for a quote that reaches
    outside it the article span it comes from (then ``chunk_id`` names that span, not the hit's
    chunk, so quotes from different places are never shown as one passage).
    """
    first_rank: dict[int, int] = {}
    for rank, c in enumerate(chosen):
        first_rank.setdefault(c.hit_index, rank)
    rest = sorted(
        chosen[1:], key=lambda c: (c.passage is not None, first_rank[c.hit_index], c.start)
    )
    in_order = list(chosen) if ordered else [chosen[0], *rest]
    citations: list[Citation] = []
    sentences: list[AnswerSentence] = []
    for n, c in enumerate(in_order, start=1):
        hit = hits[c.hit_index]
        assert hit.article.text[c.start : c.end] == c.text, "quote must be verbatim at its offsets"
        p0, p1 = c.passage or (hit.chunk.start, hit.chunk.end)
        if not p0 <= c.start < c.end <= p1:  # a quote widened past its passage: widen the passage
            p0, p1 = min(p0, c.start), max(p1, c.end)
        own = (p0, p1) == (hit.chunk.start, hit.chunk.end)
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
                chunk_id=hit.chunk.id if own else f"{hit.article.id}:{p0}-{p1}",
                date=hit.article.date,
                url=hit.article.url,
                also_in=hit.also_in,
                page=hit.article.page_at(c.start),
                versions=hit.versions,
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


def head_terms(question: str) -> frozenset[str]:
    """The terms of the noun a "what/which" question names its answer by ("What prize ...")."""
    head = asked_head(question)
    return frozenset(tokenize(head)) if head else frozenset()
