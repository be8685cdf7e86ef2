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


# --- settings that survive reruns and reloads ---------------------------------------------------
# Streamlit forgets a widget's value when a run doesn't render it (e.g. the search box while in
# Library, or everything after an early st.stop), so each value is copied to a plain key that
# outlives the widget and restored before the widget is drawn again. The settings also ride in the
# page address (?k=3&source=...), so a reload, or the address bookmarked, keeps them; nothing of
# them leaves the browser and this server.
IN_ADDRESS = {
    "mode": "mode",
    "answer_mode": "answer",
    "k": "k",
    "f_source": "source",
    "f_from": "from",
    "f_to": "to",
}
_DEFAULTS: dict[str, Any] = {}


def _from_address(key: str, default: Any) -> Any:
    raw = st.query_params.get(IN_ADDRESS[key]) if key in IN_ADDRESS else None
    if raw is None:
        return default
    try:
        if key == "k":
            return max(1, min(20, int(raw)))
        if key in ("f_from", "f_to"):
            return date.fromisoformat(raw)
    except ValueError:
        return default
    if key == "mode" and raw not in MODES:
        return default
    return str(raw)


def restore(key: str, default: Any) -> None:
    _DEFAULTS[key] = default
    if key not in st.session_state:
        kept = f"keep_{key}"
        st.session_state[key] = (
            st.session_state[kept] if kept in st.session_state else _from_address(key, default)
        )


def remember(key: str) -> None:
    value = st.session_state.get(key)
    st.session_state[f"keep_{key}"] = value
    name = IN_ADDRESS.get(key)
    if name is None:
        return
    text = value.isoformat() if isinstance(value, date) else "" if value is None else str(value)
    if text and value != _DEFAULTS.get(key):
        if st.query_params.get(name) != text:
            st.query_params[name] = text
    elif name in st.query_params:
        del st.query_params[name]


def _mode_from_phone() -> None:
    st.session_state["mode"] = st.session_state["phone_mode"]


def phone_modes() -> None:
    """The modes again at the top of the page, shown only at phone width (CSS), where the
    sidebar is folded away: one tap switches mode without opening it."""
    st.session_state["phone_mode"] = st.session_state.get("mode", MODES[0])
    with st.container(key="phone-modes"):
        st.radio(
            "Mode",
            MODES,
            key="phone_mode",
            horizontal=True,
            label_visibility="collapsed",
            on_change=_mode_from_phone,
        )


def sidebar(system: System, default_k: int) -> str:
    st.sidebar.title("Cited answers")
    restore("mode", MODES[0])
    mode = st.sidebar.radio("Mode", MODES, key="mode", horizontal=True)
    remember("mode")
    phone_modes()
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
