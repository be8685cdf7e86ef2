"""Per-question evaluation metrics: hit@k, reciprocal rank, nDCG, quote hits and abstention.

Matching rules (the same for every system compared):

- a passage's ``source`` matches a gold source when its file name equals it, or its path ends
  with ``/<gold>`` (gold sources are paths relative to the articles folder);
- a text *contains* an answer when the SQuAD-normalised answer occurs in the normalised text
  on word boundaries (so "1" is not found in "1945");
- a retrieval *hit* is a passage from a gold source that contains a gold answer (source alone
  when the question has no answers and is not impossible).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rag.eval.questions import EvalQuestion

__all__ = [
    "KS",
    "AnswerLike",
    "Passage",
    "QuoteLike",
    "contains_answer",
    "exact_match",
    "ndcg_at",
    "normalize_answer",
    "score_answer",
    "score_retrieval",
    "source_matches",
    "token_f1",
]

KS: tuple[int, ...] = (1, 3, 5, 10)

_ASCII_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# ---------------------------------------------------------------------------- normalisation


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and the articles a/an/the, fold spaces.

    ASCII punctuation is deleted as in the official SQuAD script ("1,000" -> "1000"). Other
    Unicode punctuation (em dashes, curly quotes) becomes a space instead, so "Broncos—the" keeps
    its two words apart; the official script leaves such characters inside the word.
    """
    out: list[str] = []
    for ch in s.lower():
        if ch in _ASCII_PUNCT:
            continue
        if unicodedata.category(ch).startswith("P"):
            out.append(" ")
        else:
            out.append(ch)
    text = _ARTICLES.sub(" ", "".join(out))
    return " ".join(text.split())


def _contains_normalized(norm_text: str, norm_answers: Sequence[str]) -> bool:
    padded = f" {norm_text} "
    return any(a and f" {a} " in padded for a in norm_answers)


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether normalised ``text`` contains any normalised answer as a run of whole words."""
    return _contains_normalized(normalize_answer(text), [normalize_answer(a) for a in answers])


def exact_match(prediction: str, answers: Sequence[str]) -> bool:
    """SQuAD exact match: the normalised prediction equals some normalised gold answer."""
    pred = normalize_answer(prediction)
    return bool(pred) and any(pred == normalize_answer(a) for a in answers)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD F1: the best word-overlap F1 of the normalised prediction with a gold answer."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for a in answers:
        gold = normalize_answer(a).split()
        common = Counter(pred) & Counter(gold)
        same = sum(common.values())
        if same:
            precision, recall = same / len(pred), same / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def source_matches(source: str, gold: str) -> bool:
    """Whether a retrieved ``source`` path is the gold source (by file name or path ending)."""
    src = source.replace("\\", "/")
    g = gold.replace("\\", "/").removeprefix("./")
    if not g:
        return False
    return src == g or src.endswith("/" + g) or src.rsplit("/", 1)[-1] == g


def _matches_any(source: str, golds: Sequence[str]) -> bool:
    return any(source_matches(source, g) for g in golds)


# ---------------------------------------------------------------------------- what systems return


@dataclass(frozen=True)
class Passage:
    """One retrieved passage: where it came from and its text."""

    source: str
    text: str


class QuoteLike(Protocol):
    @property
    def quote(self) -> str: ...


class AnswerLike(Protocol):
    """What an answerer returns: ``rag.types.Answer`` fits, and so does any small stand-in."""

    @property
    def abstained(self) -> bool: ...

    @property
    def citations(self) -> Sequence[QuoteLike]: ...


def _answer_text(ans: AnswerLike, quotes: Sequence[str]) -> str:
    text = getattr(ans, "text", None)
    return text if isinstance(text, str) else " ".join(quotes)


# ---------------------------------------------------------------------------- per-question metrics


def ndcg_at(sources: Sequence[str], gold_sources: Sequence[str], k: int = 10) -> float:
    """Document-level nDCG@k: distinct sources in first-seen order, relevance 1 per gold source.

    Each gold source earns credit once, so two paths that both match one gold name do not
    count twice. The ideal ranking puts every gold source first.
    """
    golds = [g for g in dict.fromkeys(gold_sources) if g]
    if not golds:
        return 0.0
    distinct = list(dict.fromkeys(sources))[:k]
    found: set[str] = set()
    dcg = 0.0
    for rank, src in enumerate(distinct, start=1):
        for g in golds:
            if g not in found and source_matches(src, g):
                found.add(g)
                dcg += 1.0 / math.log2(rank + 1)
                break
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(golds), k) + 1))
    return dcg / ideal


def score_retrieval(q: EvalQuestion, passages: Sequence[Passage], k: int = 10) -> dict[str, Any]:
    """hit@k for ``KS`` up to ``k``, reciprocal rank and nDCG of one ranked list."""
    ranked = list(passages)[:k]
    norm_answers = [a for a in (normalize_answer(x) for x in q.answers) if a]
    first: int | None = None
    for rank, p in enumerate(ranked, start=1):
        if not _matches_any(p.source, q.gold_sources):
            continue
        if not q.answers or _contains_normalized(normalize_answer(p.text), norm_answers):
            first = rank
            break
    return {
        "first_hit_rank": first,
        "reciprocal_rank": 1.0 / first if first else 0.0,
        "ndcg": ndcg_at([p.source for p in ranked], q.gold_sources, k),
        "hits": {kk: first is not None and first <= kk for kk in KS if kk <= k},
    }


def _cites(quote: str, value: str) -> bool:
    if contains_answer(quote, [value]):
        return True
    # As written, where the SQuAD rule misses it: "Mark Twain" in "Mark Twain's works" (the rule
    # folds "Twain's" into "twains"), "20,860" in "€20,860"; never "17" inside "1917".
    pattern = rf"(?<![\w]){re.escape(value.strip())}(?![^\W_]|[.,]?\d)"
    return bool(value.strip()) and re.search(pattern, quote, re.IGNORECASE) is not None


def score_answer(q: EvalQuestion, ans: AnswerLike) -> dict[str, Any]:
    """Abstention; whether the answer text, its first and any cited quote contain a gold answer;
    the short answer's SQuAD exact match and F1 (None when it is empty); the stated confidence;
    whether it reports that the sources disagree, and for a question whose versions disagree
    (``q.conflict``) whether its quotes cite every value.

    ``short_answer``, ``confidence`` and ``conflicts`` are read when the answer has them
    (``rag.types.Answer`` does); an abstention has no short answer and reports no conflict.
    """
    quotes = [] if ans.abstained else [c.quote for c in ans.citations]
    short = "" if ans.abstained else str(getattr(ans, "short_answer", "") or "")
    confidence = getattr(ans, "confidence", None)
    out: dict[str, Any] = {
        "abstained": bool(ans.abstained),
        "quote": quotes[0] if quotes else None,
        "short_answer": short,
        "confidence": None if confidence is None else float(confidence),
    }
    if not q.impossible and q.answers:
        out["quote_hit"] = bool(quotes) and contains_answer(quotes[0], q.answers)
        out["any_quote_hit"] = any(contains_answer(t, q.answers) for t in quotes)
        out["answer_hit"] = not ans.abstained and contains_answer(
            _answer_text(ans, quotes), q.answers
        )
        if short:
            out["short_em"] = exact_match(short, q.answers)
            out["short_f1"] = token_f1(short, q.answers)
    if not ans.abstained:
        out["conflict_reported"] = bool(getattr(ans, "conflicts", ()))
    if q.conflict:
        cited = not ans.abstained and all(any(_cites(t, v) for t in quotes) for v in q.conflict)
        out["conflict_values_cited"] = cited
        out["conflict_surfaced"] = cited and bool(out.get("conflict_reported"))
    return out
