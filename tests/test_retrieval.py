"""Hybrid retrieval over a real index with the fake embedder: collapse, filters, MMR, the LangChain adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.retrieval.langchain import ArticleRetriever
from rag.settings import Settings
from rag.system import System
from rag.text.shingles import containment, shingles
from rag.types import Filters
from tests.conftest import HashEmbedder


@pytest.fixture
def system(tmp_path: Path, corpus_dir: Path) -> System:
    (corpus_dir / "dated.txt").write_text(
        "Ferry timetable changes\n\nPublished on 2019-06-01\n\n"
        "The Alder Sound Transit Company changed its ferry timetable for the summer season.\n"
    )
    s = System(Settings(index_dir=tmp_path / "index"), embedder=HashEmbedder())
    s.ingest([corpus_dir])
    return s


def test_no_two_near_duplicate_passages_in_results(system: System) -> None:
    for question in [
        "How many suspension cables were replaced on the Harbor Bridge?",
        "Who led the repair crew of 140 workers?",
        "How much did the bridge project cost the city council?",
    ]:
        hits = system.search(question, k=5)
        for i, a in enumerate(hits):
            for b in hits[i + 1 :]:
                assert containment(shingles(a.chunk.text), shingles(b.chunk.text)) < 0.6
        bridge = [h for h in hits if "Lindqvist" in h.chunk.text or "cables" in h.chunk.text]
        assert bridge, "the bridge story is found"
        # The fullest version is cited, the reprint is noted as "also in".
        top = bridge[0]
        assert Path(top.article.source).name == "harbor_bridge.txt"
        assert any(Path(s).name == "harbor_bridge_reprint.txt" for s in top.also_in)


def test_source_and_date_filters(system: System) -> None:
    only_md = system.search(
        "robotics lab printers ferry bridge", k=10, filters=Filters(source="*.md")
    )
    assert only_md and all(h.article.source.endswith(".md") for h in only_md)
    substring = system.search("bridge", k=10, filters=Filters(source="reprint"))
    assert substring and all("reprint" in h.article.source for h in substring)
    dated = system.search(
        "ferry timetable", k=10, filters=Filters(date_from="2019-01-01", date_to="2019-12-31")
    )
    assert dated and {h.article.date for h in dated} == {"2019-06-01"}
    assert system.search("ferry", k=10, filters=Filters(date_from="2030-01-01")) == []


def test_mmr_changes_order_but_keeps_relevance_first(system: System) -> None:
    mixed = System(replace_settings(system, mmr_lambda=0.5), embedder=system.embedder)
    question = "harbor bridge repair crew"
    plain = mixed.search(question, k=4)
    diverse = mixed.retriever().search(question, k=4, use_mmr=True)
    assert diverse[0].chunk.id == plain[0].chunk.id
    assert len({h.chunk.id for h in diverse}) == 4
    # MMR must change the order (it once was sorted away again by the sentence boost).
    assert [h.chunk.id for h in diverse] != [h.chunk.id for h in plain]
    # The setting turns it on too.
    on = System(replace_settings(system, mmr_lambda=0.5, mmr=True), embedder=system.embedder)
    assert [h.chunk.id for h in on.search(question, k=4)] == [h.chunk.id for h in diverse]


def replace_settings(system: System, **changes: object) -> Settings:
    return system.settings.model_copy(update=changes)


@pytest.mark.parametrize("fusion", ["convex", "rrf", "dense", "lexical"])
def test_every_fusion_returns_ranked_hits(tmp_path: Path, corpus_dir: Path, fusion: str) -> None:
    s = System(Settings(index_dir=tmp_path / "i", fusion=fusion), embedder=HashEmbedder())
    s.ingest([corpus_dir])
    hits = s.search("frost heaters orchards blossoms", k=3)
    assert hits and Path(hits[0].article.source).name == "orchard_frost.txt"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_langchain_retriever_returns_documents_with_offsets(system: System) -> None:
    retriever = ArticleRetriever(retriever=system.retriever(), k=2)
    docs = retriever.invoke("Who chairs the Meridian Fruit Cooperative?")
    assert len(docs) == 2
    meta = docs[0].metadata
    article = system.reader().article(meta["article_id"])
    assert article.text[meta["start"] : meta["end"]] == docs[0].page_content
    assert {"source", "title", "score", "start", "end"} <= set(meta)


def test_chain_is_a_runnable_from_question_to_answer(system: System) -> None:
    chain = system.chain(k=3)
    answer = chain.invoke({"question": "How many hectares do the cooperative farms cover?"})
    assert answer.citations and not answer.abstained
    for c in answer.citations:
        assert system.reader().article(c.article_id).text[c.start : c.end] == c.quote
    assert chain.batch(["Who chairs the Meridian Fruit Cooperative?"])[0].citations


def test_versions_that_disagree_on_a_fact_both_stay_in_the_results(tmp_path: Path) -> None:
    """ferry_v1 says 212 passengers, ferry_v2 (updated) 231, ferry_reprint 212 like v1: the
    reprint folds into v1's passage, v2's passage stays next to it."""
    import shutil

    from tests.conftest import FIXTURES

    folder = tmp_path / "versions"
    shutil.copytree(FIXTURES / "versions", folder)
    s = System(Settings(index_dir=tmp_path / "index"), embedder=HashEmbedder())
    s.ingest([folder])
    hits = s.search("How many passengers did the ferry carry when it ran aground?", k=5)
    passages = [h for h in hits if "passengers and a crew of nine" in h.chunk.text]
    said = sorted("231" if "231 passengers" in h.chunk.text else "212" for h in passages)
    assert said == ["212", "231"]
    sources = {Path(h.article.source).name for h in passages} | {
        Path(s).name for h in passages for s in h.also_in
    }
    assert {"ferry_v1.txt", "ferry_v2.txt", "ferry_reprint.txt"} <= sources
    # Near-copies that agree still collapse: one passage for v1 and its reprint.
    assert len(passages) == 2


@pytest.fixture
def versions_system(tmp_path: Path, corpus_dir: Path) -> System:
    """The ferry story in two versions (212 and 231 passengers) and a reprint, among the corpus."""
    import shutil

    from tests.conftest import FIXTURES

    shutil.copytree(FIXTURES / "versions", corpus_dir / "versions")
    s = System(Settings(index_dir=tmp_path / "index", min_confidence=0.0), embedder=HashEmbedder())
    s.ingest([corpus_dir])
    return s


def test_groups_know_their_differences(versions_system: System, capsys) -> None:  # type: ignore[no-untyped-def]
    from rag.cli.main import _cmd_stats

    stats = versions_system.stats()
    assert (stats["groups_with_differences"], stats["reprint_groups"]) == (1, 1)
    ferry = next(g for g in stats["duplicate_groups"] if g["differs"])
    by_name = {Path(a["source"]).name: a["differences"] for a in ferry["articles"]}
    assert by_name == {
        "ferry_v1.txt": [],  # the fullest version
        "ferry_v2.txt": [{"kind": "number", "fullest": "212", "this": "231"}],
        "ferry_reprint.txt": [],  # a plain reprint ("Thursday"/"today" is no difference)
    }
    bridge = next(g for g in stats["duplicate_groups"] if not g["differs"])
    assert all(a["differences"] == [] for a in bridge["articles"])

    class Args:
        json = False

    _cmd_stats(versions_system, Args())
    out = capsys.readouterr().out
    assert "near-duplicate groups: 2 (1 versions with differences, 1 plain reprints)" in out
    assert "differs: 231 (fullest: 212, number)" in out


def test_hits_carry_the_other_versions_and_what_they_change(versions_system: System) -> None:
    hits = versions_system.search("How many passengers did the ferry carry?", k=5)
    v1 = next(h for h in hits if Path(h.article.source).name == "ferry_v1.txt")
    others = {Path(v.source).name: v for v in v1.versions}
    assert set(others) == {"ferry_v2.txt", "ferry_reprint.txt"}
    assert others["ferry_reprint.txt"].changes == ()
    (change,) = others["ferry_v2.txt"].changes
    assert (change.kind, change.here, change.there) == ("number", "212", "231")
    assert v1.article.text[change.here_start : change.here_end] == "212"
    assert others["ferry_v2.txt"].article.text[change.there_start : change.there_end] == "231"
    assert all(h.versions == () for h in hits if not h.article.group_id)


@pytest.mark.parametrize("k", [1, 5])
def test_an_answer_cites_both_versions_even_when_one_was_not_retrieved(
    versions_system: System, k: int
) -> None:
    a = versions_system.ask("How many passengers did the ferry carry?", k=k)
    (c,) = a.conflicts
    assert c.values == ("231 passengers", "212 passengers")  # the later version first
    assert [Path(s).name for s in c.sources] == ["ferry_v2.txt", "ferry_v1.txt"]
    assert c.dates == ("2021-03-05", "2021-03-04")
    reader = versions_system.reader()
    for cit in a.citations:
        assert reader.article(cit.article_id).text[cit.start : cit.end] == cit.quote


def test_group_differences_are_computed_once_per_index_snapshot() -> None:
    from rag.retrieval.versions import group_differences, other_versions
    from rag.types import Article, content_hash

    texts = [
        "The ferry carried 212 passengers on Tuesday.",
        "The ferry carried 231 passengers on Tuesday.",
    ]
    group = content_hash(texts[0])
    members = [
        Article(content_hash(t), f"{i}.txt", "Ferry", t, group_id=group)
        for i, t in enumerate(texts)
    ]

    class Reader:
        calls = 0

        def group_members(self, group_id: str) -> list[Article]:
            Reader.calls += 1
            return members if group_id == group else []

    reader = Reader()
    diff = group_differences(reader, group)
    assert diff is not None and diff.fullest is members[0] and diff.differs
    (other,) = other_versions(reader, members[1])
    assert other.article is members[0] and other.changes[0].here == "231"
    assert Reader.calls == 1  # the members once, then from the cache
    assert group_differences(reader, "no-such-group") is None
