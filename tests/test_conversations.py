"""Conversations kept locally: JSON round trip of whole answers, the store, the Markdown export,
and on the page a conversation and its settings surviving a reload, New chat and the list."""

from __future__ import annotations

import html
import json
from dataclasses import replace
from pathlib import Path

import pytest

from rag.conversations import (
    Conversation,
    ConversationStore,
    Turn,
    from_data,
    markdown,
    to_data,
)
from rag.types import (
    Answer,
    AnswerSentence,
    Article,
    Chunk,
    Citation,
    Conflict,
    FactChange,
    Filters,
    Hit,
    OtherVersion,
)

TEXT = "Bridge reopens\n\nChief engineer Maria Lindqvist led the crew of 140 workers."
QUOTE = "Chief engineer Maria Lindqvist led the crew of 140 workers."


def sample() -> Conversation:
    article = Article(id="a1", source="/data/bridge.txt", title="Bridge reopens", text=TEXT)
    other = OtherVersion(
        article=replace(article, id="a2", source="/data/copy.txt"),
        changes=(FactChange("number", "140", "150", 40, 43, 40, 43),),
    )
    start = TEXT.index(QUOTE)
    cite = Citation(
        n=1, source=article.source, title=article.title, passage=QUOTE, passage_start=start,
        quote=QUOTE, start=start, end=start + len(QUOTE), score=0.91, article_id="a1",
        chunk_id="c1", date="2021-03-03", versions=(other,),
    )  # fmt: skip
    answer = Answer(
        question="Who led the crew?",
        text=f"{QUOTE} [1]",
        citations=(cite,),
        abstained=False,
        sentences=(AnswerSentence(QUOTE, (1,)),),
        short_answer="Maria Lindqvist",
        short_answer_start=start + 15,
        short_answer_end=start + 30,
        confidence=0.8,
        conflicts=(
            Conflict(
                "number", ("140", "150"), (1, 2), ("a", "b"), (None, "2021-03-04"), ((1, 2), (3, 4))
            ),
        ),  # fmt: skip
    )
    hit = Hit(chunk=Chunk("c1", "a1", 0, start, len(TEXT), QUOTE), article=article, score=0.5)
    refusal = Answer(
        question="Who won?", text="The indexed articles don't answer this.", citations=(),
        abstained=True, closest=(hit,), notes=("no passages",),
    )  # fmt: skip
    conv = Conversation.new()
    return replace(
        conv,
        turns=(
            Turn("Who led the crew?", answer, filters=Filters(source="bridge*"), key="k1"),
            Turn("And who won?", refusal, key="k2"),
            Turn("Hello?", error="The chat model did not answer.", key="k3"),
        ),
    )


def test_whole_answers_round_trip_through_json() -> None:
    conv = sample()
    data = json.loads(json.dumps(to_data(conv)))
    assert from_data(Conversation, data) == conv


def test_the_store_saves_lists_and_refuses_odd_ids(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "conversations")
    conv = sample()
    store.save(conv)
    assert store.load(conv.id) == conv
    assert [c.id for c in store.list()] == [conv.id]
    assert not list((tmp_path / "conversations").glob(".*"))  # no temp file left behind
    assert store.load("../../etc/passwd") is None and store.load("nope") is None
    with pytest.raises(ValueError, match="12 hex digits"):
        store.save(replace(conv, id="../x"))
    (tmp_path / "conversations" / f"{conv.id}.json").write_text("{not json")
    assert store.load(conv.id) is None and store.list() == []  # a damaged file is skipped
    store.delete(conv.id)
    assert not (tmp_path / "conversations" / f"{conv.id}.json").exists()


def test_markdown_export_has_answers_and_sources() -> None:
    text = markdown(sample())
    assert text.startswith("# Who led the crew?\n")
    assert "## Who led the crew?" in text and "## And who won?" in text
    assert f"1. **Bridge reopens**, 2021-03-03. /data/bridge.txt. “{QUOTE}”" in text
    assert "_Filtered: source matching “bridge*”_" in text
    assert "> note: no passages" in text and "_Error: The chat model did not answer._" in text


# --- the page -----------------------------------------------------------------------------------
QUESTION = "Who led the repair crew of the Harbor Bridge?"


@pytest.mark.usefixtures("real_model")  # the page loads its own model
def test_a_conversation_and_its_settings_survive_a_reload(
    monkeypatch: pytest.MonkeyPatch,
    built_index,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    import shutil

    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parent.parent / "app.py")
    index_dir = tmp_path / "index"
    # Without the conversations other page tests left in the session's index.
    shutil.copytree(
        built_index.settings.index_dir, index_dir, ignore=shutil.ignore_patterns("conversations")
    )
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_dir))

    def answers(at: AppTest) -> list[str]:
        return [html.unescape(m.value) for m in at.markdown if 'class="answer"' in m.value]

    at = AppTest.from_file(app, default_timeout=120)
    at.run()
    at.slider(key="k").set_value(3).run()
    at.text_input(key="f_source").set_value("harbor").run()
    at.chat_input(key="question").set_value(QUESTION).run()
    assert not at.exception
    # New chat and Export are ready in the very run that answered (no click needed first).
    assert not at.button(key="new_chat").disabled
    address = dict(at.query_params)
    assert address["k"] == "3" and address["source"] == "harbor" and address["c"]
    assert len(list((index_dir / "conversations").glob("*.json"))) == 1

    # A reload: a new session with the same address.
    again = AppTest.from_file(app, default_timeout=120)
    again.query_params.update(address)
    again.run()
    assert not again.exception
    assert len(again.chat_message) == 2 and "Lindqvist" in answers(again)[0]
    assert again.slider(key="k").value == 3 and again.text_input(key="f_source").value == "harbor"

    # New chat empties the page; the earlier conversation is listed and opens again.
    again.button(key="new_chat").click().run()
    assert len(again.chat_message) == 0 and "c" not in again.query_params
    listed = [b for b in again.button if b.key and b.key.startswith("conv_")]
    assert [b.label for b in listed] == [QUESTION]
    listed[0].click().run()
    assert len(again.chat_message) == 2 and again.query_params["c"] == address["c"]
