"""When sources disagree: aligned sentences, the asked-for value, answers that say so and cite both.

Hand-made passages and the fake embedder; tests/test_conflicts_eval.py runs the fixture set of
versions (tests/fixtures/conflicts) through the real model and the evaluation harness.
"""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from test_citations import overlap

from rag.answer.conflicts import aligned, answer_slots, disagreement
from rag.answer.entities import find_entities
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.llm import LLMAnswerer, build_messages
from rag.serialize import answer_json
from rag.settings import Settings
from rag.text.tokens import tokenize
from rag.text.versions import fact_differences
from rag.types import Answer, Article, Chunk, FactChange, Hit, OtherVersion, content_hash
from tests.conftest import HashEmbedder

FERRY = (
    "The evening ferry from Port Alder ran aground on a sandbar on Tuesday night, the harbour "
    "authority said. The ferry carried {n} passengers and a crew of {crew} when it struck the "
    "bar.\n\nRescue boats from Gull Point reached the vessel within forty minutes.\n\n"
    "The harbour master, Elena Varga, said the channel had been dredged last autumn."
)


def article(
    text: str, source: str, date: str | None = None, title: str = "Ferry aground"
) -> Article:
    return Article(id=content_hash(text), source=source, title=title, text=text, date=date)


def hits_of(
    *articles: Article, versions: dict[str, tuple[OtherVersion, ...]] | None = None
) -> list[Hit]:
    """One hit per paragraph of each article, articles in turn, scores falling."""
    hits = []
    for a in articles:
        pos = 0
        for i, para in enumerate(a.text.split("\n\n")):
            start = a.text.index(para, pos)
            pos = start + len(para)
            chunk = Chunk(f"{a.id[:8]}-{i}", a.id, i, start, pos, para)
            hits.append(
                Hit(chunk, a, 1.0 - 0.01 * len(hits), versions=(versions or {}).get(a.id, ()))
            )
    hits.sort(key=lambda h: (h.chunk.ordinal, -h.score))  # passage by passage, as search would
    return hits


@pytest.fixture
def answerer() -> ExtractiveAnswerer:
    return ExtractiveAnswerer(HashEmbedder(), Settings(min_confidence=0.0))


def q_terms(question: str) -> set[str]:
    return set(tokenize(question))


# --- aligned sentences and the value asked for ---------------------------------------------------


def test_one_sentence_in_two_versions_is_aligned_and_different_sentences_are_not() -> None:
    a = "The ferry carried 212 passengers and a crew of nine when it struck the bar."
    assert aligned(a, a.replace("212", "231")) == 1.0
    assert (
        aligned(
            "A new gallery, funded by William and Judith Bollinger, opened in May.",
            "A new gallery, funded by Astra, opened in May.",
        )
        >= 0.8
    )  # one value swapped
    assert aligned(a, "Rescue boats from Gull Point reached the vessel within forty minutes.") < 0.3
    assert (
        aligned(a, "The ferry was built in 1998 and carried cars and lorries to the islands.") < 0.8
    )


def test_the_disagreement_is_the_value_asked_for() -> None:
    question = "How many passengers did the ferry carry?"
    a = "The ferry carried 212 passengers and a crew of nine when it struck the bar."
    slots = answer_slots("number", a, q_terms(question), find_entities)
    d = disagreement("number", q_terms(question), a, a.replace("212", "231"), find_entities, slots)
    assert d is not None and d.kind == "number"
    assert a[slice(*d.here)] == "212 passengers"  # the question's noun comes with the number
    # The crew changed, the passengers did not: that is not what was asked.
    crew = a.replace("crew of nine", "crew of eleven")
    assert disagreement("number", q_terms(question), a, crew, find_entities, slots) is None
    # A date changed: not a number the question asks for.
    dated = "The ferry carried 212 passengers in March 2009."
    other = dated.replace("March", "May")
    assert disagreement("number", q_terms(question), dated, other, find_entities, ()) is None
    assert (
        disagreement(
            "date",
            q_terms("When did the ferry carry 212 passengers?"),
            dated,
            other,
            find_entities,
            answer_slots(
                "date", dated, q_terms("When did the ferry carry 212 passengers?"), find_entities
            ),
        )
        is not None
    )


def test_a_value_the_question_names_is_not_its_answer() -> None:
    question = "Who did the US aid against the Soviet Union?"
    a = "The US spent billions to aid the mujahideen against the Soviet Union, officials said."
    b = a.replace("Soviet Union", "Soviet Harrow")
    for x, y in ((a, b), (b, a)):
        slots = answer_slots("person", x, q_terms(question), find_entities)
        assert disagreement("person", q_terms(question), x, y, find_entities, slots) is None


def test_harmless_reprints_never_disagree() -> None:
    a = "The union’s regional secretary, José Barreiro, said on Thursday that “nobody wants to strike.”"
    b = 'The union\'s regional secretary, Jose Barreiro, said today that "nobody wants to strike".'
    question = "Who is the union's regional secretary?"
    assert fact_differences(a, b) == []
    assert (
        disagreement(
            "person",
            q_terms(question),
            a,
            b,
            find_entities,
            answer_slots("person", a, q_terms(question), find_entities),
        )
        is None
    )


# --- extractive answers --------------------------------------------------------------------------


def test_versions_that_disagree_are_both_cited_newest_first(answerer: ExtractiveAnswerer) -> None:
    v1 = article(FERRY.format(n=212, crew="nine"), "/news/ferry_v1.txt", "2021-03-04")
    v2 = article(FERRY.format(n=231, crew="nine"), "/news/ferry_v2.txt", "2021-03-05")
    ans = answerer.answer("How many passengers did the ferry carry?", hits_of(v1, v2))
    assert ans.text.startswith(
        "The sources disagree: [1] says 231 passengers (dated 2021-03-05); "
        "[2] says 212 passengers (dated 2021-03-04)."
    )
    (c,) = ans.conflicts
    assert c.values == ("231 passengers", "212 passengers") and c.citations == (1, 2)
    assert c.sources == ("/news/ferry_v2.txt", "/news/ferry_v1.txt")
    assert c.dates == ("2021-03-05", "2021-03-04") and c.kind == "number"
    texts = {"/news/ferry_v1.txt": v1.text, "/news/ferry_v2.txt": v2.text}
    for cit in ans.citations:
        assert texts[cit.source][cit.start : cit.end] == cit.quote
    for n, value, span, source in zip(c.citations, c.values, c.spans, c.sources, strict=True):
        assert texts[source][span[0] : span[1]] == value  # verbatim at its offsets
        cit = ans.citations[n - 1]
        assert cit.start <= span[0] < span[1] <= cit.end  # inside its citation's quote
    assert ans.short_answer == "231" and ans.short_answer_start is not None
    assert ans.sentences[0].citations == (1, 2)
    data = answer_json(ans)
    assert data["conflicts"] == [
        {
            "kind": "number",
            "values": ["231 passengers", "212 passengers"],
            "citations": [1, 2],
            "sources": ["/news/ferry_v2.txt", "/news/ferry_v1.txt"],
            "dates": ["2021-03-05", "2021-03-04"],
            "spans": [list(c.spans[0]), list(c.spans[1])],
        }
    ]


def test_without_dates_the_best_ranked_version_comes_first(answerer: ExtractiveAnswerer) -> None:
    v1 = article(FERRY.format(n=212, crew="nine"), "/news/a.txt")
    v2 = article(FERRY.format(n=231, crew="nine"), "/news/b.txt")
    ans = answerer.answer("How many passengers did the ferry carry?", hits_of(v1, v2))
    (c,) = ans.conflicts
    assert c.values == ("212 passengers", "231 passengers") and c.dates == (None, None)
    assert "(dated" not in ans.text


def test_a_version_that_was_not_retrieved_is_quoted_from_the_group(
    answerer: ExtractiveAnswerer,
) -> None:
    v1 = article(FERRY.format(n=212, crew="nine"), "/news/ferry_v1.txt", "2021-03-04")
    v2 = article(FERRY.format(n=231, crew="nine"), "/news/ferry_v2.txt", "2021-03-05")
    at = v1.text.index("212")
    change = FactChange("number", "212", "231", at, at + 3, at, at + 3)
    hits = hits_of(v1, versions={v1.id: (OtherVersion(v2, (change,)),)})
    ans = answerer.answer("How many passengers did the ferry carry?", hits)
    (c,) = ans.conflicts
    assert c.sources == ("/news/ferry_v2.txt", "/news/ferry_v1.txt")
    first = ans.citations[0]
    assert first.source == "/news/ferry_v2.txt" and "231 passengers" in first.quote
    assert v2.text[first.passage_start : first.passage_start + len(first.passage)] == first.passage
    assert first.quote in first.passage


def test_consistent_versions_and_unrelated_articles_raise_no_conflict(
    answerer: ExtractiveAnswerer,
) -> None:
    v1 = article(FERRY.format(n=212, crew="nine"), "/news/ferry.txt")
    reprint = article(
        FERRY.format(n=212, crew="nine")
        .replace("Tuesday night", "Tuesday night,")
        .replace("harbour master", "harbour-master"),
        "/news/reprint.txt",
    )
    other = article(
        "The island ferry carried 540 passengers on its first crossing of the season, the "
        "operator said.",
        "/news/island.txt",
        title="Island ferry season opens",
    )
    ans = answerer.answer("How many passengers did the ferry carry?", hits_of(v1, reprint, other))
    assert not ans.abstained and ans.conflicts == ()
    assert not ans.text.startswith("The sources disagree")


def test_another_fact_that_differs_is_not_a_conflict_on_what_was_asked(
    answerer: ExtractiveAnswerer,
) -> None:
    v1 = article(FERRY.format(n=212, crew="nine"), "/news/a.txt")
    v2 = article(FERRY.format(n=212, crew="eleven"), "/news/b.txt")
    ans = answerer.answer("How many passengers did the ferry carry?", hits_of(v1, v2))
    assert ans.conflicts == ()


# --- questions are never quoted as answers --------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # a headline that is a question, on its own line above the answer
        "Ferry crash: how many passengers did the ferry carry?\nThe harbour authority said on "
        "Friday that the ferry carried 212 passengers.",
        # a question in the same paragraph that the answer refers back to
        "Harbor notes\n\nHow many passengers did the ferry carry? The ferry carried 212 "
        "passengers, officials said.",
        # a headline in quote marks
        "“How many passengers did the ferry carry?”\n\nThe ferry carried 212 passengers.",
    ],
)
def test_a_question_or_headline_ending_in_a_question_mark_is_never_quoted(
    answerer: ExtractiveAnswerer, text: str
) -> None:
    a = article(text, "/news/q.txt")
    ans = answerer.answer("How many passengers did the ferry carry?", hits_of(a))
    assert not ans.abstained and "212 passengers" in ans.text
    for c in ans.citations:
        assert "?" not in c.quote, c.quote


def test_passages_that_only_ask_questions_give_no_answer(answerer: ExtractiveAnswerer) -> None:
    a = article(
        "How many passengers did the ferry carry?\n\nWho paid for the ferry that carried them?",
        "/news/q.txt",
    )
    ans = answerer.answer("How many passengers did the ferry carry?", hits_of(a))
    assert ans.abstained and ans.citations == ()


# --- LLM answers ---------------------------------------------------------------------------------


def llm(reply: str) -> LLMAnswerer:
    model = GenericFakeChatModel(messages=iter([AIMessage(content=reply)]))
    return LLMAnswerer(model, overlap, Settings(llm="openai:scripted", support_threshold=0.3))


def llm_hits() -> list[Hit]:
    v1 = article(FERRY.format(n=212, crew="nine"), "/news/ferry_v1.txt", "2021-03-04")
    v2 = article(FERRY.format(n=231, crew="nine"), "/news/ferry_v2.txt", "2021-03-05")
    return [h for h in hits_of(v1, v2) if h.chunk.ordinal == 0]


def test_the_prompt_asks_to_say_when_passages_disagree_and_dates_them() -> None:
    system, human = build_messages("How many passengers?", llm_hits())
    assert "disagree" in str(system.content) and "cite each passage" in str(system.content)
    assert "(/news/ferry_v1.txt, dated 2021-03-04)" in str(human.content)


def test_an_llm_answer_citing_both_sides_records_the_conflict() -> None:
    reply = "The sources disagree: the ferry carried 231 passengers [2] or 212 passengers [1]."
    ans = llm(reply).answer("How many passengers did the ferry carry?", llm_hits())
    assert not ans.abstained
    (c,) = ans.conflicts
    assert c.sources == ("/news/ferry_v2.txt", "/news/ferry_v1.txt")  # newer first
    assert {c.values[0], c.values[1]} == {"231 passengers", "212 passengers"}
    assert not any("cites only" in n for n in ans.notes)


def test_an_llm_answer_citing_one_side_is_noted() -> None:
    ans = llm("The ferry carried 212 passengers [1].").answer(
        "How many passengers did the ferry carry?", llm_hits()
    )
    assert not ans.abstained and ans.conflicts == ()
    (note,) = [n for n in ans.notes if "cites only" in n]
    assert "212 passengers" in note and "231 passengers" in note and "ferry_v2.txt" in note


def test_answer_json_has_an_empty_conflicts_list_by_default() -> None:
    ans = Answer(question="q", text="t", citations=(), abstained=True)
    assert answer_json(ans)["conflicts"] == []


def test_a_name_that_opens_the_sentence_is_compared_too() -> None:
    question = "Who is viewed as the first modern geologist?"
    a = "James Hutton is often viewed as the first modern geologist."
    b = "John Playfair is often viewed as the first modern geologist."
    slots = answer_slots("person", a, q_terms(question), find_entities)
    d = disagreement("person", q_terms(question), a, b, find_entities, slots)
    assert d is not None and (a[slice(*d.here)], b[slice(*d.there)]) == (
        "James Hutton",
        "John Playfair",
    )
    # A sentence that opens otherwise is another sentence, not a version of it.
    c = "In Scotland he is often viewed as the first modern geologist."
    assert disagreement("person", q_terms(question), a, c, find_entities, slots) is None


def test_one_pattern_about_two_things_is_not_two_versions() -> None:
    a = "Residents of Dunmore counted 1092 visitors at the harbour wall last year."
    b = "Residents of Farrow counted 299 visitors at the harbour wall last year."
    assert aligned(a, b) == 0.0  # the place and the count differ: two statements, not versions
    question = "How many visitors did residents count at the harbour wall?"
    slots = answer_slots("number", a, q_terms(question), find_entities)
    assert disagreement("number", q_terms(question), a, b, find_entities, slots) is None
