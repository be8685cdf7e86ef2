"""PDF citations name the page their quote is on: in the answer, on the page, in the CLI and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli.main import run as cli_run
from rag.settings import Settings
from rag.system import System
from rag.types import Article, PageSpan
from tests.pdfs import pdf_bytes
from ui.render import answer_with_sources, hit_card_html, page_label, source_cards_html

# One paragraph per page, a sentence per line: the whole text fits in one passage, so a quote's
# page must come from the quote's own offset, not from where its passage starts.
PAGES = [
    [
        "The passenger ferry between Lindholm and the old harbour will resume service in March.",
        "The city council approved the money for the restart last week.",
    ],
    [
        "The route once carried more than 900 passengers a day, most of them commuters.",
        "Service stopped in 2014 when the last vessel failed a safety inspection.",
    ],
    [
        "The new vessel was built at the Kestrel shipyard in Aalborg.",
        "It can carry 240 passengers and 30 bicycles.",
    ],
]


def _page_of(quote: str) -> int:
    """The PDF page whose lines hold ``quote``, found from the fixture itself."""
    found = [n for n, lines in enumerate(PAGES, start=1) if quote.strip() in " ".join(lines)]
    assert len(found) == 1, quote
    return found[0]


def test_page_at_and_page_label() -> None:
    article = Article(
        id="a",
        source="x.pdf",
        title="t",
        text="one.\n\ntwo.\n\nthree.",
        pages=(PageSpan(0, 4, 1), PageSpan(6, 10, 2), PageSpan(12, 18, 3)),
    )
    assert [article.page_at(i) for i in (0, 3, 4, 5, 6, 11, 12, 17)] == [1, 1, 1, 1, 2, 2, 3, 3]
    assert Article(id="b", source="x.txt", title="t", text="plain").page_at(0) is None
    assert page_label([3]) == "p. 3"
    assert page_label([5, None, 3, 5]) == "pp. 3, 5"
    assert page_label([None]) == page_label([]) == ""


@pytest.fixture(scope="module")
def pdf_index(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> System:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("pdf")
    folder = root / "articles"
    folder.mkdir()
    (folder / "ferry.pdf").write_bytes(pdf_bytes(PAGES, info_title="Harbour ferry returns"))
    (folder / "notes.txt").write_text(
        "Tram line news\n\nThe tram line to the airport opens in June after two years of work.\n"
    )
    system = System(Settings(index_dir=root / "index"), embedder=real_embedder)
    report = system.ingest([folder])
    assert not report.skipped and len(report.added) == 2
    return system


@pytest.mark.parametrize(
    ("question", "page"),
    [
        ("Where was the new ferry vessel built?", 3),
        ("When did the ferry service stop?", 2),
        ("When will the passenger ferry resume service?", 1),
    ],
)
def test_answer_cites_the_page_of_each_quote(pdf_index: System, question: str, page: int) -> None:
    answer = pdf_index.ask(question)
    assert not answer.abstained and answer.citations
    first = answer.citations[0]
    assert first.source.endswith("ferry.pdf") and first.page == page
    for c in answer.citations:
        assert c.page == (_page_of(c.quote) if c.source.endswith(".pdf") else None)
    # One passage holds the whole PDF, so every citation shares one card: it lists their pages.
    cards = "".join(source_cards_html(answer, "k"))
    label = page_label(c.page for c in answer.citations)
    assert str(page) in label and f'<span class="page">{label}</span>' in cards
    assert f"ferry.pdf, p. {page}." in answer_with_sources(answer)


def test_search_hits_and_other_files(pdf_index: System) -> None:
    hits = pdf_index.search("tram line to the airport")
    tram = next(h for h in hits if h.article.source.endswith("notes.txt"))
    assert tram.article.pages == () and 'class="page"' not in hit_card_html(tram, 1)
    ferry = next(h for h in pdf_index.search("new vessel shipyard") if h.article.pages)
    # The passage starts on page 1: a search hit names the page its passage starts on.
    assert ferry.article.page_at(ferry.chunk.start) == 1
    assert [p.page for p in ferry.article.pages] == [1, 2, 3]  # read back from the index
    assert '<span class="page">p. 1</span>' in hit_card_html(ferry, 1)


def test_cli_prints_and_returns_the_page(
    pdf_index: System, capsys: pytest.CaptureFixture[str]
) -> None:
    index = str(pdf_index.settings.index_dir)
    question = "Where was the new ferry vessel built?"
    assert cli_run(["--index", index, "ask", question, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["citations"][0]["page"] == 3
    assert cli_run(["--index", index, "ask", question]) == 0
    assert "ferry.pdf, p. 3, chars" in capsys.readouterr().out
    assert cli_run(["--index", index, "search", "new vessel shipyard", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert {h["page"] for h in hits if h["source"].endswith(".pdf")} == {1}
    assert {h["page"] for h in hits if h["source"].endswith(".txt")} <= {None}


def test_damaged_page_data_costs_only_the_page_numbers(tmp_path: Path) -> None:
    from rag.store.rows import pages_of as _pages

    assert _pages(None) == _pages("") == ()
    assert _pages("[[0, 5, 1], [7, 9, 2]]") == (PageSpan(0, 5, 1), PageSpan(7, 9, 2))
    for stored in ("{not json", '[["a", 1, 2]]', "[[1, 2]]", "[1, 2, 3]", '{"x": 1}'):
        assert _pages(stored) == ()
