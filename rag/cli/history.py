"""Earlier turns of a conversation for ``rag ask --history FILE``.

The file holds JSON lines, one turn each, as ``rag chat --json`` and ``rag ask --json`` print
them: ``{"question", "answer"}`` plus, for a turn that was itself a follow-up, its
``standalone_question`` (used in its place, so a chain of follow-ups keeps its subject). A script
holds a conversation by appending each answer's line to the file before asking the next question.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.errors import InputError

__all__ = ["read_history"]


def read_history(path: Path) -> list[tuple[str, str]]:
    """The ``(question, answer)`` turns in ``path``, oldest first."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read history file {path}: {e}") from e
    turns: list[tuple[str, str]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            question = obj.get("standalone_question") or obj["question"]
            answer = obj["answer"]
            if not isinstance(question, str) or not isinstance(answer, str):
                raise TypeError("question and answer must be strings")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(
                f'{path}:{n}: expected a {{"question", "answer"}} JSON line, as rag chat --json '
                f"prints ({e})"
            ) from e
        turns.append((question, answer))
    return turns
