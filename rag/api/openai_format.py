"""The OpenAI chat-completions protocol, in terms of the system's answers.

A chat's messages become a question and its history (earlier user turns with the replies that
followed them; system messages are ignored), so a follow-up is made standalone as everywhere else.
The reply's content is the short answer when there is one, the checked answer with its ``[n]``
markers and a short "Sources:" list; the structured citations and the short answer travel in the
message's extra fields ``citations`` and ``short_answer``, which OpenAI clients keep and others
ignore.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rag.errors import InputError, NotFound
from rag.settings import Settings
from rag.types import Answer

__all__ = [
    "MODEL",
    "chunk",
    "citations_json",
    "completion",
    "conversation",
    "mode_for",
    "model_ids",
    "reply_text",
]

MODEL = "rag-articles"
_TAIL = re.compile(r"\n\n(?:Sources|Closest passages):\n.*\Z", re.S)


def model_ids(settings: Settings) -> list[str]:
    """The models offered: the default answerer, and each answerer by name."""
    ids = [MODEL, f"{MODEL}-extractive"]
    if settings.llm:
        ids.append(f"{MODEL}-llm")
    return ids


def mode_for(model: str, settings: Settings) -> str | None:
    """The answer mode a model name asks for (None: the default)."""
    if model not in model_ids(settings):
        raise NotFound(f"no model {model!r}; this server offers {', '.join(model_ids(settings))}")
    return None if model == MODEL else model.rsplit("-", 1)[1]


def text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") in ("text", "input_text"):
            parts.append(str(part.get("text", "")))
    return "\n".join(parts)


def conversation(messages: Sequence[Any]) -> tuple[str, list[tuple[str, str]]]:
    """(the last user question, earlier (question, reply) turns) from OpenAI chat messages."""
    turns: list[tuple[str, str]] = []
    question: str | None = None
    for m in messages:
        role, text = m.role, text_of(m.content).strip()
        if role == "user":
            question = f"{question} {text}" if question is not None else text  # two in a row
        elif role == "assistant" and question is not None:
            turns.append((question, _TAIL.sub("", text)))  # our own sources list is no answer
            question = None
    if question is None or not question.strip():
        raise InputError("the last message must be the user's question")
    return question, turns[-10:]


def reply_text(answer: Answer, source: Callable[[str], str]) -> str:
    """The short answer when there is one ("Trevino — [1]"), the answer with its [n] markers,
    then the sources (or, abstaining, the articles of the closest passages, once each)."""
    short = answer.short_line()
    lines = [short + "\n", answer.text] if short else [answer.text]
    if answer.citations:
        lines.append("\nSources:")
        for c in answer.citations:
            where = ", ".join(
                x for x in (source(c.source), c.date, f"p. {c.page}" if c.page else None) if x
            )
            lines.append(f"[{c.n}] {c.title} ({where})")
    elif answer.abstained and answer.closest:
        lines.append("\nClosest passages:")
        for article in {h.article.id: h.article for h in answer.closest}.values():
            lines.append(f"- {article.title} ({source(article.source)})")
    return "\n".join(lines)


def citations_json(answer: Answer, source: Callable[[str], str]) -> list[dict[str, Any]]:
    return [
        {
            "n": c.n,
            "source": source(c.source),
            "title": c.title,
            "quote": c.quote,
            "start": c.start,
            "end": c.end,
            "url": c.url,
            "date": c.date,
            "page": c.page,
        }
        for c in answer.citations
    ]


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(question: str, reply: str) -> dict[str, int]:
    """Word counts standing in for tokens (no model tokenizer is involved in most answers)."""
    p, c = len(question.split()), len(reply.split())
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def completion(
    answer: Answer, model: str, question: str, source: Callable[[str], str]
) -> dict[str, Any]:
    text = reply_text(answer, source)
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "refusal": None,
                    "citations": citations_json(answer, source),
                    "short_answer": answer.short_answer,
                },
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage(question, text),
    }


def chunk(
    cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def pieces(text: str, words: int = 4) -> Iterator[str]:
    """The reply in small pieces (a few words with their spacing) for a streamed delivery."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    for i in range(0, len(tokens), words):
        yield "".join(tokens[i : i + words])
