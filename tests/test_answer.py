"""The extractive answerer on hand-made passages, with the fake embedder."""

from __future__ import annotations

import pytest

from rag.answer.abstention import ABSTENTION
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.kinds import answer_kind
from rag.settings import Settings
from rag.types import Article, Chunk, Hit, content_hash
from tests.conftest import HashEmbedder

STORY = (
    "Police chiefs met in Nogales on Tuesday.\n\n"
    "Mexican federal police Cmdr. Armando Trevino said the patrols would start in May. "
    "Agents from both countries will train together.\n\n"
    "Nonetheless, the visit by Trevino was full of signs that times are changing. "
    "The retired army general leads the Sonora contingent of the federal preventive police. "
    "He has 2,000 officers under his command.\n\n"
    "The program began in 2009 after a long debate."
)


def hits_for(text: str, title: str = "Border story", parts: int = 3) -> list[Hit]:
    article = Article(id=content_hash(text), source="/tmp/story.txt", title=title, text=text)
    paragraphs = []
    pos = 0
    for para in text.split("\n\n"):
        start = text.index(para, pos)
        paragraphs.append((start, start + len(para)))
        pos = start + len(para)
    hits = []
    for i, (s, e) in enumerate(paragraphs[:parts] if parts else paragraphs):
        chunk = Chunk(id=f"c{i}", article_id=article.id, ordinal=i, start=s, end=e, text=text[s:e])
        hits.append(Hit(chunk=chunk, article=article, score=1.0 - 0.1 * i))
    return hits


@pytest.fixture
def answerer() -> ExtractiveAnswerer:
    return ExtractiveAnswerer(HashEmbedder(), Settings(min_confidence=0.0))


def test_quotes_are_verbatim_with_offsets(answerer: ExtractiveAnswerer) -> None:
    hits = hits_for(STORY, parts=0)
    answer = answerer.answer("How many officers does the general command?", hits)
    assert not answer.abstained and answer.citations
    for c in answer.citations:
        assert STORY[c.start : c.end] == c.quote
        assert c.passage[c.start - c.passage_start : c.end - c.passage_start] == c.quote
        assert f"[{c.n}]" in answer.text
    assert "2,000 officers" in answer.text


def test_who_question_names_the_person_in_full(answerer: ExtractiveAnswerer) -> None:
    hits = hits_for(STORY, parts=0)
    answer = answerer.answer(
        "Who leads the Sonora contingent of the federal preventive police?", hits
    )
    assert "Armando Trevino" in answer.text
    assert "leads the Sonora contingent" in answer.text
    # The main quote comes first; the full-name sentence supports it.
    assert answer.citations[0].quote.endswith("federal preventive police.")
    for c in answer.citations:
        assert STORY[c.start : c.end] == c.quote and c.quote in c.passage


def test_abstains_when_key_terms_are_missing() -> None:
    answerer = ExtractiveAnswerer(HashEmbedder(), Settings(min_confidence=0.0, min_coverage=0.5))
    answer = answerer.answer(
        "What does the Canadian prime minister think of submarines?", hits_for(STORY)
    )
    assert answer.abstained and answer.text == ABSTENTION
    assert answer.citations == () and answer.closest
    assert answer.notes


def test_abstains_below_the_score_threshold() -> None:
    answerer = ExtractiveAnswerer(HashEmbedder(), Settings(min_confidence=1.0))
    answer = answerer.answer("Who leads the Sonora contingent?", hits_for(STORY))
    assert answer.abstained


def test_no_hits_abstains(answerer: ExtractiveAnswerer) -> None:
    assert answerer.answer("Anything?", []).abstained


def test_repeated_sentences_are_quoted_once() -> None:
    text = (
        "The bridge reopened on Wednesday after repairs.\n\n"
        "The bridge reopened on Wednesday after repairs, officials said.\n\n"
        "Traffic was light."
    )
    answerer = ExtractiveAnswerer(HashEmbedder(), Settings(min_confidence=0.0, max_quotes=3))
    answer = answerer.answer("When did the bridge reopen after repairs?", hits_for(text))
    quotes = [c.quote for c in answer.citations]
    assert sum("bridge reopened" in q for q in quotes) == 1


@pytest.mark.parametrize(
    "question, kind",
    [
        ("When did the program begin?", "date"),
        ("What year was it founded?", "date"),
        ("How many officers are there?", "number"),
        ("How far is the border?", "number"),
        ("Who leads the contingent?", "person"),
        ("Which architect designed the cathedral?", "person"),
        ("Where is he based?", "place"),
        ("In what city was the game played?", "place"),
        ("Which company bought the station?", "organisation"),
        ("What film won best picture?", "work"),
        ("What is the name of the film that won?", "work"),
        ("Why did they meet?", "other"),
        ("What did the council decide?", "other"),
    ],
)
def test_answer_kind(question: str, kind: str) -> None:
    assert answer_kind(question) == kind
