"""Follow-ups hold the thread: "he", "there", "the company" and "And in 2010?" resolved offline.

Rewriting is checked on its own (fast), then whole two-turn conversations over the fixture
articles in ``tests/fixtures/chat`` run through ``rag chat --json``, ``rag ask --history`` and the
page: the second answer must quote the sentence that answers the follow-up, not the first answer
again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.retrieval.followup import condense_question, looks_like_followup
from rag.retrieval.references import has_reference, resolve_references
from tests.test_cli import rag

CHAT_ARTICLES = Path(__file__).resolve().parent / "fixtures" / "chat"
TREVINO = (
    "Commander Luis Trevino leads the Sonora contingent of the federal preventive police, a "
    "force of about 1,800 officers that patrols the border with Arizona. [1]"
)


# --- rewriting ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("previous", "answer", "question", "expected"),
    [
        # a person named by the answer to a "who" question, by surname as the article goes on
        ("Who leads the Sonora contingent?", TREVINO, "Where is he based?", "Where is Trevino based?"),
        ("Who leads the Sonora contingent?", TREVINO, "and what is his rank?",
         "What is Trevino's rank?"),
        ("Who runs Northgate Minerals?", "Chief executive Helena Marsh said so. [1]",
         "When did she join the company?", "When did Marsh join Northgate Minerals?"),
        ("Who runs Northgate Minerals?", "Chief executive Helena Marsh said so. [1]",
         "What is her title?", "What is Marsh's title?"),
        # a firm named by the question is not "she" ("Minerals" says it is a firm)
        ("What does Northgate Minerals mine?", "Copper, chief executive Helena Marsh said. [1]",
         "When did she join?", "When did Marsh join?"),
        # a place the answer named, for "there"; the question's subject for "it"
        ("Which town hosts the Lantern Festival?", "It is held in the town of Westerby. [1]",
         "How many people live there?", "How many people live in Westerby?"),
        ("Which town hosts the Lantern Festival?", "It is held in the town of Westerby. [1]",
         "When was it founded?", "When was Lantern Festival founded?"),
        ("What does Northgate Minerals mine?", "Copper, at the Ridgeback pit. [1]",
         "Where is the company based?", "Where is Northgate Minerals based?"),
        # ellipsis: the previous question again, with the new piece in place of the old one
        ("How much copper did Northgate Minerals produce in 2009?", "40,000 tonnes. [1]",
         "And in 2010?", "How much copper did Northgate Minerals produce in 2010?"),
        ("How much copper did Northgate Minerals produce?", "52,000 tonnes. [1]",
         "What about 2009?", "How much copper did Northgate Minerals produce in 2009?"),
        ("How many people live in Calder?", "About 9,000. [1]", "And Westerby?",
         "How many people live in Westerby?"),
        ("Who leads the Sonora contingent?", TREVINO, "What about his deputy?",
         "Who leads the Sonora contingent, and Trevino's deputy?"),
    ],
)  # fmt: skip
def test_references_are_resolved_in_plain_words(
    previous: str, answer: str, question: str, expected: str
) -> None:
    assert looks_like_followup(question)
    assert condense_question(question, [(previous, answer)]) == expected


@pytest.mark.parametrize(
    "question", ["Is there a museum in the town?", "Were there any arrests?", "What happened?"]
)
def test_existential_there_and_plain_questions_resolve_nothing(question: str) -> None:
    assert resolve_references(question, "Which town hosts the festival?", "Westerby. [1]") is None


def test_an_abstention_names_nothing() -> None:
    answer = "The indexed articles don't answer this."
    assert resolve_references("Where is he based?", "Who leads it?", answer) is None
    assert has_reference("Where is the company based?") and not has_reference("Is there a fee?")


# --- whole conversations ------------------------------------------------------------------------
# (first question, follow-up, a word the rewrite must name, a word the follow-up's quote must hold)
CONVERSATIONS = [
    ("Who leads the Sonora contingent of the federal preventive police?", "Where is he based?",
     "Trevino", "Hermosillo"),
    ("Who is the chief executive of Northgate Minerals?", "When did she join the company?",
     "Marsh", "2004"),
    ("How much copper did Northgate Minerals produce in 2009?", "And in 2010?", "2010", "52,000"),
    ("Which town hosts the Lantern Festival?", "What is the population there?", "Westerby",
     "14,000"),
    ("Who founded the Lantern Festival?", "When did she found it?", "Holloway", "1987"),
]  # fmt: skip


def check_turns(first: dict, second: dict, named: str, answer_word: str) -> None:  # type: ignore[type-arg]
    assert not first["abstained"] and not second["abstained"], second
    assert named in (second["standalone_question"] or ""), second["standalone_question"]
    assert answer_word in second["citations"][0]["quote"], second["answer"]
    if answer_word not in first["answer"]:
        assert second["answer"] != first["answer"]  # not the first answer again


@pytest.fixture(scope="module")
def chat_index(tmp_path_factory: pytest.TempPathFactory, real_embedder):  # type: ignore[no-untyped-def]
    from rag.settings import Settings
    from rag.system import System

    root = tmp_path_factory.mktemp("chat")
    shutil.copytree(CHAT_ARTICLES, root / "articles")
    system = System(Settings(index_dir=root / "index"), embedder=real_embedder)
    system.ingest([root / "articles"])
    return system


@pytest.mark.usefixtures("processes")
def test_conversations_through_rag_chat_json_and_ask_history(
    chat_index,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    index = chat_index.settings.index_dir
    stdin = "".join(f"{a}\n{b}\n\n" for a, b, _, _ in CONVERSATIONS[:1])
    r = rag("chat", "--json", index=index, stdin=stdin)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2  # one JSON object per turn, nothing else on stdout
    first, second = (json.loads(line) for line in lines)
    assert first["question"] == CONVERSATIONS[0][0] and first["standalone_question"] is None
    check_turns(first, second, *CONVERSATIONS[0][2:])
    for question, follow_up, named, word in CONVERSATIONS[1:]:
        r = rag("ask", "--json", question, index=index)
        assert r.returncode == 0, r.stderr
        history = tmp_path / "history.jsonl"
        history.write_text(r.stdout, encoding="utf-8")  # a script holding the conversation
        r2 = rag("ask", "--json", "--history", str(history), follow_up, index=index)
        assert r2.returncode == 0, r2.stderr
        check_turns(json.loads(r.stdout), json.loads(r2.stdout), named, word)
    # A file-name pattern filters (sources are absolute paths), and a refusal names the filter.
    r = rag("ask", "--json", "--source", "001_*", CONVERSATIONS[0][0], index=index)
    assert r.returncode == 0 and not json.loads(r.stdout)["abstained"], r.stderr
    r = rag("ask", "--json", "--source", "002_*", CONVERSATIONS[0][0], index=index)
    refused = json.loads(r.stdout)
    assert refused["abstained"] and any("002_*" in n for n in refused["notes"]), refused["notes"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": 1}\n', encoding="utf-8")
    r = rag("ask", "--history", str(bad), "Where is he based?", index=index)
    assert r.returncode == 2 and "bad.jsonl:1" in r.stderr and "Traceback" not in r.stderr


def test_conversations_in_the_library(chat_index) -> None:  # type: ignore[no-untyped-def]
    """The same conversations through System.ask, as the page and the API hold them."""
    from rag.serialize import answer_json

    for question, follow_up, named, word in CONVERSATIONS:
        first = chat_index.ask(question)
        history = [(first.standalone_question or question, first.text)]
        second = chat_index.ask(follow_up, history=history)
        check_turns(answer_json(first), answer_json(second), named, word)


@pytest.mark.usefixtures("real_model")  # the page loads its own model
def test_conversations_on_the_page(chat_index, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import html
    import re

    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parent.parent / "app.py")
    monkeypatch.setenv("RAG_INDEX_DIR", str(chat_index.settings.index_dir))
    for question, follow_up, named, word in CONVERSATIONS:
        at = AppTest.from_file(app, default_timeout=120)
        at.run()
        at.chat_input(key="question").set_value(question).run()
        at.chat_input(key="question").set_value(follow_up).run()
        assert not at.exception and not at.error
        understood = [
            html.unescape(c.value) for c in at.caption if c.value.startswith("Follow-up understood")
        ]
        assert len(understood) == 1 and named in understood[0], understood
        cards = [m.value for m in at.markdown if 'class="source-card"' in m.value]
        assert len(cards) == 2
        first_quote = re.search(r'<mark id="cite-\w+-1" class="quote">(.*?)</mark>', cards[1])
        assert first_quote and word in html.unescape(re.sub(r"<[^>]+>", "", first_quote.group(1)))


def test_a_chain_of_typed_follow_ups_keeps_its_subject() -> None:
    """What an OpenAI client sends back: the turns as typed. Made standalone in order, the third
    question still knows who "his" is, though the second answer names nobody."""
    from rag.retrieval.followup import standalone_history

    typed = [
        ("Who leads the Sonora contingent?", TREVINO),
        ("Where is he based?", "In Hermosillo. [1]"),
    ]
    chained = standalone_history(typed)
    assert chained[0] == typed[0]
    assert chained[1] == ("Where is Trevino based?", "In Hermosillo. [1]")
    assert condense_question("What is his rank?", chained) == "What is Trevino's rank?"
    assert "Trevino" not in condense_question("What is his rank?", typed)  # as typed, lost
