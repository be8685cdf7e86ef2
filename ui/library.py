"""Library mode: add articles (uploads or a server folder), see what is indexed, delete articles."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from rag.errors import IndexMissing
from rag.system import System
from ui.access import admin_gate, may_write
from ui.errors import show_error
from ui.render import escape, md, plural, source_label
from ui.uploads import remove_uploads, save_uploads, upload_dir

FILE_TYPES = ".txt .md .html .htm .pdf .docx .json .jsonl"


def library_page(
    system: System, stats: dict[str, Any] | None, problem: BaseException | None
) -> None:
    st.header("Library")
    if problem is not None and not isinstance(problem, IndexMissing):
        show_error(problem)
    if stats:
        cols = st.columns(4)
        cols[0].metric("Articles", stats["articles"])
        cols[1].metric("Passages", stats["chunks"])
        cols[2].metric(
            "Reprint groups",
            stats.get("reprint_groups", len(stats["duplicate_groups"])),
            help="Groups of near-duplicate articles that agree on every number, date and name.",
        )
        cols[3].metric(
            "Versions with differences",
            stats.get("groups_with_differences", 0),
            help="Groups of versions of one story that give a number, date or name differently.",
        )
        st.caption(
            f"Last updated {md(str(stats['updated']))} · model {md(stats['model'])} "
            f"({stats['dimension']} dimensions)"
        )

    st.subheader("Add articles")
    writable = admin_gate(system.settings)
    if writable:
        add_articles(system)
    if "last_report" in st.session_state:
        show_report(st.session_state["last_report"])
    if "last_delete" in st.session_state:
        st.success(st.session_state.pop("last_delete"))
    if stats:
        articles_table(system, stats, writable)
    elif isinstance(problem, IndexMissing):
        st.info("Nothing indexed yet: upload files or index a folder above.")


def articles_table_html(rows: Sequence[Mapping[str, str]]) -> str:
    """The library's table of articles: title, date, file name (the full path on hover),
    passages and duplicate group; every cell escaped."""
    head = "".join(f"<th>{h}</th>" for h in ("Title", "Date", "File", "Passages", "Duplicates"))
    body = "".join(
        '<tr class="article-row">'
        f'<td>{escape(r["title"])}</td><td class="nowrap">{escape(r["date"])}</td>'
        f"<td>{source_label(r['source'])}</td><td>{escape(r['passages'])}</td>"
        f"<td>{escape(r['group'])}</td></tr>"
        for r in rows
    )
    return (
        f'<div class="articles"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        "</table></div>"
    )


def add_articles(system: System) -> None:
    """The uploader and the folder form (shown only to a session that may write)."""
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
        f"Index {plural(len(files), 'uploaded file')}", key="index_uploads", type="primary"
    ):
        uploads = upload_dir(system.settings.index_dir)
        saved, refused = save_uploads(list(files), uploads)
        for name in refused:
            st.warning(f"Refused the file name “{md(name)}”; rename the file and upload it again.")
        if saved and run_ingest(system, saved, sync=False):
            # A skipped upload is not in the index: its copy must not linger in the folder.
            skipped = [s["source"] for s in st.session_state["last_report"]["skipped"]]
            remove_uploads(skipped, uploads)
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


def run_ingest(system: System, paths: list[Path], sync: bool) -> bool:
    if not may_write(system.settings):
        st.warning("Nothing indexed: the admin token is needed.")
        return False
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


def articles_table(system: System, stats: dict[str, Any], writable: bool = True) -> None:
    try:
        reader = system.reader()
        rows = reader.list_articles()
        sources = {r["id"]: reader.sources_of(r["id"]) or [r["source"]] for r in rows}
    except Exception as e:  # noqa: BLE001
        show_error(e)
        return
    groups = {g["group"]: i for i, g in enumerate(stats["duplicate_groups"], start=1)}
    st.subheader(f"Indexed articles ({len(rows)})")
    st.markdown(
        articles_table_html(
            [
                {
                    "title": r["title"],
                    "date": r["date"] or "",
                    "source": r["source"],
                    "passages": str(r["chunks"]),
                    "group": group_label(stats, groups, r["group_id"]),
                }
                for r in rows
            ]
        ),
        unsafe_allow_html=True,
    )
    titles = {r["id"]: f"{r['title']} — {Path(r['source']).name}" for r in rows}
    if writable:
        delete_form(system, titles, sources)
    if stats["duplicate_groups"]:
        with st.expander("Duplicate groups (versions of one story)"):
            for g in stats["duplicate_groups"]:
                names = ", ".join(version_label(a) for a in g["articles"])
                label = "versions with differences" if g.get("differs") else "plain reprints"
                st.markdown(f"**group {groups[g['group']]}** ({label}): {names}")


def delete_form(system: System, titles: dict[str, str], sources: dict[str, list[str]]) -> None:
    """Choose articles, then confirm: nothing is deleted by one click."""
    chosen = st.multiselect(
        "Delete articles",
        list(titles),
        format_func=lambda i: titles.get(i, i),
        key="to_delete",
        placeholder="Choose articles to remove from the index",
    )
    if not st.session_state.get("confirm_delete"):
        st.button(
            "Delete selected…",
            key="delete",
            disabled=not chosen,
            on_click=lambda: st.session_state.update(confirm_delete=True),
        )
        return
    st.warning(
        f"Delete {plural(len(chosen), 'article')} from the index? Their uploaded files go too; "
        "this cannot be undone."
    )
    yes, no = st.columns(2)
    yes.button(
        f"Yes, delete {plural(len(chosen), 'article')}",
        key="delete_confirmed",
        type="primary",
        disabled=not chosen,
        on_click=delete_selected,
        args=(system, {i: sources[i] for i in titles}),
    )
    no.button(
        "Cancel",
        key="delete_cancel",
        on_click=lambda: st.session_state.update(confirm_delete=False),
    )


def group_label(stats: dict[str, Any], groups: dict[str, int], group_id: str | None) -> str:
    """ "group 2" or "group 2 (versions differ)" for the articles table."""
    if group_id not in groups:
        return ""
    g = stats["duplicate_groups"][groups[group_id] - 1]
    return f"group {groups[group_id]}" + (" (versions differ)" if g.get("differs") else "")


def version_label(a: dict[str, Any]) -> str:
    """An article of a group, with the facts it gives differently from the fullest version."""
    label = f"{md(a['title'])} ({md(Path(a['source']).name)})"
    diffs = a.get("differences") or []
    if diffs:
        label += " — " + "; ".join(
            f"**{md(d['this'])}** (fullest: {md(d['fullest'])})" for d in diffs[:3]
        )
    return label


def delete_selected(system: System, sources: dict[str, list[str]]) -> None:
    """Button callback (runs before the page is drawn, so it may clear the selection)."""
    if not may_write(system.settings):  # the button is not drawn then; a forged rerun is refused
        st.session_state["last_delete"] = "Nothing deleted: the admin token is needed."
        return
    st.session_state["confirm_delete"] = False
    chosen = [i for i in st.session_state.get("to_delete", []) if i in sources]
    paths = [s for i in chosen for s in sources[i]]
    try:
        system.delete(paths)
    except Exception as e:  # noqa: BLE001
        st.session_state["last_delete"] = f"Nothing deleted: {md(str(e))}."
        return
    remove_uploads(paths, upload_dir(system.settings.index_dir))
    st.session_state["to_delete"] = []
    st.session_state["last_delete"] = f"Deleted {plural(len(chosen), 'article')}."
