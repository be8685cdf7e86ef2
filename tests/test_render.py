"""Rendering for the page: escaping of untrusted text, highlights, chips, cards, copy text, upload names."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.types import Answer, AnswerSentence, Article, Chunk, Citation, Hit
from ui.render import (
    Span,
    anchor,
    answer_html,
    answer_with_sources,
    escape,
    highlight,
    hit_card_html,
    source_cards_html,
    source_label,
    term_spans,
)

ARTICLE = (
    "Bridge reopens\n\nChief engineer Maria Lindqvist led the crew of 140 workers. "
    "The toll is $5 and $x$ stays text. See [x](javascript:alert(1)) <script>alert(1)</script>."
)


def visible(markup: str) -> str:
    """What a browser shows: tags dropped, entities decoded, <br> as newlines."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup.replace("<br>", "\n")))


def cite(n: int, quote: str, text: str = ARTICLE, chunk_id: str = "c1", **kw: object) -> Citation:
    start = text.index(quote)
    fields: dict[str, object] = dict(
        n=n,
        source="/data/articles/bridge.txt",
        title="Bridge reopens",
        passage=text,
        passage_start=0,
        quote=quote,
        start=start,
        end=start + len(quote),
        score=0.9,
        article_id="a1",
        chunk_id=chunk_id,
        date="2021-03-03",
    )
    fields.update(kw)
    return Citation(**fields)  # type: ignore[arg-type]


def answer(text: str, citations: tuple[Citation, ...], sentences=()) -> Answer:  # type: ignore[no-untyped-def]
    return Answer(
        question="q", text=text, citations=citations, abstained=False, sentences=sentences
    )


# --- escaping -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "<script>alert('x')</script>",
        "[click](javascript:alert(1))",
        "<img src=x onerror=alert(1)>",
        "price $5 and $x$ and $$y$$",
        "&lt;b&gt; &amp; &#60;",
        "**bold** _it_ `code` # head > quote | t | ~~s~~",
    ],
)
def test_escape_leaves_no_markup_and_shows_the_text_as_typed(text: str) -> None:
    out = escape(text)
    assert visible(out) == text
    # Nothing HTML, markdown or Streamlit's LaTeX could interpret survives as a raw character.
    assert not set(re.sub(r"&#\d+;", "", out)) & set("<>[]()$`*_#|~\"'&")
    assert "javascript:" not in out.lower()


@given(st.text())
def test_escape_round_trips_any_text(text: str) -> None:
    out = escape(text)
    norm = text.replace("\r\n", "\n").replace("\r", "\n")
    assert visible(out) == norm
    assert "\n" not in out  # a blank line would end the HTML block in markdown
    assert not set(re.sub(r"&#\d+;", "", out.replace("<br>", ""))) & set("<>[]$`&")


def test_source_link_only_for_web_addresses() -> None:
    assert 'href="https://example.org/a?b=1&amp;c=2"' in source_label(
        "x", "https://example.org/a?b=1&c=2"
    )
    bad = source_label("notes.txt", "javascript:alert(1)")
    assert "href" not in bad and "notes.txt" in visible(bad)
    local = source_label("/data/a/b/report_1.txt")
    assert visible(local) == "report_1.txt" and 'title="/data/a/b/report_1.txt"' in local


# --- highlights ---------------------------------------------------------------------------------
def test_highlight_wraps_exact_offsets_and_escapes_around() -> None:
    text = "a <b> c"
    out = highlight(text, [Span(2, 5, "m1")])
    assert out == 'a <mark id="m1">&#60;b&#62;</mark> c'


def test_highlight_merges_overlaps_and_clips() -> None:
    text = "abcdefghij"
    out = highlight(text, [Span(2, 5, "first"), Span(4, 8, "second"), Span(8, 99), Span(50, 60)])
    assert out.count("<mark") == 2
    assert re.findall(r"<mark[^>]*>(.*?)</mark>", out) == ["cdefgh", "ij"]
    assert 'id="first"' in out and 'id="second"' not in out
    assert visible(out) == text


@given(st.text(min_size=1), st.data())
def test_highlight_never_changes_the_text(text: str, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(0, len(text)))
    out = highlight(text, [Span(min(a, b), max(a, b))])
    assert visible(out) == text.replace("\r\n", "\n").replace("\r", "\n")
    if a != b and "\r" not in text:
        assert visible(re.search(r"<mark>(.*)</mark>", out).group(1)) == text[min(a, b) : max(a, b)]  # type: ignore[union-attr]


def test_term_spans_match_stemmed_query_words() -> None:
    text = "Joint patrols began; the patrol boat and its crews patrolled."
    words = [text[s.start : s.end] for s in term_spans(text, "patrol crew")]
    assert words == ["patrols", "patrol", "crews", "patrolled"]
    assert term_spans(text, "the and") == []  # stopwords only


# --- answers and cards --------------------------------------------------------------------------
def test_chips_only_for_existing_citation_numbers() -> None:
    c1 = cite(1, "Chief engineer Maria Lindqvist led the crew of 140 workers.")
    out = answer_html(answer("Lindqvist led it [1]. Also [3] and [x].", (c1,)), "k1")
    chips = re.findall(r'<a class="cite-chip" href="#([^"]+)"[^>]*>(\d+)</a>', out)
    assert chips == [(anchor("k1", 1), "1")]
    assert "[3]" in visible(out) and "[x]" in visible(out)


def test_unsupported_sentences_are_flagged() -> None:
    c1 = cite(1, "Chief engineer Maria Lindqvist led the crew of 140 workers.")
    text = "Lindqvist led the crew [1]. She was born on Mars [1]."
    sentences = (
        AnswerSentence("Lindqvist led the crew [1].", (1,), True),
        AnswerSentence("She was born on Mars [1].", (1,), False),
    )
    out = answer_html(answer(text, (c1,), sentences), "k")
    flagged = re.search(r'<span class="unsupported"[^>]*>(.*?)</span><span', out)
    assert flagged is not None and visible(flagged.group(1)) == "She was born on Mars 1."
    assert out.count("cite-chip") == 2  # chips still work inside a flagged sentence


def test_source_card_marks_quote_in_passage_and_whole_article() -> None:
    q1 = "Chief engineer Maria Lindqvist led the crew of 140 workers."
    c1, c2 = cite(1, q1), cite(2, "The toll is $5 and $x$ stays text.")
    cards = source_cards_html(answer("A [1] B [2]", (c1, c2)), "k", {"a1": ARTICLE})
    assert len(cards) == 1  # both quotes come from the same passage: one card
    card = cards[0]
    passage_mark = re.search(rf'<mark id="{anchor("k", 1)}"[^>]*>(.*?)</mark>', card)
    full_mark = re.search(rf'<mark id="{anchor("k", 1)}-full"[^>]*>(.*?)</mark>', card)
    assert passage_mark and visible(passage_mark.group(1)) == q1
    assert full_mark and visible(full_mark.group(1)) == q1
    assert f'href="#{anchor("k", 1)}-full"' in card  # "show whole article" jumps to the quote
    assert "<script" not in card and "$" not in card and "](" not in card
    assert "bridge.txt · relevance 0.90" in visible(card) and "2021-03-03" in visible(card)


LONG = (
    "Police chief\n\nCommander Luis Trevino leads the Sonora contingent of the federal police.\n\n"
    "There's so much potential for corruption in the region, one officer said.\n\n"
    "Trevino's headquarters are in Hermosillo, the state capital."
)


def marks(markup: str) -> dict[str, str]:
    return {
        m.group(1): visible(m.group(2))
        for m in re.finditer(r'<mark id="([^"]+)"[^>]*>(.*?)</mark>', markup)
    }


@pytest.mark.parametrize("chunk_id", ["c1", "c2"])
def test_every_mark_is_exactly_its_citations_quote(chunk_id: str) -> None:
    """Quotes from two paragraphs of one article (one keeping the hit's chunk id, as the issue
    saw) get a card each, and each chip's mark holds exactly its quote, never a neighbour."""
    p1 = LONG.index("Commander")
    p2 = LONG.index("Trevino's")
    first = cite(
        1,
        "Commander Luis Trevino leads the Sonora contingent of the federal police.",
        LONG,
        passage=LONG[p1 : LONG.index("\n\nThere")],
        passage_start=p1,
    )
    q2 = "Trevino's headquarters are in Hermosillo, the state capital."
    second = cite(2, q2, LONG, chunk_id=chunk_id, passage=LONG[p2:], passage_start=p2)
    a = answer("A [1] B [2]", (first, second))
    cards = source_cards_html(a, "k", {"a1": LONG})
    assert len(cards) == 2
    found = marks("".join(cards))
    for c in a.citations:
        assert found[anchor("k", c.n)] == c.quote
        assert found[f"{anchor('k', c.n)}-full"] == c.quote
    assert "corruption" not in "".join(found.values())


def test_a_quote_outside_its_passage_is_shown_alone() -> None:
    q = "Trevino's headquarters are in Hermosillo, the state capital."
    c = cite(1, q, LONG, passage=LONG[:20], passage_start=0)  # a passage that does not hold it
    (card,) = source_cards_html(answer("A [1]", (c,)), "k")
    assert marks(card)[anchor("k", 1)] == q


def test_cards_without_article_text_and_with_also_in() -> None:
    c1 = cite(1, "Chief engineer Maria Lindqvist led the crew of 140 workers.")
    c1 = Citation(**{**c1.__dict__, "also_in": ("/x/<b>copy.txt",), "url": "https://e.org/a"})
    (card,) = source_cards_html(answer("A [1]", (c1,)), "k")
    assert 'details class="whole"' not in card
    assert "also in" in card and "<b>copy" not in card and "also in: <b>copy.txt" in visible(card)
    assert 'href="https://e.org/a"' in card


def test_hit_card_highlights_terms_and_escapes() -> None:
    art = Article(id="a1", source="s.txt", title="<i>T</i>", text=ARTICLE)
    start = ARTICLE.index("Chief")
    chunk = Chunk("c1", "a1", 0, start, len(ARTICLE), ARTICLE[start:])
    out = hit_card_html(Hit(chunk, art, 0.5), 1, "workers", "h", ARTICLE)
    assert re.findall(r"<mark[^>]*>(.*?)</mark>", out)[0] == "workers"
    assert "<i>" not in out and "<script" not in out and "$" not in out
    full = re.search(r'<mark id="h-1-full"[^>]*>(.*?)</mark>', out)
    assert full and visible(full.group(1)) == chunk.text


def test_answer_with_sources_lists_numbered_references() -> None:
    c1 = cite(1, "Chief engineer Maria Lindqvist led the crew of 140 workers.")
    c2 = cite(2, "The toll is $5 and $x$ stays text.", url="https://e.org/b", date=None)
    text = answer_with_sources(answer("Lindqvist [1]. Toll [2].", (c1, c2)))
    assert text.splitlines() == [
        "Lindqvist [1]. Toll [2].",
        "",
        "Sources:",
        "[1] Bridge reopens, 2021-03-03. /data/articles/bridge.txt. "
        "\u201cChief engineer Maria Lindqvist led the crew of 140 workers.\u201d",
        "[2] Bridge reopens. https://e.org/b. \u201cThe toll is $5 and $x$ stays text.\u201d",
    ]
    assert answer_with_sources(answer("Nothing found.", ())) == "Nothing found."


def test_short_answer_first_and_highlighted_inside_its_quote() -> None:
    from dataclasses import replace

    from ui.render import answer_html

    c1 = cite(1, "Maria Lindqvist led the crew")
    s0 = ARTICLE.index("Lindqvist")
    a = replace(
        answer("Maria Lindqvist led the crew [1]", (c1,)),
        short_answer="Lindqvist",
        short_answer_start=s0,
        short_answer_end=s0 + len("Lindqvist"),
        confidence=0.83,
    )
    out = answer_html(a, "k")
    assert out.index('<div class="short-answer"><strong>Lindqvist</strong>') < out.index(
        "led the crew"
    )
    assert 'href="#cite-k-1"' in out and "confidence 0.83 (high)" in out
    (card,) = source_cards_html(a, "k")
    # The whole quote is one mark (its chip's target); the short answer stands out inside it.
    assert (
        '<mark id="cite-k-1" class="quote">Maria <span class="short">Lindqvist</span> led the crew</mark>'
        in card
    )


# --- versions and disagreements -----------------------------------------------------------------
def test_a_disagreement_is_shown_as_a_warning_with_chips() -> None:
    from rag.types import Conflict

    c1 = cite(1, "Chief engineer Maria Lindqvist led the crew of 140 workers.", chunk_id="c1")
    c2 = cite(2, "The toll is $5 and $x$ stays text.", chunk_id="c2", source="/x/<b>v2.txt")
    lead = "The sources disagree: [1] says 140 workers; [2] says <b>$5</b>."
    conflict = Conflict(
        "number",
        ("140 workers", "<b>$5</b>"),
        (1, 2),
        (c1.source, c2.source),
        (None, None),
        ((0, 1), (0, 1)),
    )
    text = f"{lead} Chief engineer Maria Lindqvist led the crew of 140 workers. [1]"
    a = Answer(
        question="q",
        text=text,
        citations=(c1, c2),
        abstained=False,
        sentences=(AnswerSentence(lead, (1, 2)), AnswerSentence("Chief ... [1]", (1,))),
        conflicts=(conflict,),
    )
    out = answer_html(a, "k")
    box = re.search(r'<div class="conflict"[^>]*>(.*?)</div>', out)
    assert box is not None and visible(box.group(1)).startswith("⚠ The sources disagree: 1 says")
    assert box.group(1).count("cite-chip") == 2 and "<b>" not in out
    assert out.count("The sources disagree") == 1  # stated once, in the box
    # An answer whose text does not say it (an LLM's) gets a box made from its conflicts.
    llm = Answer(
        question="q",
        text="Lindqvist led it [1].",
        citations=(c1, c2),
        abstained=False,
        conflicts=(conflict,),
    )
    out = answer_html(llm, "k")
    box = re.search(r'<div class="conflict"[^>]*>(.*?)</div>', out)
    assert box is not None and "140 workers" in visible(box.group(1))
    assert "<b>" not in out and "<b>$5</b>" in visible(box.group(1))  # shown as typed


def test_also_in_shows_the_words_another_version_gives_differently() -> None:
    from rag.types import FactChange, OtherVersion

    text = "The ferry carried 212 passengers. The harbour master is Elena Varga."
    art = Article(id="a1", source="/n/ferry_v1.txt", title="Ferry", text=text)
    at, elsewhere = text.index("212"), text.index("Elena")
    v2 = OtherVersion(
        Article(id="a2", source="/n/ferry_v2.txt", title="Ferry", text=text.replace("212", "231")),
        (FactChange("number", "212", "231", at, at + 3, at, at + 3),),
    )
    reprint = OtherVersion(Article(id="a3", source="/n/reprint.txt", title="Ferry", text=text))
    v3 = OtherVersion(
        Article(id="a4", source="/n/v3.txt", title="Ferry", text=text.replace("Elena", "Ilona")),
        (FactChange("name", "Elena", "Ilona", elsewhere, elsewhere + 5, elsewhere, elsewhere + 5),),
    )
    chunk = Chunk("c1", "a1", 0, 0, text.index(" The harbour"), text[: text.index(" The harbour")])
    hit = Hit(chunk, art, 0.5, also_in=("/n/reprint.txt", "/n/v3.txt"), versions=(v2, reprint, v3))
    found = re.search(r'<div class="also-in">(.*?)</div>', hit_card_html(hit, 1))
    assert found is not None
    line = visible(found.group(1))
    assert "reprint.txt," in line and "reprint.txt —" not in line  # a plain reprint
    assert "v3.txt — differs elsewhere: Ilona (here: Elena)" in line  # listed, differs elsewhere
    assert "ferry_v2.txt — 231 (here: 212)" in line  # not listed, but differs in this passage


@pytest.mark.parametrize(
    ("quote", "shown"),
    [
        ("The crew had 140 workers.", "“The crew had 140 workers.”"),
        ('"We replaced every cable," she said.', '"We replaced every cable," she said.'),
        ("“We replaced every cable.”", "“We replaced every cable.”"),
        ("He said: ‘done’", "“He said: ‘done’”"),
    ],
)
def test_a_quote_that_opens_with_a_quotation_mark_gets_no_second_one(
    quote: str, shown: str
) -> None:
    text = f"Story\n\n{quote} More text follows here."
    c = cite(1, quote, text, passage=text, passage_start=0)
    (card,) = source_cards_html(answer("A [1]", (c,)), "k")
    summary = visible(re.search(r'<div class="card-quote">(.*?)</div>', card).group(1))  # type: ignore[union-attr]
    assert summary == shown
    assert answer_with_sources(answer("A [1]", (c,))).endswith(f". {shown}")


@pytest.mark.parametrize(
    "text",
    [
        "[click](javascript:alert(1)) now",
        "![x](http://e.org/x.png) **bold** `code` :smile: <b>hi</b> $x$ # head | t ~~s~~",
    ],
)
def test_labels_carry_no_markup(text: str) -> None:
    from ui.render import label

    out = label(text)
    assert not set(out) & set("[]()`*<>$#|~!") - set("()")  # parentheses are plain text
    assert "](" not in out and ":smile:" not in out and "**" not in out
    assert "click" in out or "bold" in out
