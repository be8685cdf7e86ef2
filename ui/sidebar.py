"""The sidebar: mode, answer settings and filters, kept across reruns and read back by the modes."""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from rag.system import System
from rag.types import Filters
from ui.render import md

MODES = ("Chat", "Search", "Library")
ANSWER_MODES = {"Extractive (offline)": "extractive", "LLM": "llm"}
EARLIEST, LATEST = date(1800, 1, 1), date(2100, 12, 31)


# --- settings that survive reruns ---------------------------------------------------------------
# Streamlit forgets a widget's value when a run doesn't render it (e.g. the search box while in
# Library, or everything after an early st.stop), so each value is copied to a plain key that
# outlives the widget and restored before the widget is drawn again.
def restore(key: str, default: Any) -> None:
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(f"keep_{key}", default)


def remember(key: str) -> None:
    st.session_state[f"keep_{key}"] = st.session_state.get(key)


def sidebar(system: System, default_k: int) -> str:
    st.sidebar.title("Cited answers")
    restore("mode", MODES[0])
    mode = st.sidebar.radio("Mode", MODES, key="mode", horizontal=True)
    remember("mode")
    with st.sidebar.expander("Settings", expanded=False):
        llm_ready = bool(system.settings.llm)
        options = list(ANSWER_MODES) if llm_ready else [next(iter(ANSWER_MODES))]
        restore("answer_mode", options[-1] if llm_ready else options[0])
        if st.session_state["answer_mode"] not in options:
            st.session_state["answer_mode"] = options[0]
        st.radio("Answer mode", options, key="answer_mode")
        remember("answer_mode")
        if not llm_ready:
            st.caption("LLM answers: set RAG_LLM (e.g. `ollama:llama3.1`) and restart the page.")
        restore("k", default_k)
        st.slider("Passages per question (k)", 1, 20, key="k")
        remember("k")
    restore("f_source", "")
    restore("f_from", None)
    restore("f_to", None)
    active = bool(
        st.session_state["f_source"] or st.session_state["f_from"] or st.session_state["f_to"]
    )
    with st.sidebar.expander("Filters" + (" (on)" if active else ""), expanded=active):
        st.text_input(
            "Source contains",
            key="f_source",
            placeholder="e.g. harbor or *.pdf",
            help="A part of the file name or web address, or a glob pattern with * and ?.",
        )
        st.date_input(
            "Dated from", key="f_from", min_value=EARLIEST, max_value=LATEST, format="YYYY-MM-DD"
        )
        st.date_input(
            "Dated to", key="f_to", min_value=EARLIEST, max_value=LATEST, format="YYYY-MM-DD"
        )
        st.caption("Date filters leave out articles without a date.")
    for key in ("f_source", "f_from", "f_to"):
        remember(key)
    return str(mode)


def current_filters() -> Filters | None:
    def iso(v: Any) -> str | None:
        return v.isoformat() if isinstance(v, date) else None

    f = Filters(
        source=(st.session_state.get("f_source") or "").strip() or None,
        date_from=iso(st.session_state.get("f_from")),
        date_to=iso(st.session_state.get("f_to")),
    )
    return f if f.active() else None


def filters_caption(f: Filters | None) -> None:
    if f is None or not f.active():
        return
    st.caption("Filtered: " + md(f.describe()) + " (change in the sidebar).")
