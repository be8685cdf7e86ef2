"""Chat mode: questions answered with numbered citations, each chip opening the passage it rests on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

import streamlit as st

from rag.conversations import Conversation, Turn
from rag.errors import IndexMissing, RagError
from rag.system import System
from rag.types import Answer, Filters
from ui.conversations import conversations_sidebar, current_conversation, keep_turn
from ui.errors import error_text, show_error
from ui.examples import show_examples
from ui.render import (
    answer_html,
    answer_with_sources,
    escape,
    hit_card_html,
    md,
    plural,
    source_cards_html,
)
from ui.sidebar import ANSWER_MODES, current_filters, filters_caption

HISTORY_TURNS = 4  # earlier turns passed on for condensing follow-ups


def article_texts(system: System, answer: Answer) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        reader = system.reader()
        for c in answer.citations:
            if c.article_id not in out:
                out[c.article_id] = reader.article(c.article_id).text
    except (KeyError, RagError):
        pass  # cards then simply lack the whole-article view
    return out


def render_answer(answer: Answer, key: str, system: System, filters: Filters | None = None) -> None:
    if answer.standalone_question:
        st.caption(f"Follow-up understood as: “{md(answer.standalone_question)}”")
    st.markdown(answer_html(answer, key), unsafe_allow_html=True)
    for note in answer.notes:
        st.caption(md(note))
    filters_caption(filters)  # the filters this answer was found under, not today's sidebar
    if answer.abstained:
        if answer.closest:  # folded: the refusal is the answer, these are only what came nearest
            n = len(answer.closest)
            with st.expander(f"Closest {plural(n, 'passage')} (none answers the question)"):
                cards = [
                    hit_card_html(h, i, answer.question, f"{key}-c")
                    for i, h in enumerate(answer.closest, 1)
                ]
                st.markdown("".join(cards), unsafe_allow_html=True)
        return
    if any(not s.supported for s in answer.sentences):
        st.warning(
            "Sentences marked ⚠ are not supported by the passages they cite: check the sources "
            "before relying on them."
        )
    cards = source_cards_html(answer, key, article_texts(system, answer))
    if cards:
        st.markdown(f'<div class="cards">{"".join(cards)}</div>', unsafe_allow_html=True)
        with st.expander("Copy answer with sources"):
            st.code(answer_with_sources(answer), language=None, wrap_lines=True)


def chat_history(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    # The standalone form of an earlier follow-up, so a chain keeps its subject.
    out = [
        (t.answer.standalone_question or t.question, t.answer.text)
        for t in turns
        if t.answer is not None
    ]
    return out[-HISTORY_TURNS:]


def chat_page(system: System, problem: BaseException | None) -> None:
    _chat(system, problem)
    # After the question of this run, so New chat and Export already have its answer.
    conversations_sidebar(system, current_conversation(system))


def _chat(system: System, problem: BaseException | None) -> None:
    st.header("Ask the articles")
    conv = keep_stopped(system, current_conversation(system))
    if problem is not None:
        show_error(problem)
    elif not conv.turns:
        st.caption(
            "Ask a question: the answer quotes the articles, and each numbered chip opens the "
            "passage it rests on."
        )
        if "asked" not in st.session_state:  # not while an example is being asked
            show_examples(system)
    for turn in conv.turns:
        with st.chat_message("user"):
            st.markdown(escape(turn.question), unsafe_allow_html=True)
        with st.chat_message("assistant"):
            if turn.answer is not None:
                render_answer(turn.answer, turn.key, system, turn.filters)
            else:
                st.error(turn.error or "No answer.")
    question = st.chat_input(
        "Ask a question about the indexed articles",
        key="question",
        disabled=isinstance(problem, IndexMissing),
    ) or st.session_state.pop("asked", None)  # an example question clicked
    if not question:
        return
    with st.chat_message("user"):
        st.markdown(escape(question), unsafe_allow_html=True)
    key = uuid.uuid4().hex[:8]
    filters = current_filters()
    with st.chat_message("assistant"):
        try:
            answer = ask(system, question, chat_history(conv.turns), filters, key)
        except Exception as e:  # noqa: BLE001 - the page explains every failure in a sentence
            show_error(e)
            keep_turn(system, conv, Turn(question, error=error_text(e), key=key))
            return
        render_answer(answer, key, system, filters)
    # Only a refusal shows its closest passages: the rest need not be kept.
    kept = answer if answer.abstained else replace(answer, closest=())
    keep_turn(system, conv, Turn(question, kept, filters=filters, key=key))


STOPPED = "You stopped this answer before it was finished."


def _stop(question: str, key: str) -> None:
    """The Stop button's callback: it runs first in the rerun the click starts, which is what
    ends the streaming run; the question is kept as a turn that was stopped."""
    st.session_state["stopped"] = (question, key)


def keep_stopped(system: System, conv: Conversation) -> Conversation:
    stopped = st.session_state.pop("stopped", None)
    if stopped is None or any(t.key == stopped[1] for t in conv.turns):
        return conv  # nothing stopped, or the answer finished before the click
    keep_turn(system, conv, Turn(stopped[0], error=STOPPED, key=stopped[1]))
    return current_conversation(system)


def ask(
    system: System,
    question: str,
    history: list[tuple[str, str]],
    filters: Filters | None,
    key: str = "",
) -> Answer:
    """Run the question, streaming the chat model's tokens (if any) into the page as they come;
    a Stop button stands by while a chat model streams."""
    mode = ANSWER_MODES.get(st.session_state.get("answer_mode", ""), "extractive")
    stop = st.empty()
    if mode == "llm":
        stop.button("■ Stop", key=f"stop_{key}", on_click=_stop, args=(question, key))
    stream = system.ask_stream(
        question,
        k=int(st.session_state.get("k", system.settings.k)),
        filters=filters,
        history=history,
        mode=mode,
    )
    live = st.empty()
    text = ""
    final: Answer | None = None
    with st.spinner("Finding the passages…" if mode == "extractive" else "Asking the chat model…"):
        for part in stream:
            if isinstance(part, Answer):
                final = part
            else:
                text += part
                live.markdown(f'<div class="answer">{escape(text)} ▌</div>', unsafe_allow_html=True)
    live.empty()
    stop.empty()
    if final is None:
        raise RagError("the answer was cut off before it finished")
    return final
