"""Example questions for an empty chat, drawn from the titles of the indexed articles.

A title becomes "What happened: <title>?"; only examples the offline answerer does answer are
offered (checked once per index version, a few titles at most), so a click never starts with a
refusal.
"""

from __future__ import annotations

import streamlit as st

from rag.system import System
from ui.render import label

SHOWN = 3
TRIED = 6
_MAX_TITLE = 90


def _candidates(system: System) -> list[str]:
    rows = system.reader().list_articles()
    rows.sort(key=lambda r: r.get("date") or "", reverse=True)  # the newest first
    seen_groups: set[str] = set()
    out = []
    for r in rows:
        title = " ".join(str(r["title"]).split()).rstrip(".?!:")
        if not title or len(title) > _MAX_TITLE or len(title.split()) < 3:
            continue
        group = r.get("group_id")
        if group and group in seen_groups:
            continue  # one version of a story is enough
        if group:
            seen_groups.add(group)
        out.append(f"What happened: {title}?")
    return out[:TRIED]


@st.cache_data(show_spinner=False, max_entries=8)
def _answered(index_dir: str, version: str, _system: System) -> list[str]:
    found = []
    for q in _candidates(_system):
        if not _system.ask(q, mode="extractive").abstained:
            found.append(q)
        if len(found) == SHOWN:
            break
    return found


def example_questions(system: System) -> list[str]:
    """Up to three questions the indexed articles answer; [] when there is nothing to draw on."""
    try:
        reader = system.reader()
        return _answered(str(system.settings.index_dir), reader.version, system)
    except Exception:  # noqa: BLE001 - examples are a nicety: the chat works without them
        return []


def show_examples(system: System) -> None:
    """Buttons that ask an example question as if it had been typed."""
    questions = example_questions(system)
    if not questions:
        return
    st.caption("Or try one of these:")
    for i, q in enumerate(questions):
        st.button(
            label(q),
            key=f"example_{i}",
            on_click=lambda q=q: st.session_state.update(asked=q),
        )
