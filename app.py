"""The Streamlit page: chat with cited sources, passage search, and the article library.

UI only: everything it does goes through ``rag.system.System``. Run with ``streamlit run app.py``.
This file sets the page up and picks the mode; the sidebar and each mode are in ``ui/``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from rag.errors import IndexMissing
from rag.settings import Settings
from rag.system import System
from ui.chat import chat_page
from ui.errors import show_error
from ui.library import library_page
from ui.render import md, plural
from ui.search import search_page
from ui.sidebar import sidebar
from ui.styles import PAGE_CSS


@st.cache_resource(show_spinner="Loading the embedding model…")
def get_system(settings_json: str) -> System:
    return System(Settings.model_validate_json(settings_json))


def index_stats(system: System) -> tuple[dict[str, Any] | None, BaseException | None]:
    """The index statistics, or the error that stops the index being read."""
    try:
        if not system.has_index():  # a damaged index folder raises here already
            return None, IndexMissing("no index")
        return system.stats(), None
    except Exception as e:  # noqa: BLE001 - shown as a sentence by the caller
        return None, e


def main() -> None:
    st.set_page_config(page_title="Cited answers", page_icon="📰", layout="wide")
    st.markdown(PAGE_CSS, unsafe_allow_html=True)
    try:
        settings = Settings()
        system = get_system(settings.model_dump_json())
    except Exception as e:  # noqa: BLE001
        show_error(e)
        st.stop()
    mode = sidebar(system, settings.k)
    stats, problem = index_stats(system)
    if stats:
        st.sidebar.caption(
            f"{plural(stats['articles'], 'article')} · {plural(stats['chunks'], 'passage')} · "
            f"{plural(len(stats['duplicate_groups']), 'duplicate group')}"
        )
    elif isinstance(problem, IndexMissing):
        st.sidebar.caption("No index yet.")
    else:
        st.sidebar.caption("The index cannot be read (see the page).")
    if mode == "Search":
        search_page(system, problem)
    elif mode == "Library":
        library_page(system, stats, problem)
    else:
        chat_page(system, problem)
    st.caption(f"Index folder: {md(str(settings.index_dir))}")
    if mode == "Chat":
        focus_chat_box()


def focus_chat_box() -> None:
    """Put the cursor in the chat box when the page opens (once a session: later runs leave the
    focus where the user put it). Streamlit offers no autofocus, so a line of script does it."""
    if st.session_state.get("chat_focused"):
        return
    st.session_state["chat_focused"] = True
    st.html(
        "<script>(() => { let n = 0; const t = setInterval(() => {"
        " const box = document.querySelector('[data-testid=stChatInputTextArea]');"
        " if (box && !box.disabled) { box.focus(); clearInterval(t); }"
        " else if (++n > 100) clearInterval(t); }, 100); })();</script>",
        unsafe_allow_javascript=True,
    )


main()
