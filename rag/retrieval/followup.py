"""Turn a follow-up question ("and where is he based?") into one retrieval can use on its own."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rag.retrieval.references import has_reference, resolve_references

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

_WORD_RE = re.compile(r"[^\W_][\w'’-]*")

_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either else ever
    few for from further had has have having here how however i if in into is it its itself just
    let like many may me might more most much must my neither no nor not now of off on once only or
    other our ours out over own per please same shall she should so some such than that the their
    theirs them then there these they this those through to too under until up upon us very was we
    were what whatever when where whether which while who whom whose why will with within without
    would yet you your he him his her hers they them tell say said says know give show explain
    describe exactly really still again ok okay thanks""".split()  # noqa: SIM905 - reads as prose
)
_PRONOUNS = frozenset({"it", "they", "he", "she", "this", "that", "them", "its", "their"})
_PRONOUNS |= {"his", "her", "him", "those", "these"}
_OPENERS = ("and ", "and,", "what about", "how about", "also ", "but ", "so ", "then ")
_MAX_TERMS = 5

CONDENSE_PROMPT = (
    "Rewrite the user's last question as a standalone question that can be understood without the "
    "conversation: replace pronouns and vague references with the names and things they refer to. "
    "Reply with the question only, on one line. If it is already standalone, repeat it unchanged."
)


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def _has_named_entity(question: str) -> bool:
    """A capitalised word other than the first one (and other than "I")."""
    return any(w[0].isupper() and w != "I" for w in _words(question)[1:])


def looks_like_followup(question: str) -> bool:
    """Short, opens like a continuation, or leans on a pronoun without naming anything itself."""
    q = question.strip().lower()
    words = _words(question)
    if not words:
        return False
    if q.startswith(_OPENERS):
        return True
    if _has_named_entity(question):
        return False
    return len(words) <= 3 or any(w.lower() in _PRONOUNS for w in words) or has_reference(question)


def key_terms(text: str) -> list[str]:
    """Content words of ``text``: capitalised ones (names) first, then the rest, in order."""
    words = [w.strip("'’-") for w in _words(text)]
    content = [w for w in words if len(w) > 2 and w.lower() not in _STOPWORDS]
    seen: set[str] = set()
    names: list[str] = []
    others: list[str] = []
    for w in content:
        if w.lower() in seen:
            continue
        seen.add(w.lower())
        (names if w[0].isupper() or w[0].isdigit() else others).append(w)
    return names + others


def _heuristic(question: str, history: Sequence[tuple[str, str]]) -> str:
    if not looks_like_followup(question):
        return question
    previous, answer = history[-1]
    rewritten = resolve_references(question, previous, answer)
    if rewritten is not None:
        return rewritten
    have = {w.lower() for w in _words(question)}
    terms: list[str] = []
    # Nothing to resolve: append the earlier questions' key terms, walking back while those were
    # themselves follow-ups, so a chain keeps its subject.
    for previous, _answer in reversed(history):
        for term in key_terms(previous):
            if term.lower() not in have and term not in terms:
                terms.append(term)
        if not looks_like_followup(previous):
            break
    if not terms:
        return question
    return f"{question.rstrip()} ({' '.join(terms[:_MAX_TERMS])})"


def condense_question(
    question: str,
    history: Sequence[tuple[str, str]],
    chat_model: BaseChatModel | None = None,
) -> str:
    """A standalone version of ``question`` given earlier ``(question, answer)`` turns.

    With a chat model, the model rewrites it (falling back to the heuristic if the call fails or the
    reply is unusable). Without one, a follow-up's references ("he", "there", "the company", "And
    in 2010?") are resolved from what the previous question and answer named
    (:func:`rag.retrieval.references.resolve_references`); one with nothing to resolve gets the
    earlier questions' key terms appended. Anything else is returned unchanged. Pass the earlier
    turns' standalone questions, so that a chain of follow-ups keeps its subject.
    """
    if not history or not question.strip():
        return question
    if chat_model is not None:
        rewritten = _ask_model(question, history, chat_model)
        if rewritten:
            return rewritten
    return _heuristic(question, history)


def standalone_history(history: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Earlier turns as typed, each made standalone from the ones before it (offline rewriting).

    For doors whose clients send back only what was typed (an OpenAI chat client): without it a
    chain of follow-ups ("Who runs Northgate?", "When did she join?", "What is her title?") loses
    its subject after one turn.
    """
    out: list[tuple[str, str]] = []
    for question, answer in history:
        out.append((condense_question(question, out), answer))
    return out


def _ask_model(
    question: str, history: Sequence[tuple[str, str]], chat_model: BaseChatModel
) -> str | None:
    from langchain_core.messages import HumanMessage, SystemMessage

    turns = []
    for previous, answer in history[-3:]:
        turns.append(f"User: {' '.join(previous.split())}")
        turns.append(f"Assistant: {' '.join(answer.split())[:600]}")
    prompt = "Conversation:\n" + "\n".join(turns) + f"\n\nLast question: {question.strip()}"
    try:
        reply = chat_model.invoke(
            [SystemMessage(content=CONDENSE_PROMPT), HumanMessage(content=prompt)]
        )
    except Exception:  # a follow-up must still work when the model is down: use the heuristic
        return None
    content = reply.content if isinstance(reply.content, str) else ""
    lines = [ln.strip() for ln in content.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    text = re.sub(r"^(standalone question|question)\s*:\s*", "", lines[0], flags=re.I)
    text = text.strip().strip("\"'“”").strip()
    if not text or len(text) > 3 * len(question) + 300:
        return None
    return text
