"""The Streamlit page driven headlessly with AppTest: chat, follow-ups, search, library, settings, errors.

The page loads its own copy of the bundled model (cached per settings for the test process).
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from rag.system import System
from rag.types import Filters

APP = str(Path(__file__).resolve().parent.parent / "app.py")
CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"
QUESTION = "Who led the repair crew of the Harbor Bridge?"

pytestmark = pytest.mark.usefixtures("real_model")  # the page loads its own model


def page(monkeypatch: pytest.MonkeyPatch, index_dir: Path, **env: str) -> AppTest:
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_dir))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def all_markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def table_rows(at: AppTest) -> int:
    """Rows of the library's table of articles."""
    return all_markdown(at).count('<tr class="article-row">')


def texts(elements) -> str:  # type: ignore[no-untyped-def]
    """Messages as shown (the page escapes what it quotes into them)."""
    return html.unescape("\n".join(e.value for e in elements))


@pytest.fixture
def fresh_cache() -> None:
    """For indexes whose folder is reused or broken: no System from an earlier test."""
    st.cache_resource.clear()


# --- chat ---------------------------------------------------------------------------------------
def test_ask_then_follow_up(monkeypatch: pytest.MonkeyPatch, built_index: System) -> None:
    at = page(monkeypatch, built_index.settings.index_dir)
    at.chat_input(key="question").set_value(QUESTION).run()
    assert not at.exception and not at.error
    expected = built_index.ask(QUESTION)
    assert not expected.abstained
    answer = next(m.value for m in at.markdown if m.value.startswith('<div class="answer">'))
    assert re.search(r'<a class="cite-chip" href="#cite-\w+-1"', answer)
    assert "Lindqvist" in answer
    cards = next(m.value for m in at.markdown if 'class="source-card"' in m.value)
    for c in expected.citations:
        mark = re.search(rf'<mark id="cite-\w+-{c.n}" class="quote">(.*?)</mark>', cards)
        assert mark is not None
    assert "show whole article" in cards
    copy = at.code[0].value
    assert copy.startswith(expected.text) and "Sources:" in copy and "[1] " in copy

    # A follow-up leans on the first turn: the history turns it into a standalone question.
    at.chat_input(key="question").set_value("How many workers were in it?").run()
    assert not at.exception
    understood = [c.value for c in at.caption if c.value.startswith("Follow-up understood as")]
    assert understood and "Harbor" in understood[0]
    assert len(at.chat_message) == 4


def test_chat_shows_its_filters_and_names_them_in_a_refusal(
    monkeypatch: pytest.MonkeyPatch, built_index: System
) -> None:
    at = page(monkeypatch, built_index.settings.index_dir)
    # A glob on the file name alone (sources are absolute paths), as the help text promises.
    at.text_input(key="f_source").set_value("harbor_bridge.*").run()
    at.chat_input(key="question").set_value(QUESTION).run()
    assert not at.exception
    answer = next(m.value for m in at.markdown if m.value.startswith('<div class="answer">'))
    assert "Lindqvist" in answer
    shown = [html.unescape(c.value) for c in at.caption]
    assert "Filtered: source matching “harbor_bridge.*” (change in the sidebar)." in shown

    at.text_input(key="f_source").set_value("orchard_*").run()
    at.chat_input(key="question").set_value(QUESTION).run()
    assert not at.exception
    shown = [html.unescape(c.value) for c in at.caption]
    # Each answer keeps the filters it was found under; the refusal names them.
    assert "Filtered: source matching “orchard_*” (change in the sidebar)." in shown
    assert "Filtered: source matching “harbor_bridge.*” (change in the sidebar)." in shown
    assert (
        "the question's key terms are missing from the articles that pass the filters "
        "(source matching “orchard_*”)"
    ) in shown
    assert "the question's key terms are missing from the articles" not in shown


def test_a_refusal_folds_its_closest_passages_and_scores_have_one_label(
    monkeypatch: pytest.MonkeyPatch, built_index: System
) -> None:
    at = page(monkeypatch, built_index.settings.index_dir)
    at.chat_input(key="question").set_value("Who is the mayor of Paris?").run()
    assert not at.exception
    assert built_index.ask("Who is the mayor of Paris?").abstained
    folded = [e for e in at.expander if e.label.startswith("Closest ")]
    assert len(folded) == 1 and folded[0].label.endswith("(none answers the question)")
    assert any('class="hit-card"' in m.value for m in folded[0].markdown)
    at.chat_input(key="question").set_value(QUESTION).run()
    at.radio(key="mode").set_value("Search").run()
    at.text_input(key="search_query").set_value("repair crew").run()
    at.radio(key="mode").set_value("Chat").run()
    labels = re.findall(r'<span class="score"[^>]*>([a-z]+) ', all_markdown(at))
    at.radio(key="mode").set_value("Search").run()
    labels += re.findall(r'<span class="score"[^>]*>([a-z]+) ', all_markdown(at))
    assert len(labels) > 3 and set(labels) == {"relevance"}


def test_an_empty_chat_offers_example_questions_from_the_titles(
    monkeypatch: pytest.MonkeyPatch, built_index: System
) -> None:
    at = page(monkeypatch, built_index.settings.index_dir)
    examples = [b for b in at.button if b.key and b.key.startswith("example_")]
    titles = {r["title"] for r in built_index.reader().list_articles()}
    assert 1 <= len(examples) <= 3
    assert all(b.label.removeprefix("What happened: ").rstrip("?") in titles for b in examples)
    examples[0].click().run()
    assert not at.exception
    assert len(at.chat_message) == 2 and at.chat_message[0].markdown[0].value
    answer = next(m.value for m in at.markdown if m.value.startswith('<div class="answer">'))
    assert "cite-chip" in answer  # an example is one the articles answer
    assert not [b for b in at.button if b.key and b.key.startswith("example_")]


# --- search, filters and settings ---------------------------------------------------------------
def test_search_lists_passages_with_highlights_and_filters(
    monkeypatch: pytest.MonkeyPatch, built_index: System
) -> None:
    at = page(monkeypatch, built_index.settings.index_dir)
    at.radio(key="mode").set_value("Search").run()
    at.text_input(key="search_query").set_value("repair crew").run()
    assert not at.exception
    md = all_markdown(at)
    hits = built_index.search("repair crew", k=5)
    assert md.count('class="hit-card"') == len(hits)
    assert '<mark class="term">crew</mark>' in md
    assert not any(m.value.startswith('<div class="answer">') for m in at.markdown)

    at.text_input(key="f_source").set_value("orchard").run()
    expected = built_index.search("repair crew", k=5, filters=Filters(source="orchard"))
    md = all_markdown(at)
    assert md.count('class="hit-card"') == len(expected)
    shown = re.findall(r'<span class="title">(.*?)</span>', md)
    assert shown == [h.article.title for h in expected]  # titles here have no escaped characters
    assert any("Filtered: source matching" in c.value for c in at.caption)
    assert any(re.fullmatch(r"\d+ best passages?", c.value) for c in at.caption)
    assert not at.info

    # No word of the query is in any passage: said above the closest ones, not "5 best passages".
    at.text_input(key="f_source").set_value("").run()
    at.text_input(key="search_query").set_value("zeppelin xylophone").run()
    assert "No word of the query occurs in any passage" in texts(at.info)
    assert not any("best passage" in c.value for c in at.caption)
    assert all_markdown(at).count('class="hit-card"') > 0


def test_settings_survive_mode_switches(
    monkeypatch: pytest.MonkeyPatch, built_index: System
) -> None:
    at = page(monkeypatch, built_index.settings.index_dir)
    at.slider(key="k").set_value(2).run()
    at.text_input(key="f_source").set_value("harbor").run()
    at.radio(key="mode").set_value("Search").run()
    at.text_input(key="search_query").set_value("bridge cables").run()
    for mode in ("Library", "Chat", "Search"):
        at.radio(key="mode").set_value(mode).run()
        assert not at.exception
    assert at.slider(key="k").value == 2
    assert at.text_input(key="f_source").value == "harbor"
    assert at.text_input(key="search_query").value == "bridge cables"
    assert at.radio(key="answer_mode").value.startswith("Extractive")
    assert 0 < all_markdown(at).count('class="hit-card"') <= 2


# --- library: folder, upload, delete, escaping ---------------------------------------------------
def test_library_folder_upload_delete_and_escaping(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_cache: None
) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(CORPUS / "harbor_bridge.txt", articles)
    (articles / "broken.pdf").write_bytes(b"not a pdf at all")
    index_dir = tmp_path / "index"
    at = page(monkeypatch, index_dir)
    assert any("No articles are indexed yet" in i.value for i in at.info)  # empty state

    at.radio(key="mode").set_value("Library").run()
    at.text_input(key="folder").set_value(str(articles))
    at.button[0].click().run()  # the folder form's submit button
    assert not at.exception
    assert any("1 added" in s.value for s in at.success)
    assert "Skipped broken.pdf:" in texts(at.warning)  # the failed file, with its reason
    assert table_rows(at) == 1
    table = all_markdown(at)
    # The file name shown, its full path on hover; "passages", never "chunks".
    assert f'title="{articles / "harbor_bridge.txt"}">harbor&#95;bridge&#46;txt</span>' in table
    assert "<th>Passages</th>" in table and "chunk" not in table.lower()
    assert any(c.value.startswith("1 article · ") for c in at.sidebar.caption)
    assert "1 duplicate group" not in texts(at.sidebar.caption)  # none yet: "0 duplicate groups"

    hostile = (
        b"Notice <script>alert('owned')</script>\n\nThe ferry fare rose to $5 and $x$ is just text."
        b" See [this](javascript:alert(1)) for details about the ferry fare.\n"
    )
    at.file_uploader[0].set_value(
        [
            ("../../etc/ferry notice.txt", hostile, "text/plain"),
            (".hidden.md", b"# Hi\n\nHello.", ""),
            ("scan.pdf", b"not a pdf either", "application/pdf"),
        ]
    ).run()
    assert at.button(key="index_uploads").label == "Index 3 uploaded files"
    at.button(key="index_uploads").click().run()
    assert not at.exception
    uploads = index_dir / "uploads"
    # The skipped upload is not kept in the upload folder.
    assert "Skipped scan.pdf:" in texts(at.warning)
    assert sorted(p.name for p in uploads.iterdir()) == ["ferry notice.txt", "hidden.md"]
    assert not (tmp_path / "etc").exists() and not (index_dir.parent.parent / "etc").exists()
    assert any("2 added" in s.value for s in at.success)
    assert table_rows(at) == 3

    at.radio(key="mode").set_value("Search").run()
    at.text_input(key="search_query").set_value("ferry fare").run()
    md = all_markdown(at)
    assert "Notice &#60;script&#62;" in md and "<script" not in md
    assert "$" not in md.split("<style>")[0] + md.split("</style>")[-1]
    assert "](" not in md and "javascript:" not in md

    at.radio(key="mode").set_value("Library").run()
    ferry = next(i for i in at.multiselect(key="to_delete").options if "ferry" in i)
    at.multiselect(key="to_delete").select(ferry).run()
    at.button(key="delete").click().run()
    assert table_rows(at) == 3 and "Delete 1 article from the index?" in texts(at.warning)
    at.button(key="delete_cancel").click().run()  # nothing deleted without the confirmation
    assert table_rows(at) == 3 and not any(b.key == "delete_confirmed" for b in at.button)
    at.button(key="delete").click().run()
    at.button(key="delete_confirmed").click().run()
    assert not at.exception
    assert any(s.value == "Deleted 1 article." for s in at.success)
    assert table_rows(at) == 2
    assert not (uploads / "ferry notice.txt").exists()


# --- errors -------------------------------------------------------------------------------------
def test_empty_index_explains_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = page(monkeypatch, tmp_path / "nothing-here")
    assert any("Library" in i.value and "No articles" in i.value for i in at.info)
    assert at.chat_input(key="question").proto.disabled
    at.radio(key="mode").set_value("Library").run()
    assert any("Nothing indexed yet" in i.value for i in at.info)
    assert not at.exception and not at.error


def test_index_folder_that_is_a_file_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "index"
    not_a_folder.write_text("a file where the index folder should be")
    at = page(monkeypatch, not_a_folder)
    assert "is a file, not a folder" in texts(at.warning) and "RAG_INDEX_DIR" in texts(at.warning)
    assert not at.error and not at.exception


def test_corrupt_index_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, built_index: System, fresh_cache: None
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(built_index.settings.index_dir, index_dir)
    for part in index_dir.glob("rows.sqlite*"):  # the index's rows, overwritten with junk
        part.unlink()
    (index_dir / "rows.sqlite").write_bytes(b"{not a database}" * 256)
    at = page(monkeypatch, index_dir)
    for mode in ("Chat", "Search", "Library"):
        at.radio(key="mode").set_value(mode).run()
        assert not at.exception
        errors = texts(at.error)
        assert "damaged" in errors and "rebuild" in errors
        assert "Traceback" not in errors
    at.radio(key="mode").set_value("Chat").run()
    at.chat_input(key="question").set_value(QUESTION).run()
    assert not at.exception and "damaged" in texts(at.error)


def test_missing_model_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, built_index: System
) -> None:
    at = page(
        monkeypatch, built_index.settings.index_dir, RAG_MODEL=str(tmp_path / "no-such-model")
    )
    errors = texts(at.error)
    assert "embedding model could not be loaded" in errors and "RAG_MODEL" in errors
    assert not at.exception


# --- LLM answers ----------------------------------------------------------------------------------
def test_llm_answer_streams_flags_unsupported_and_explains_failures(
    monkeypatch: pytest.MonkeyPatch, built_index: System
) -> None:
    from openai_server import Fail, OpenAIServer

    with OpenAIServer() as server:
        at = page(
            monkeypatch,
            built_index.settings.index_dir,
            RAG_LLM="openai:scripted-model",
            RAG_LLM_BASE_URL=server.base_url,
            RAG_LLM_TIMEOUT="10",
        )
        assert at.radio(key="answer_mode").value == "LLM"
        server.enqueue(
            "Chief engineer Maria Lindqvist, who led the repair crew of 140 workers, said the bridge "
            "is now rated for heavier trucks than before [1]. Lindqvist was born on Mars in 1802 [1]."
        )
        at.chat_input(key="question").set_value(QUESTION).run()
        assert not at.exception
        assert server.requests and server.requests[-1].get("stream") is True
        answer = next(m.value for m in at.markdown if m.value.startswith('<div class="answer">'))
        assert 'class="cite-chip"' in answer
        flagged = re.search(r'<span class="unsupported"[^>]*>(.*?)</span><span', answer)
        assert flagged and "Mars" in html.unescape(flagged.group(1))
        assert "not supported" in texts(at.warning)

        server.enqueue(Fail(500))
        at.chat_input(key="question").set_value("What did the project cost?").run()
        assert not at.exception
        assert "chat model did not answer" in texts(at.error)
        at.radio(key="answer_mode").set_value("Extractive (offline)").run()
        assert at.radio(key="answer_mode").value.startswith("Extractive")
