"""The extractive answerer on hand-made passages, with the fake embedder."""

from __future__ import annotations

import pytest

from rag.answer.abstention import ABSTENTION
from rag.answer.extractive import ExtractiveAnswerer, head_terms
from rag.answer.kinds import answer_kind, asks_what_called
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
        # plural heads, heads after a count, other kinds of names
        ("What three stadiums were considered?", "place"),
        ("What prize did she win?", "name"),
        ("What does AFC stand for?", "name"),
        ("What radio station carried the game?", "organisation"),
        # a sort of thing is not a name
        ("What type of unions does the church ban?", "other"),
        ("What is the dialect of the city known as?", "name"),
        ("Why is the tower known as the Needle?", "other"),
    ],
)
def test_answer_kind(question: str, kind: str) -> None:
    assert answer_kind(question) == kind


# ---------------------------------------------------------------------------- typed reading

from pathlib import Path  # noqa: E402

from rag.answer.context import refers_back  # noqa: E402
from rag.answer.entities import find_entities  # noqa: E402
from rag.serialize import answer_json  # noqa: E402

ANSWERS = Path(__file__).parent / "fixtures" / "answers"


def fixture_hits(name: str) -> list[Hit]:
    text = (ANSWERS / name).read_text(encoding="utf-8")
    return hits_for(text, title=text.splitlines()[0], parts=0)


def test_quote_reaches_back_to_the_sentence_it_refers_to(answerer: ExtractiveAnswerer) -> None:
    hits = fixture_hits("harbor_awards.txt")
    answer = answerer.answer("Which film won best picture?", hits)
    first = answer.citations[0]
    # One contiguous verbatim span: the naming sentence and the one that refers back to it.
    assert first.quote == (
        "The movie Harbor Lights dominated the ceremony. "
        "The blockbuster won best picture and best director."
    )
    text = hits[0].article.text
    assert text[first.start : first.end] == first.quote
    assert answer.short_answer == "Harbor Lights"
    assert text[answer.short_answer_start : answer.short_answer_end] == "Harbor Lights"
    assert first.start <= answer.short_answer_start < answer.short_answer_end <= first.end


@pytest.mark.parametrize(
    "question, short",
    [
        ("How many passengers did the ferry carry on its first crossing?", "212"),
        ("When did the Tidewater ferry return to service?", "March 3"),
        ("Who oversees the Tidewater crossing?", "Lucia Brandt"),
    ],
)
def test_short_answer_is_the_entity_of_the_kind_asked_for(
    answerer: ExtractiveAnswerer, question: str, short: str
) -> None:
    hits = fixture_hits("ferry_service.txt")
    answer = answerer.answer(question, hits)
    assert answer.short_answer.startswith(short)
    assert answer.short_answer in answer.citations[0].quote
    assert answer.confidence is not None and 0.0 <= answer.confidence <= 1.0


def test_untyped_question_has_no_short_answer(answerer: ExtractiveAnswerer) -> None:
    answer = answerer.answer("Why was the ferry out of service?", fixture_hits("ferry_service.txt"))
    assert not answer.abstained and answer.short_answer == ""
    assert answer.short_answer_start is None


def test_sentence_that_is_a_question_is_never_the_answer(answerer: ExtractiveAnswerer) -> None:
    text = (
        "Harbor notes\n\nHow many passengers did the ferry carry?\n\n"
        "Officials counted the crowd at the dock. The ferry carried 212 passengers."
    )
    answer = answerer.answer("How many passengers did the ferry carry?", hits_for(text, parts=0))
    assert all(not c.quote.endswith("?") for c in answer.citations)


def test_quote_outside_the_hit_carries_its_own_passage(answerer: ExtractiveAnswerer) -> None:
    # Only the paragraph with the surname is retrieved; the full name is in another paragraph.
    hits = hits_for(STORY, parts=0)[2:3]
    answer = answerer.answer(
        "Who leads the Sonora contingent of the federal preventive police?", hits
    )
    assert "Armando Trevino" in answer.text
    for c in answer.citations:
        assert STORY[c.passage_start : c.passage_start + len(c.passage)] == c.passage
        assert c.quote in c.passage
        if not hits[0].chunk.start <= c.start < hits[0].chunk.end:
            assert c.chunk_id != hits[0].chunk.id  # not shown as the retrieved passage


def test_answer_json_has_the_short_answer_inside_the_quote(answerer: ExtractiveAnswerer) -> None:
    hits = fixture_hits("harbor_awards.txt")
    out = answer_json(answerer.answer("Which film won best picture?", hits))
    text = hits[0].article.text
    assert out["short_answer"] == text[out["short_answer_start"] : out["short_answer_end"]]
    first = out["citations"][0]
    assert first["start"] <= out["short_answer_start"] < out["short_answer_end"] <= first["end"]
    assert first["passage"][first["start"] - first["passage_start"] :].startswith(first["quote"])
    assert 0.0 <= out["confidence"] <= 1.0


@pytest.mark.parametrize(
    "sentence, back",
    [
        ("He has 2,000 officers under his command.", True),
        ("The blockbuster won best picture.", True),
        ("The 69-year-old lean, white-haired, retired army general leads the unit.", True),
        ("It was the first time.", True),
        ("The Broncos won the game.", False),
        ("Police chiefs met in Nogales on Tuesday.", False),
    ],
)
def test_refers_back(sentence: str, back: bool) -> None:
    assert refers_back(sentence) is back


def test_entities() -> None:
    found = {
        (e.text, e.kind)
        for e in find_entities(
            "Mexican federal police Cmdr. Armando Trevino said on February 7, 2016, that "
            "$216,000 went to the University of Wittenberg in the 1960s, about 6.4 nanometers."
        )
    }
    assert ("Cmdr. Armando Trevino", "person") in found
    assert ("February 7, 2016", "date") in found
    assert ("$216,000", "number") in found
    assert ("University of Wittenberg", "organisation") in found
    assert ("1960s", "date") in found
    assert ("6.4 nanometers", "number") in found


def test_initials_keep_their_period_and_a_sentence_end_is_dropped() -> None:
    names = [e.text for e in find_entities("Trevino plans bases south of the U.S. outposts.")]
    assert names == ["Trevino", "U.S."]
    assert [e.text for e in find_entities("He moved to the U.S.")] == ["U.S."]


from rag.answer.short import counted_terms, short_answer  # noqa: E402
from rag.text.tokens import tokenize  # noqa: E402


def _short(question: str, text: str) -> str | None:
    span = short_answer(
        answer_kind(question),
        text,
        (0, len(text)),
        set(tokenize(question)),
        counted_terms=counted_terms(question),
        head_terms=head_terms(question),
        called=asks_what_called(question),
    )
    return None if span is None else text[span[0] : span[1]]


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        # the number that counts what was asked, not the first or the nearest number
        (
            "How many turnovers did the Harriers force in the final?",
            "The Harriers won 49-15 in the final, gaining 487 yards and forcing seven turnovers.",
            "seven",
        ),
        # "one of" counts nothing; the unit the question names is left out
        (
            "How many yards did Okafor run for last season?",
            "Okafor had one of his best seasons, running for 1,204 yards and catching 31 passes.",
            "1,204",
        ),
        # a unit the question does not name stays
        (
            "How many crossed the bridge on Sunday?",
            "On Sunday 4,500 people crossed the bridge in 3 hours.",
            "4,500 people",
        ),
    ],
)
def test_short_answer_to_how_many_is_the_counted_number(
    question: str, text: str, expected: str
) -> None:
    assert _short(question, text) == expected


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        (
            "Who founded the Alder Press?",
            "The Alder Press was founded by Maria Okafor and Tomas Lindqvist in 1921.",
            "Maria Okafor and Tomas Lindqvist",
        ),
        (
            "Which countries supplied the turbines?",
            "The turbines came from Denmark, Germany and Spain, the council said.",
            "Denmark, Germany and Spain",
        ),
        # a place inside a place, after "in"
        (
            "Where did the ferry company open its first office?",
            "The ferry company opened its first office in Port Alder, Maine, in 1988.",
            "Port Alder, Maine",
        ),
        # commas without "and" between two people are not a list
        (
            "Who chaired the inquiry?",
            "The inquiry was chaired by Ruth Adeyemi, Lena Park said on Monday.",
            "Ruth Adeyemi",
        ),
    ],
)
def test_short_answer_takes_the_whole_list_a_name_stands_in(
    question: str, text: str, expected: str
) -> None:
    assert _short(question, text) == expected


def test_a_refusal_under_filters_names_them() -> None:
    from rag.answer.abstention import KEY_TERMS_MISSING, abstain, under_filters
    from rag.types import Filters

    hits = hits_for("The ferry runs at dawn. The bridge opened in May.")
    f = Filters(source="002_*", date_from="2009-01-01")
    assert f.describe() == "source matching “002_*”, dated from 2009-01-01"
    missing = under_filters(abstain("q", hits, (KEY_TERMS_MISSING,)), f)
    assert missing.notes == (
        f"{KEY_TERMS_MISSING} that pass the filters (source matching “002_*”, dated from "
        "2009-01-01)",
    )
    low = under_filters(abstain("q", hits, ("confidence 0.10 is below 0.30",)), f)
    assert low.notes[-1].endswith("were searched (source matching “002_*”, dated from 2009-01-01)")
    assert under_filters(abstain("q", []), f).notes == (
        "no indexed article passes the filters (source matching “002_*”, dated from 2009-01-01)",
    )
    unfiltered = abstain("q", hits, (KEY_TERMS_MISSING,))
    assert under_filters(unfiltered, Filters()) is unfiltered


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        # the noun asked by ("prize") belongs to the answer, not to the question's own words
        (
            "What prize did Ada Brandt win?",
            "Ada Brandt won the Nobel Prize in 1998, the Royal Society said.",
            "Nobel Prize",
        ),
        # the name that holds the noun asked by wins over a nearer name
        (
            "What festival does the brewery run in April?",
            "Each April the brewery runs the Harbour Beer Festival with Alder Brewing.",
            "Harbour Beer Festival",
        ),
    ],
)
def test_short_answer_is_the_name_that_holds_the_noun_asked_by(
    question: str, text: str, expected: str
) -> None:
    assert _short(question, text) == expected


def test_asked_what_it_is_called_the_answer_is_the_name_given_after_called() -> None:
    question = "What is the dialect of the city known as?"
    said = "Harold Pike says the city's dialect, known as Geordie, came from its miners."
    assert _short(question, said) == "Geordie"
    # a name that is not given as what it is called answers nothing
    assert _short(question, "Harold Pike studied the city's dialect for the BBC.") is None


def test_where_someone_is_based_is_not_a_sentence_about_bases(
    answerer: ExtractiveAnswerer,
) -> None:
    text = (
        "Ortega plans to open two bases south of the river.\n\n"
        "The agents will travel to Ortega's headquarters in Hermosillo."
    )
    answer = answerer.answer("Where is Ortega based?", hits_for(text, parts=0))
    assert "Hermosillo" in answer.citations[0].quote
    assert answer.short_answer == "Hermosillo"
