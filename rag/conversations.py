"""Conversations kept on this machine: the page's chats, saved so that they survive a reload.

One JSON file per conversation in ``conversations/`` inside the index folder, written atomically
(temp file, fsync, rename), never sent anywhere. A file holds the turns with their whole answers
(citations, quotes, notes, the filters each was found under) and the page's settings, so a
conversation reopens as it was shown even after the index has changed. The values are the frozen
dataclasses of :mod:`rag.types` as JSON (no pickle): :func:`to_data` and :func:`from_data`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.types import Answer, Filters

__all__ = [
    "Conversation",
    "ConversationStore",
    "Turn",
    "conversation_dir",
    "from_data",
    "markdown",
    "to_data",
]

FOLDER = "conversations"
_ID = re.compile(r"[0-9a-f]{12}")
_TITLE_CHARS = 80


@dataclass(frozen=True)
class Turn:
    """A question and its answer (or the one-sentence error that stopped it)."""

    question: str
    answer: Answer | None = None
    error: str | None = None
    filters: Filters | None = None
    key: str = ""  # the page's anchor prefix for this answer's chips


@dataclass(frozen=True)
class Conversation:
    id: str
    created: float
    updated: float
    turns: tuple[Turn, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The first question, shortened: how the list of conversations names it."""
        first = " ".join(self.turns[0].question.split()) if self.turns else "New chat"
        return first if len(first) <= _TITLE_CHARS else first[: _TITLE_CHARS - 1] + "…"

    @staticmethod
    def new() -> Conversation:
        now = time.time()
        return Conversation(id=secrets.token_hex(6), created=now, updated=now)


def conversation_dir(index_dir: Path | str) -> Path:
    return Path(index_dir) / FOLDER


class ConversationStore:
    """The conversations in one folder: save, load, list (newest first) and delete."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, conversation_id: str) -> Path | None:
        return self.folder / f"{conversation_id}.json" if _ID.fullmatch(conversation_id) else None

    def save(self, conversation: Conversation) -> None:
        path = self._path(conversation.id)
        if path is None:
            raise ValueError(f"conversation id must be 12 hex digits, not {conversation.id!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(to_data(conversation), out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)

    def load(self, conversation_id: str) -> Conversation | None:
        """The conversation, or None when there is none by that id or its file is unreadable."""
        path = self._path(conversation_id)
        if path is None or not path.is_file():
            return None
        try:
            value = from_data(Conversation, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return value if isinstance(value, Conversation) else None

    def list(self) -> list[Conversation]:
        found = []
        if self.folder.is_dir():
            for path in self.folder.glob("*.json"):
                c = self.load(path.stem)
                if c is not None and c.turns:
                    found.append(c)
        return sorted(found, key=lambda c: c.updated, reverse=True)

    def delete(self, conversation_id: str) -> None:
        path = self._path(conversation_id)
        if path is not None:
            path.unlink(missing_ok=True)


# --- dataclasses as JSON ------------------------------------------------------------------------
def to_data(value: Any) -> Any:
    """A frozen dataclass (and what it holds) as JSON-ready dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    return value


def from_data(kind: Any, data: Any) -> Any:
    """The value of type ``kind`` that :func:`to_data` turned into ``data``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if data is None and type(None) in options:
            return None
        errors: list[Exception] = []
        for option in options:
            if option is type(None):
                continue
            try:
                return from_data(option, data)
            except (TypeError, ValueError, KeyError) as e:
                errors.append(e)
        raise TypeError(f"no type of {kind} fits: {errors}")
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(data, list):
            raise TypeError(f"expected a list for {kind}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_data(args[0], v) for v in data)
        return tuple(from_data(a, v) for a, v in zip(args, data, strict=True))
    if origin is dict or kind is dict:
        if not isinstance(data, dict):
            raise TypeError("expected an object")
        return dict(data)
    if kind is Any:
        return data
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {kind.__name__}")
        hints = typing.get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{k: from_data(hints[k], v) for k, v in data.items() if k in names})
    if kind is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if isinstance(kind, type) and isinstance(data, kind):
        return data
    raise TypeError(f"expected {kind}, got {type(data).__name__}")


# --- export -------------------------------------------------------------------------------------
def markdown(conversation: Conversation) -> str:
    """The conversation as Markdown: each question, its answer and a numbered list of sources
    (title, date, source, the verbatim quote)."""
    lines = [f"# {conversation.title}", ""]
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created))
    lines += [f"_Conversation of {stamp}, exported from rag-articles._", ""]
    for turn in conversation.turns:
        lines += [f"## {' '.join(turn.question.split())}", ""]
        a = turn.answer
        if a is None:
            lines += [f"_Error: {turn.error or 'no answer'}_", ""]
            continue
        if a.standalone_question:
            lines += [f"_Understood as: {a.standalone_question}_", ""]
        if turn.filters is not None and turn.filters.active():
            lines += [f"_Filtered: {turn.filters.describe()}_", ""]
        lines += [a.text.strip(), ""]
        lines += [f"> note: {n}" for n in a.notes]
        if a.notes:
            lines.append("")
        if a.citations:
            lines += ["Sources:", ""]
            for c in a.citations:
                where = c.url or c.source
                dated = f", {c.date}" if c.date else ""
                page = f", p. {c.page}" if c.page is not None else ""
                quote = " ".join(c.quote.split())
                lines.append(f"{c.n}. **{c.title}**{dated}. {where}{page}. “{quote}”")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
