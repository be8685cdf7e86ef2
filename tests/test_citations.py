"""Citation verification of LLM answers, with hand-made hits and a word-overlap similarity."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.answer.abstention import ABSTENTION, is_abstention
from rag.answer.citations import candidate_spans, parse_marker, strip_markers, verify
from rag.text.sentences import split_sentences
from rag.types import Article, Chunk, Hit, content_hash

_SMALL = {"the", "a", "an", "is", "was", "of", "in", "on", "to", "and", "by", "at", "for", "it"}


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _SMALL}


def overlap(sentence: str, spans: Sequence[str]) -> list[float]:
    """Share of the sentence's content words found in each span (containment, 0..1)."""
    s = words(sentence)
    return [len(s & words(span)) / len(s) if s else 0.0 for span in spans]


def make_hit(text: str, title: str = "T", source: str = "a.txt", prefix: str = "", **kw) -> Hit:
    """A hit whose chunk is ``text`` placed after ``prefix`` inside the article (offsets matter)."""
    full = prefix + text + "\n\nA closing paragraph that nobody cites."
    article = Article(id=content_hash(full), source=source, title=title, text=full, **kw)
    chunk = Chunk(
        id=content_hash(text),
        article_id=article.id,
        ordinal=0,
        start=len(prefix),
        end=len(prefix) + len(text),
        text=text,
    )
    return Hit(chunk=chunk, article=article, score=1.0)


FERRY = make_hit(
    "The harbour ferry resumed service on Monday after three weeks of repairs. "
    "Crossings run every forty minutes. The operator is Bay Lines.",
    title="Ferry back",
    source="ferry.txt",
    prefix="Intro paragraph about the harbour.\n\n",
)
MINE = make_hit(
    "Cmdr. Ortiz leads the Sonora contingent. He is based in Hermosillo.",
    title="Sonora",
    source="sonora.txt",
    prefix="Background. ",
)
BUDGET = make_hit(
    "The U.S. budget office estimated costs at 3.5 billion dollars. Critics disagreed.",
    title="Budget",
    source="budget.txt",
)
HITS = (FERRY, MINE, BUDGET)


def run(text: str, hits: Sequence[Hit] = HITS, threshold: float = 0.6):
    return verify(text, hits, overlap, threshold)


# --- sentence splitting ---------------------------------------------------------------------


def texts(text: str, **kw) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text, **kw)]


def test_split_keeps_abbreviations_initials_and_decimals_together():
    text = (
        "Cmdr. Ortiz met Mr. J. Smith in the U.S. Army base. Costs rose 3.5 percent! "
        'Was it "enough?" Nobody knew. 2024 was worse.'
    )
    assert texts(text) == [
        "Cmdr. Ortiz met Mr. J. Smith in the U.S. Army base.",
        "Costs rose 3.5 percent!",
        'Was it "enough?"',
        "Nobody knew.",
        "2024 was worse.",
    ]


def test_split_breaks_at_lines_and_needs_a_capital_after_the_stop():
    assert texts("First line\nsecond line. still second. Third") == [
        "First line",
        "second line. still second.",
        "Third",
    ]


def test_split_with_markers_keeps_citations_with_their_sentence():
    text = "He is based there. [1] The next one [2]. Last.[3][1] End"
    assert texts(text, markers=True) == [
        "He is based there. [1]",
        "The next one [2].",
        "Last.[3][1]",
        "End",
    ]


@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\"'[]1U.S")), max_size=80))
def test_split_spans_are_ordered_trimmed_and_inside_the_text(text):
    spans = split_sentences(text, markers=True)
    last = 0
    for a, b in spans:
        assert last <= a < b <= len(text)
        assert not text[a].isspace() and not text[b - 1].isspace()
        last = b
    # nothing but whitespace is lost between spans
    covered = "".join(text[a:b] for a, b in spans)
    assert re.sub(r"\s", "", covered) == re.sub(r"\s", "", text)


def test_candidate_spans_are_sentences_then_adjacent_pairs():
    text = MINE.chunk.text
    spans = [text[a:b] for a, b in candidate_spans(text)]
    assert spans == [
        "Cmdr. Ortiz leads the Sonora contingent.",
        "He is based in Hermosillo.",
        text,
    ]


# --- markers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "numbers"),
    [
        ("[3]", [3]),
        ("[1, 2]", [1, 2]),
        ("[2-4]", [2, 3, 4]),
        ("[1,3–4]", [1, 3, 4]),
        ("[ 7 ]", [7]),
    ],
)
def test_parse_marker(marker, numbers):
    assert parse_marker(marker) == numbers


def test_strip_markers_tidies_spacing():
    assert strip_markers("Ortiz leads it [1][2]. Then [3, 4] more [5-6] .") == (
        "Ortiz leads it. Then more."
    )


# --- verification -----------------------------------------------------------------------------


def test_supported_answer_gets_verbatim_quotes_with_article_offsets():
    v = run("Cmdr. Ortiz leads the Sonora contingent [2]. He is based in Hermosillo [2].")
    assert not v.abstained
    assert v.text == "Cmdr. Ortiz leads the Sonora contingent [1]. He is based in Hermosillo [1]."
    assert [s.supported for s in v.sentences] == [True, True]
    assert all(s.support == pytest.approx(1.0) for s in v.sentences)
    (c,) = v.citations
    assert c.n == 1 and c.source == "sonora.txt" and c.chunk_id == MINE.chunk.id
    assert c.passage == MINE.chunk.text and c.passage_start == MINE.chunk.start
    assert MINE.article.text[c.start : c.end] == c.quote
    assert c.quote in ("Cmdr. Ortiz leads the Sonora contingent.", "He is based in Hermosillo.")
    assert c.start > MINE.chunk.start - 1  # offsets are in the article, past the prefix


def test_citations_are_renumbered_in_order_of_first_use():
    v = run(
        "Bay Lines runs the ferry [1]. Costs were 3.5 billion dollars [3]. Ortiz leads it [2, 3]."
    )
    assert [c.source for c in v.citations] == ["ferry.txt", "budget.txt", "sonora.txt"]
    assert [c.n for c in v.citations] == [1, 2, 3]
    assert [s.citations for s in v.sentences] == [(1,), (2,), (3, 2)]
    assert "[3, 2]" in v.text and "[2]." in v.text


def test_out_of_range_citation_is_removed_and_reported():
    v = run("The ferry resumed service on Monday [7]. Crossings run every forty minutes [1].")
    assert "removed citation [7]: no such passage" in v.notes
    assert "[7]" not in v.text
    assert v.text.startswith("The ferry resumed service on Monday. ")
    first, second = v.sentences
    assert first.citations == () and not first.supported  # its only citation was invalid
    assert second.citations == (1,) and second.supported
    assert [c.source for c in v.citations] == ["ferry.txt"]


def test_range_and_adjacent_markers_are_parsed():
    v = run("Ortiz leads the Sonora contingent [1-2]. Critics disagreed [3][2].")
    assert [s.citations for s in v.sentences] == [(1, 2), (3, 2)]
    assert [s.supported for s in v.sentences] == [True, True]


def test_claim_not_in_the_cited_passage_is_flagged():
    v = run("The ferry resumed service on Monday [1]. The ferry is run by trained dolphins [1].")
    assert not v.abstained
    ok, bad = v.sentences
    assert ok.supported and not bad.supported
    assert bad.support is not None and bad.support < 0.6
    assert any("not supported" in n for n in v.notes)


def test_uncited_sentence_is_unsupported():
    v = run("The ferry resumed service on Monday [1]. It is the best ferry in the world.")
    assert [s.supported for s in v.sentences] == [True, False]
    assert v.sentences[1].support is None and v.sentences[1].citations == ()


def test_claim_spanning_two_sentences_matches_the_adjacent_pair():
    claim = "Crossings run every forty minutes and the operator is Bay Lines [1]."
    v = run(claim)
    assert v.sentences[0].supported
    assert v.citations[0].quote == "Crossings run every forty minutes. The operator is Bay Lines."


def test_no_citations_at_all_abstains():
    v = run("The ferry is back. Everyone is happy.")
    assert v.abstained and v.text == ABSTENTION
    assert v.citations == () and v.sentences == ()


def test_model_abstention_is_recognised_with_markers_or_curly_quote():
    assert is_abstention("The indexed articles don’t answer this [1].")
    v = run("The indexed articles don't answer this.")
    assert v.abstained and v.text == ABSTENTION and v.citations == ()


def test_empty_reply_abstains():
    assert run("   ").abstained


def test_foreign_links_are_removed_but_article_addresses_kept():
    own = make_hit("The ferry resumed service on Monday.", url="https://news.example/ferry")
    v = run(
        "The ferry resumed service on Monday [1], see https://news.example/ferry. "
        "Details at https://evil.example/x [1].",
        hits=[own],
    )
    assert "https://news.example/ferry" in v.text
    assert "evil.example" not in v.text
    assert "removed link https://evil.example/x: not the address of a retrieved article" in v.notes
    assert [s.supported for s in v.sentences] == [True, False]  # the link taints its sentence


def test_threshold_is_respected():
    text = "Ortiz leads the Sonora contingent and eats pears [2]."  # 4 of 6 content words
    assert run(text, threshold=0.6).sentences[0].supported
    assert run(text, threshold=0.9).abstained


def test_similarity_must_return_one_score_per_span():
    with pytest.raises(ValueError, match="one score per candidate span"):
        verify("Ortiz [2].", HITS, lambda s, spans: [1.0], 0.5)


def always_similar(sentence: str, spans: Sequence[str]) -> list[float]:
    """Stands in for a topical embedding score that can't tell Sonora from Chihuahua."""
    return [0.9] * len(spans)


@pytest.mark.parametrize(
    ("claim", "missing"),
    [
        ("Cmdr. Ortiz leads the Chihuahua contingent [2].", "Chihuahua"),
        ("The budget office estimated costs at 4.5 billion dollars [3].", "4.5"),
        ("Ortiz is based in Mexico City [2].", "Mexico, City"),
    ],
)
def test_names_and_numbers_must_be_in_the_cited_passage(claim, missing):
    v = verify("The U.S. budget office estimated costs [3]. " + claim, HITS, always_similar, 0.6)
    assert [s.supported for s in v.sentences] == [True, False]
    assert f"not in the cited passages: {missing}" in v.notes


def test_names_may_come_from_the_title_and_numbers_ignore_thousands_commas():
    hit = make_hit("Crossings rose to 1200 a day.", title="Harbour ferry report")
    v = verify("Crossings at the Harbour rose to 1,200 a day [1].", [hit], always_similar, 0.6)
    assert v.sentences[0].supported and v.notes == ()
