"""The page's conversations: the current one survives a reload, past ones can be reopened.

The current conversation's id rides in the page address (``?c=...``) and its turns are saved after
each answer in ``conversations/`` inside the index folder (:mod:`rag.conversations`), so a reload,
or the address opened again later, shows it as it was. Nothing leaves this machine. The sidebar
offers "New chat", the list of past conversations and an export as Markdown with the sources.
"""

from __future__ import annotations

import time
from dataclasses import replace

import streamlit as st

from rag.conversations import (
    Conversation,
    ConversationStore,
    Turn,
    conversation_dir,
    markdown,
)
from rag.system import System
from ui.render import label, md

QUERY_KEY = "c"
LISTED = 20  # past conversations shown in the sidebar


def conversation_store(system: System) -> ConversationStore:
    return ConversationStore(conversation_dir(system.settings.index_dir))


def current_conversation(system: System) -> Conversation:
    """The conversation on screen: this session's, else the one the address names, else new."""
    conv = st.session_state.get("conversation")
    if not isinstance(conv, Conversation):
        wanted = st.query_params.get(QUERY_KEY)
        conv = conversation_store(system).load(wanted) if wanted else None
        if conv is None:
            conv = Conversation.new()
        st.session_state["conversation"] = conv
    return conv


def keep_turn(system: System, conv: Conversation, turn: Turn) -> None:
    """Add ``turn`` to the conversation and save it; the address then names the conversation."""
    conv = replace(conv, turns=(*conv.turns, turn), updated=time.time())
    st.session_state["conversation"] = conv
    try:
        conversation_store(system).save(conv)
    except OSError as e:
        st.caption(
            f"This conversation could not be saved, so a reload will lose it ({md(str(e))})."
        )
        return
    st.query_params[QUERY_KEY] = conv.id


def _open(conv: Conversation) -> None:
    st.session_state["conversation"] = conv
    if conv.turns:
        st.query_params[QUERY_KEY] = conv.id
    elif QUERY_KEY in st.query_params:
        del st.query_params[QUERY_KEY]
    st.rerun()


def conversations_sidebar(system: System, conv: Conversation) -> None:
    """New chat, export, and the past conversations (newest first) in the sidebar."""
    bar = st.sidebar
    left, right = bar.columns(2)
    if left.button("New chat", key="new_chat", disabled=not conv.turns, width="stretch"):
        _open(Conversation.new())
    right.download_button(
        "Export (.md)",
        data=markdown(conv) if conv.turns else "",
        file_name=f"conversation-{conv.id}.md",
        mime="text/markdown",
        key="export_chat",
        disabled=not conv.turns,
        help="This conversation as Markdown, with its sources",
        width="stretch",
    )
    try:
        past = [c for c in conversation_store(system).list() if c.id != conv.id]
    except OSError:
        past = []
    if not past:
        return
    with bar.expander(f"Past conversations ({len(past)})"):
        for c in past[:LISTED]:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
            turns = f"{len(c.turns)} question{'s' if len(c.turns) != 1 else ''}"
            if st.button(
                label(c.title) or "(untitled)",
                key=f"conv_{c.id}",
                help=f"{when} · {turns}",
                width="stretch",
            ):
                _open(c)
        if len(past) > LISTED:
            st.caption(f"and {len(past) - LISTED} older")
