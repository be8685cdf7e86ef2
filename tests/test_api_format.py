"""Pure logic of the API: OpenAI messages to question and history, reply text, JSON escaping,
server paths made relative, the jobs' per-file results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag.api.jobs import Job, JobQueue
from rag.api.openai_format import conversation, mode_for, model_ids, pieces, reply_text
from rag.api.responses import PathScrubber, describe_error, dumps
from rag.api.schemas import ChatMessage
from rag.errors import IndexMissing, InputError, NotFound, RateLimited
from rag.settings import Settings
from rag.types import Answer, Article, Chunk, Citation, Hit


def msgs(*pairs: tuple[str, Any]) -> list[ChatMessage]:
    return [ChatMessage(role=r, content=c) for r, c in pairs]


def test_conversation_takes_the_last_question_and_earlier_turns() -> None:
    q, history = conversation(
        msgs(
            ("system", "Be nice."),
            ("user", "Who led the crew?"),
            ("assistant", "Maria Lindqvist led it [1].\n\nSources:\n[1] Bridge (a.txt)"),
            (
                "user",
                [{"type": "text", "text": "How many"}, {"type": "image_url", "image_url": {}}],
            ),
            ("user", "workers?"),
        )
    )
    assert q == "How many workers?"  # two user messages in a row are one question
    assert history == [("Who led the crew?", "Maria Lindqvist led it [1].")]  # our list stripped
    with pytest.raises(InputError, match="last message"):
        conversation(msgs(("user", "hi"), ("assistant", "hello")))
    with pytest.raises(InputError):
        conversation(msgs(("system", "only rules")))
    long = conversation(
        msgs(*[(r, f"{r} {i}") for i in range(30) for r in ("user", "assistant")], ("user", "q"))
    )
    assert len(long[1]) == 10 and long[1][-1] == ("user 29", "assistant 29")


def test_models_and_modes() -> None:
    plain = Settings()
    assert model_ids(plain) == ["rag-articles", "rag-articles-extractive"]
    assert mode_for("rag-articles", plain) is None
    assert mode_for("rag-articles-extractive", plain) == "extractive"
    with pytest.raises(NotFound, match="rag-articles-llm"):
        mode_for("rag-articles-llm", plain)  # offered only with a chat model
    assert mode_for("rag-articles-llm", Settings(llm="ollama:x")) == "llm"


def citation(n: int, **kw: Any) -> Citation:
    base = dict(
        n=n, source=f"/srv/index/uploads/{n}.txt", title=f"Story {n}", passage="p", passage_start=0,
        quote="q", start=0, end=1, score=1.0, article_id="a", chunk_id="c",
    )  # fmt: skip
    return Citation(**(base | kw))


def test_reply_text_lists_sources_with_date_and_page() -> None:
    answer = Answer(
        question="q",
        text="It reopened [1]. It cost more [2].",
        citations=(citation(1, date="2021-03-03"), citation(2, page=4)),
        abstained=False,
    )
    scrub = PathScrubber(Path("/srv/index"))
    assert reply_text(answer, scrub.source) == (
        "It reopened [1]. It cost more [2].\n\nSources:\n"
        "[1] Story 1 (uploads/1.txt, 2021-03-03)\n[2] Story 2 (uploads/2.txt, p. 4)"
    )
    assert "".join(pieces("one two  three\nfour five")) == "one two  three\nfour five"


def test_reply_text_opens_with_the_short_answer_and_names_each_closest_article_once() -> None:
    answer = Answer(
        question="Who reopened it?",
        text="Mayor Ruth Adeyemi reopened the bridge [1].",
        citations=(citation(1),),
        abstained=False,
        short_answer="Ruth Adeyemi",
    )
    scrub = PathScrubber(Path("/srv/index"))
    assert reply_text(answer, scrub.source).startswith(
        "Ruth Adeyemi — [1]\n\nMayor Ruth Adeyemi reopened the bridge [1].\n\nSources:\n"
    )
    article = Article(id="a1", source="/srv/index/uploads/a.txt", title="Bridge", text="x y")
    other = Article(id="a2", source="/srv/index/uploads/b.txt", title="Ferry", text="x y")
    closest = tuple(
        Hit(Chunk(f"c{i}", a.id, i, 0, 1, "x"), a, 0.5)
        for i, a in enumerate([article, article, other])
    )
    refusal = Answer(question="q", text="No.", citations=(), abstained=True, closest=closest)
    assert reply_text(refusal, scrub.source) == (
        "No.\n\nClosest passages:\n- Bridge (uploads/a.txt)\n- Ferry (uploads/b.txt)"
    )


def test_json_escapes_html_and_keeps_the_value() -> None:
    value = {"q": "<script>alert('x')</script> & more", "n": [1, "é"]}
    text = dumps(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def test_server_paths_become_relative(tmp_path: Path) -> None:
    scrub = PathScrubber(tmp_path / "index")
    inside = str((tmp_path / "index").resolve() / "uploads" / "a.txt")
    obj = {
        "hits": [{"source": inside, "also_in": [inside, "/elsewhere/b.txt"], "text": inside}],
        "removed": [inside + "#0"],
    }
    out = scrub.sources(obj)
    assert out["hits"][0]["source"] == "uploads/a.txt"
    assert out["hits"][0]["also_in"] == ["uploads/a.txt", "/elsewhere/b.txt"]
    assert out["hits"][0]["text"] == inside  # article text is data, left alone
    assert out["removed"] == ["uploads/a.txt#0"]
    assert str(tmp_path) not in scrub.text(f"index {tmp_path / 'index'} is busy")


def test_errors_hide_paths_and_internals(tmp_path: Path) -> None:
    scrub = PathScrubber(tmp_path / "index")
    status, err, _ = describe_error(IndexMissing.at(tmp_path / "index"), scrub)
    assert status == 503 and err["type"] == "index_missing" and str(tmp_path) not in err["message"]
    status, err, _ = describe_error(KeyError("secret detail /srv/x"), scrub)
    assert status == 500 and err == {
        "type": "internal",
        "message": "internal error; the server log has the details",
    }
    status, err, _ = describe_error(
        OSError(28, "No space left", str(tmp_path / "index" / "x")), scrub
    )
    assert status == 500 and str(tmp_path) not in err["message"]
    status, _, headers = describe_error(RateLimited("slow down", retry_after=2.2))
    assert status == 429 and headers["Retry-After"] == "3"


def test_job_results_per_file() -> None:
    job = Job("j", {"/u/a.txt": "a.txt", "/u/b.json": "b.json", "/u/c.pdf": "c.pdf"})
    report: dict[str, Any] = {
        "added": ["/u/b.json#0"],
        "updated": [],
        "unchanged": ["/u/a.txt"],
        "renamed": [],
        "removed": [],
        "skipped": [{"source": "/u/c.pdf", "reason": "no text layer"}],
    }
    JobQueue(lambda *a: None, lambda e: {})._record(job, report)
    assert [(f["name"], f["status"], f["reason"]) for f in job.files.values()] == [
        ("a.txt", "unchanged", None),
        ("b.json", "added", None),
        ("c.pdf", "skipped", "no text layer"),
    ]
