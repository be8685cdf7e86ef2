"""Search mode: the best passages for a query with its words highlighted, without an answer."""

from __future__ import annotations

import streamlit as st

from rag.errors import IndexMissing
from rag.system import System
from ui.errors import show_error
from ui.render import hit_card_html, page_key
from ui.sidebar import current_filters, filters_caption, remember, restore


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
        found = system.words_found(query)
        reader = system.reader()
        texts = {h.article.id: reader.article(h.article.id).text for h in hits}
    except Exception as e:  # noqa: BLE001
        show_error(e)
        return
    if not hits:
        st.info("No passage matches. Try other words, or loosen the filters in the sidebar.")
        return
    if found:
        st.caption(f"{len(hits)} best passage{'s' if len(hits) != 1 else ''}")
    else:
        st.info(
            "No word of the query occurs in any passage. The closest "
            f"{'passage' if len(hits) == 1 else f'{len(hits)} passages'} by meaning:"
        )
    key = "hit-" + page_key(query)
    cards = [
        hit_card_html(h, i, query, key, texts.get(h.article.id)) for i, h in enumerate(hits, 1)
    ]
    st.markdown("".join(cards), unsafe_allow_html=True)
