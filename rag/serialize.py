"""The JSON shapes of hits and answers: one definition for ``--json``, the HTTP API and exports.

``article_text[start:end] == quote`` holds for every citation, and ``passage`` is
``article_text[passage_start:passage_start + len(passage)]`` and holds the quote; offsets are
characters of the cleaned article text. ``short_answer`` is ``article_text[short_answer_start:
short_answer_end]`` of the first citation's article and lies inside its quote ("" and nulls when
no single span answers); ``confidence`` is the calibrated probability (0-1) that the answer is
right (null when the answerer gives none).

``conflicts`` lists the cited passages that give different values for what was asked: each with
the value's kind, the two values (verbatim, at ``spans`` in each citation's article), their
citation numbers, sources and dates, the newer first when both are dated. ``versions`` on a hit
or citation lists the other versions of its article (its near-duplicate group): ``differs`` says
whether one gives a fact differently, and ``changes`` which (``here`` in this article at
``here_start:here_end``, ``there`` in the other version).
"""

from __future__ import annotations

from typing import Any

from rag.types import Answer, Article, Conflict, Hit, OtherVersion

__all__ = ["answer_json", "article_json", "conflict_json", "hit_json", "versions_json"]


def versions_json(versions: tuple[OtherVersion, ...]) -> list[dict[str, Any]]:
    return [
        {
            "source": v.source,
            "title": v.article.title,
            "date": v.article.date,
            "differs": bool(v.changes),
            "changes": [
                {
                    "kind": c.kind,
                    "here": c.here,
                    "there": c.there,
                    "here_start": c.here_start,
                    "here_end": c.here_end,
                    "there_start": c.there_start,
                    "there_end": c.there_end,
                }
                for c in v.changes
            ],
        }
        for v in versions
    ]


def conflict_json(c: Conflict) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "values": list(c.values),
        "citations": list(c.citations),
        "sources": list(c.sources),
        "dates": list(c.dates),
        "spans": [list(s) for s in c.spans],
    }


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
        "versions": versions_json(h.versions),
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
                "versions": versions_json(c.versions),
            }
            for c in a.citations
        ],
        "conflicts": [conflict_json(c) for c in a.conflicts],
        "sentences": [
            {"text": s.text, "citations": list(s.citations), "supported": s.supported}
            for s in a.sentences
        ],
        "closest": [hit_json(h) for h in a.closest] if a.abstained else [],
        "notes": list(a.notes),
    }


def article_json(a: Article, sources: list[str], duplicates: list[Article]) -> dict[str, Any]:
    """One article with its cleaned text (the text every offset points into) and its versions."""
    return {
        "id": a.id,
        "title": a.title,
        "source": a.source,
        "sources": list(sources),
        "date": a.date,
        "author": a.author,
        "url": a.url,
        "site": a.site,
        "chars": len(a.text),
        "text": a.text,
        "pages": [{"start": p.start, "end": p.end, "page": p.page} for p in a.pages],
        "group": a.group_id,
        "duplicates": [
            {"id": d.id, "title": d.title, "source": d.source, "date": d.date, "chars": len(d.text)}
            for d in duplicates
        ],
    }
