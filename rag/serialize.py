"""The JSON shapes of hits and answers: one definition for ``--json``, the HTTP API and exports.

``article_text[start:end] == quote`` holds for every citation; offsets are characters of the
cleaned article text.
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
