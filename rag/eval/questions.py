"""Evaluation sets: questions with known answers and the sources that hold them.

Question files are JSON lines, one object per question::

    {"id": "q1", "question": "...", "answers": ["..."], "gold_sources": ["a.txt"],
     "impossible": false}

Questions about versions of a story may say what the sources give: ``"conflict": ["212",
"231"]`` when the versions disagree on the answer (the values each gives; a right answer cites
them all and says the sources disagree), or ``"consistent": true`` when several versions agree
(reporting a disagreement there is a false conflict).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EvalQuestion", "load_questions"]


@dataclass(frozen=True)
class EvalQuestion:
    """A question with its gold answers and the sources (file names) that hold them."""

    id: str
    question: str
    answers: tuple[str, ...]
    gold_sources: tuple[str, ...]
    impossible: bool = False
    conflict: tuple[str, ...] = ()  # the values versions give when they disagree on the answer
    consistent: bool = False  # versions of the story that agree on the answer


def _str_list(obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    if key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: field {key!r} must be a list of strings")
    return tuple(value)


def _parse_question(obj: Any, where: str) -> EvalQuestion:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in ("id", "question"):
        if key not in obj:
            raise ValueError(f"{where}: missing field {key!r}")
    qid, question = obj["id"], obj["question"]
    if not isinstance(qid, str | int) or isinstance(qid, bool) or str(qid) == "":
        raise ValueError(f"{where}: field 'id' must be a non-empty string")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: empty question")
    answers = _str_list(obj, "answers", where)
    gold_sources = _str_list(obj, "gold_sources", where)
    impossible = obj.get("impossible", False)
    if not isinstance(impossible, bool):
        raise ValueError(f"{where}: field 'impossible' must be true or false")
    if impossible and answers:
        raise ValueError(f"{where}: an impossible question cannot have answers")
    if not impossible and not gold_sources:
        # It would silently score zero on every retrieval metric.
        raise ValueError(f"{where}: answerable question without gold_sources")
    conflict = _str_list(obj, "conflict", where) if "conflict" in obj else ()
    if conflict and len(set(conflict)) < 2:
        raise ValueError(f"{where}: field 'conflict' must list at least two different values")
    consistent = obj.get("consistent", False)
    if not isinstance(consistent, bool):
        raise ValueError(f"{where}: field 'consistent' must be true or false")
    if consistent and conflict:
        raise ValueError(f"{where}: a question cannot be both 'consistent' and a 'conflict'")
    return EvalQuestion(str(qid), question, answers, gold_sources, impossible, conflict, consistent)


def load_questions(path: str | Path) -> list[EvalQuestion]:
    """Read a JSON-lines question file; ValueError names the line and the problem."""
    questions: list[EvalQuestion] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: bad JSON ({exc.msg})") from None
            q = _parse_question(obj, where)
            if q.id in seen:
                raise ValueError(f"{where}: duplicate id {q.id!r} (first on line {seen[q.id]})")
            seen[q.id] = lineno
            questions.append(q)
    return questions
