"""How the page shows an error: one sentence saying what happened and what to do next."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from rag.errors import IndexMissing, outcome
from ui.render import md

log = logging.getLogger("rag.app")


def error_text(e: BaseException) -> str:
    """The sentence the page shows for ``e`` (Markdown, user text escaped)."""
    o = outcome(e)
    detail = md(o.message)
    if isinstance(e, IndexMissing):  # the empty state, not a failure: no path to show
        return f"{o.title}. {md(o.hint)}"
    if o.kind in ("input_error", "not_found", "skip_file"):
        return f"{detail[:1].upper()}{detail[1:]}."
    return f"{o.title} ({detail}). {md(o.hint)}".rstrip()


def show_error(e: BaseException, where: Any = st) -> None:
    """One sentence saying what happened and what to do next; never a traceback."""
    o = outcome(e)
    if not o.expected:
        log.error("unexpected error on the page", exc_info=e)
    getattr(where, o.level)(error_text(e))
