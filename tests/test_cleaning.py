"""Cleaning of article text: characters, whitespace, mangled punctuation, boilerplate, metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest.cleaning import clean_article, clean_text, normalize_chars, repair_underscores
from rag.ingest.metadata import author_from_byline, date_line, parse_date

FIXTURES = Path(__file__).parent / "fixtures" / "articles"


def _read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _expected(name: str) -> list[str]:
    return _read(name).strip().split("\n\n")


def _paragraphs(text: str) -> list[str]:
    return text.split("\n\n")


# --- a blog page dumped as text ------------------------------------------------------------


def test_blog_dump_keeps_every_body_paragraph_and_nothing_else() -> None:
    cleaned = clean_article(_read("blog_page.txt"))
    assert _paragraphs(cleaned.text) == _expected("blog_page.expected.txt")


def test_blog_dump_drops_comment_thread_controls_and_chatter() -> None:
    text, removed = clean_text(_read("blog_page.txt"))
    for gone in ("ReplyDelete", "Delete", "Replies", "12 comments", "First! Great reporting",
                 "Anonymous said", "wait and see"):  # fmt: skip
        assert gone not in text
    thread = [r for r in removed if r.reason == "comments"]
    assert len(thread) == 1 and "ReplyDelete" in thread[0].text
    assert "wait and see" in thread[0].text  # the whole thread, to its last reply


def test_blog_dump_drops_navigation_cookie_share_and_footer_with_reasons() -> None:
    text, removed = clean_text(_read("blog_page.txt"))
    reasons = {r.reason: r.text for r in removed}
    assert reasons["navigation"] == "Pages - Menu"
    assert "We use cookies" in reasons["cookie notice"]
    assert "Read More" in reasons["share links"] and "Share to Twitter" in reasons["share links"]
    assert "tips@borderwatch.example" in reasons["footer"]
    assert "borderwatch@example.org" in reasons["footer"]
    assert reasons["title"] == "Inspectors Share a Lane at Puerto Claro"
    for gone in ("Pages - Menu", "cookies", "Read More", "Contact us", "borderwatch@",
                 "posted by kestrel", "Saturday, November 8"):  # fmt: skip
        assert gone not in text


def test_blog_dump_metadata_from_date_line_and_byline() -> None:
    cleaned = clean_article(_read("blog_page.txt"))
    assert cleaned.title == "Inspectors Share a Lane at Puerto Claro"
    assert cleaned.date == "2014-11-08"
    assert cleaned.author == "Maria Ortega"  # "By X" wins over the "posted by" account
    assert any(r.reason == "byline" and "kestrel" in r.text for r in cleaned.removals)


def test_keep_comments_keeps_the_thread_but_not_its_buttons() -> None:
    text, removed = clean_text(_read("blog_page.txt"), keep_comments=True)
    assert "First! Great reporting as always" in text
    assert "wait and see" in text
    assert "ReplyDelete" not in text.split()
    assert all(r.reason != "comments" for r in removed)
    assert any(r.reason == "comment controls" for r in removed)
    for paragraph in _expected("blog_page.expected.txt"):
        assert paragraph in _paragraphs(text)


def test_numbered_comment_list_before_moderation_footer_is_a_thread() -> None:
    cleaned = clean_article(_read("blog_numbered.txt"))
    assert _paragraphs(cleaned.text) == _expected("blog_numbered.expected.txt")
    assert cleaned.title == "Judge Orders Port Fee Records Released"
    assert cleaned.date == "2014-06-03"
    removed = {r.reason: r.text for r in cleaned.removals}
    assert "Too funny!" in removed["comments"]
    assert "Todo 100% Anónimo;" in removed["footer"]
    assert "Blog dedicated to reporting" in removed["navigation"]  # site tagline above the date


def test_a_numbered_list_inside_the_article_is_not_a_comment_thread() -> None:
    raw = (
        "Three steps\n\n"
        + "The plan has three steps, officials said in a statement that ran to many pages, "
        "and each of them needs money that has not yet been approved by the legislature.\n\n"
        "  1. Build a second lane.\n  2. Hire forty inspectors.\n  3. Open at night.\n\n"
        "The first step starts in May."
    )
    text, removed = clean_text(raw)
    assert "1. Build a second lane." in text and "The first step starts in May." in text
    assert all(r.reason == "title" for r in removed)


# --- mangled punctuation -------------------------------------------------------------------


def test_mangled_underscores_repaired_paragraph_by_paragraph() -> None:
    cleaned = clean_article(_read("mangled.txt"))
    assert _paragraphs(cleaned.text) == _expected("mangled.expected.txt")
    reasons = sorted(r.reason for r in cleaned.removals)
    assert reasons == ["cookie notice", "share links", "teaser", "title"]


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("They don_t know.", "They don't know."),
        ("Mexico_s drug war and they_re sure we_ve seen it, I_m told, you_ll see, she_d go",
         "Mexico's drug war and they're sure we've seen it, I'm told, you'll see, she'd go"),
        ("_We are planting a seed,_ he said.", '"We are planting a seed," he said.'),
        ("WASHINGTON _ Officials said", "WASHINGTON — Officials said"),
        ("the two countries_ deepening ties", "the two countries' deepening ties"),
        ("Mr. Calder__n_s government", "Mr. Calder__n's government"),
        ("Felipe Calder__n agreed", "Felipe Calder__n agreed"),  # a lost accent stays visible
    ],
)  # fmt: skip
def test_repair_underscores(raw: str, fixed: str) -> None:
    assert repair_underscores([raw]) == [fixed]


@pytest.mark.parametrize(
    "raw",
    [
        "Set max_file_mb and user_id in the config; is_t stays too.",
        "See https://example.org/don_t/it_s_fine and mail first_s@example.org today.",
        "Run `load_s` then `x_t`.",
        "Totals in ops_log_2011.csv and col_2_s.",
    ],
)
def test_repair_underscores_leaves_identifiers_and_urls(raw: str) -> None:
    assert repair_underscores([raw]) == [raw]


def test_quote_pairs_only_within_a_paragraph_and_only_balanced() -> None:
    out = repair_underscores(["_Opened here, never closed", "and a stray one,_ he said."])
    assert out == ["_Opened here, never closed", "and a stray one,_ he said."]


def test_underscore_quotes_left_alone_when_real_quotes_exist() -> None:
    # Real quotation marks and no broken apostrophes: '_word_' is the author's emphasis.
    raw = ['He said "yes" and meant _it_ this time.']
    assert repair_underscores(raw) == raw


# --- characters and whitespace -------------------------------------------------------------


def test_normalize_chars_repairs_mojibake_and_drops_junk() -> None:
    assert normalize_chars("the borderâ€™s busiest") == "the border’s busiest"
    assert normalize_chars("a\x00b\x07c\ud800d\ufeffe") == "abcde"
    assert normalize_chars("cafe\u0301") == "café"  # NFC
    assert normalize_chars("one\r\ntwo\rthree\u2028four") == "one\ntwo\nthree\nfour"
    assert normalize_chars("“curly” and ‘single’ stay") == "“curly” and ‘single’ stay"


def test_surrogate_pairs_from_json_become_the_character() -> None:
    assert normalize_chars("smile \ud83d\ude00 lone \udc00 end") == "smile 😀 lone  end"


def test_whitespace_dehyphenation_and_hard_wrapped_lines() -> None:
    cleaned = clean_article(_read("hard_wrapped.txt"))
    assert cleaned.title == "Notes on the river trade"
    assert _paragraphs(cleaned.text) == _expected("hard_wrapped.expected.txt")


def test_whitespace_is_collapsed_and_trailing_spaces_stripped() -> None:
    text, _ = clean_text(
        "Title here\n\n\n\nFirst\t\tparagraph   has\u00a0 spaces.   \n\n\n\nSecond."
    )
    assert text == "First paragraph has spaces.\n\nSecond."


def test_first_line_is_title_only_when_it_looks_like_one() -> None:
    text, removed = clean_text("This first line is a sentence of the body.\n\nSecond paragraph.")
    assert text.startswith("This first line is a sentence of the body.")
    assert removed == []


def test_teaser_duplicated_by_the_next_paragraph_is_dropped() -> None:
    raw = "Headline\n\nThe ferry will resume service next...\n\nThe ferry will resume service next month."
    text, removed = clean_text(raw)
    assert text == "The ferry will resume service next month."
    assert [r.reason for r in removed] == ["title", "teaser"]


def test_cookie_sentence_in_an_article_about_cookies_is_kept() -> None:
    body = "Regulators said websites must ask before they set tracking cookies on a phone."
    text, _ = clean_text(f"Privacy rules\n\n{body}")
    assert text == body


def test_markdown_markup_stripped_and_front_matter_read() -> None:
    cleaned = clean_article(_read("river_notes.md"), markdown=True)
    assert _paragraphs(cleaned.text) == _expected("river_notes.expected.txt")
    assert cleaned.title == "Field notes from the delta"
    assert cleaned.date == "2013-04-09"
    assert cleaned.author == "Dana Whitfield"
    assert {r.reason for r in cleaned.removals} == {"front matter", "image", "title"}


# --- metadata ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Thursday, May 31, 2012", "2012-05-31"),
        ("Posted on March 3, 2009", "2009-03-03"),
        ("Tuesday, May 5, 2009", "2009-05-05"),
        ("5 Sept. 2010", "2010-09-05"),
        ("2011-03-16T08:00:00Z", "2011-03-16"),
        ("Posted on March 3, 2009 at 10:05 AM", "2009-03-03"),
    ],
)
def test_date_lines(text: str, iso: str) -> None:
    assert date_line(text) == iso
    assert parse_date(text) == iso


def test_dates_that_are_not_date_lines() -> None:
    assert date_line("Mr. Obama met him on March 3, 2009 in Washington") is None
    assert parse_date("February 30, 2010") is None
    assert parse_date("no date here") is None


@pytest.mark.parametrize(
    ("line", "author"),
    [
        ("By Jane Roe", "Jane Roe"),
        ("Posted by Chivis at 10:05 AM", "Chivis"),
        ("Border Watch posted by kestrel, republished from The Ledger  By Maria Ortega",
         "Maria Ortega"),
    ],
)  # fmt: skip
def test_author_from_byline(line: str, author: str) -> None:
    assert author_from_byline(line) == author


# --- invariants ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_clean_text_invariants(raw: str) -> None:
    text, removed = clean_text(raw)
    assert "\x00" not in text
    assert not any("\ud800" <= c <= "\udfff" for c in text)
    assert "\n\n\n" not in text
    assert all(line == line.strip() for line in text.split("\n"))
    assert all(r.reason and r.text for r in removed)


def test_long_lines_do_not_hang() -> None:
    raw = "Title\n\n" + ("word " * 20_000) + "\n\n" + ("x" * 100_000)
    text, _ = clean_text(raw)
    assert len(text) > 190_000


def test_table_rows_and_subheadings_inside_the_body_are_kept() -> None:
    body = [
        "The port publishes its fees every year, and this year the table runs to three columns "
        "and a dozen rows, more than ever before in the history of the crossing.",
        "Trucks | Buses | Cars",
        "Home",
        "Search",
        "The fees take effect in January.",
    ]
    text, _ = clean_text("Port fees\n\n" + "\n\n".join(body))
    assert text.split("\n\n") == body


def test_dated_line_with_trailing_author_gives_date_and_author() -> None:
    from rag.ingest.cleaning import clean_article

    raw = (
        "Harbor Bridge reopens\n\nPosted on March 3, 2021 by Staff Writer\n\n"
        "The bridge reopened on Wednesday after two years of work.\n"
    )
    cleaned = clean_article(raw)
    assert cleaned.date == "2021-03-03"
    assert cleaned.author == "Staff Writer"
    assert "Posted on" not in cleaned.text
    assert cleaned.text.startswith("The bridge reopened")
