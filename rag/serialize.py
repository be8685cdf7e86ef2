"""The JSON shapes of hits and answers: one definition for ``--json``, the HTTP API and exports.

``article_text[start:end] == quote`` holds for every citation, and ``passage`` is
``article_text[passage_start:passage_start + len(passage)]`` and holds the quote; offsets are
characters of the cleaned article text. ``short_answer`` is ``article_text[short_answer_start:
short_answer_end]`` of the first citation's article and lies inside its quote ("" and nulls when
no single span answers); ``confidence`` is the calibrated probability (0-1) that the answer is
right (null when the answerer gives none).
"""

from __future__ import annotations

from typing import Any

from rag.types import Answer, Hit

__all__ = ["answer_json", "hit_json"]


def hit_json(h: Hit) -> dict[str, Any]:
    return {
        "source": h.article.source,
        "title": h.article.title,
        "text": h.chunk.text,
        "score": round(h.score, 4),
        "start": h.chunk.start,
        "end": h.chunk.end,
        "date": h.article.date,
        "page": h.article.page_at(h.chunk.start),
        "also_in": list(h.also_in),
    }


def answer_json(a: Answer) -> dict[str, Any]:
    return {
        "answer": a.text,
        "short_answer": a.short_answer,
        "short_answer_start": a.short_answer_start,
        "short_answer_end": a.short_answer_end,
        "confidence": None if a.confidence is None else round(a.confidence, 4),
        "abstained": a.abstained,
        "mode": a.mode,
        "standalone_question": a.standalone_question,
        "citations": [
            {
                "n": c.n,
                "source": c.source,
                "title": c.title,
                "quote": c.quote,
                "passage": c.passage,
                "passage_start": c.passage_start,
                "start": c.start,
                "end": c.end,
                "score": c.score,
                "date": c.date,
                "page": c.page,
                "also_in": list(c.also_in),
            }
            for c in a.citations
        ],
        "sentences": [
            {"text": s.text, "citations": list(s.citations), "supported": s.supported}
            for s in a.sentences
        ],
        "closest": [hit_json(h) for h in a.closest] if a.abstained else [],
        "notes": list(a.notes),
    }
