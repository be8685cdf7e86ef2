"""The store contract: what every backend must do, as one reusable class of tests.

A backend's test module subclasses :class:`StoreContract` and provides the fixture
``make_store``: a function ``(name, **settings) -> Store`` that returns a fresh, empty store each
time it is given a new name (the same name again: the same store, as a second process would see
it). Everything here goes through rag.store.base only: passage ids are whatever the store
assigns, and the references (brute-force cosine, bm25s, the batch near-duplicate grouping) are
computed from what the store hands back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import bm25s
import numpy as np
import pytest

from rag.errors import IndexBusy, IndexMissing, ModelMismatch
from rag.ingest.chunking import chunk_article
from rag.ingest.dedup import group_near_duplicates
from rag.ingest.pipeline import embedding_text
from rag.store.base import NewArticle, Store, StoreReader
from rag.text.tokens import tokenize
from rag.types import Article, Filters, PageSpan, content_hash
from tests.conftest import HashEmbedder
from tests.synthetic import article as synthetic_article
from tests.test_dedup import FULL, REPRINT, SECOND_CUT, UNRELATED

MODEL, DIM = "hash-64", 64
EMB = HashEmbedder(DIM, MODEL)
MakeStore = Callable[..., Store]


def new_article(
    title: str, text: str, source: str, date: str | None = None, pages: tuple[PageSpan, ...] = ()
) -> NewArticle:
    """An article as the ingest pipeline hands it over: chunks, vectors, hashes, BM25 texts."""
    aid = content_hash(text)
    article = Article(aid, source, title, text, date=date, url=f"https://example.org/{aid[:6]}",
                      author="A. Writer", site="example.org", pages=pages)  # fmt: skip
    chunks = chunk_article(aid, text, chunk_chars=260)
    texts = [embedding_text(title, c.text) for c in chunks]
    return NewArticle(article, chunks, EMB.embed(texts), [content_hash(t) for t in texts], texts)


def corpus(n: int = 14, seed: int = 3) -> list[NewArticle]:
    """Synthetic news in two folders, a collection record, dated and undated, one with pages."""
    import random

    items = []
    for i in range(n):
        title, text = synthetic_article(random.Random(f"{seed}-{i}"), i)
        folder = "news" if i % 2 else "archive/old"
        name = f"/data/{folder}/report_{i:03d}.{'md' if i % 3 == 0 else 'txt'}"
        if i == 5:
            name = "/data/feeds/wire.jsonl#5"
        date = f"2021-0{1 + i % 9}-1{i % 10}" if i % 4 else None
        pages = (PageSpan(0, len(text) // 2, 1), PageSpan(len(text) // 2 + 1, len(text), 2))
        items.append(new_article(title, text, name, date, pages if i == 7 else ()))
    return items


def fill(store: Store, items: list[NewArticle], root: str | None = "/data") -> None:
    with store.writer(MODEL, DIM) as w:
        w.add_articles(items)
        for it in items:
            w.add_source(it.article.source, it.article.id, root)
        w.regroup(0.5)
        w.commit()


def all_ids(reader: StoreReader) -> list[int]:
    return sorted(p for a in reader.list_articles() for p in reader.passage_ids(a["id"]))


def allowed_ids(reader: StoreReader, filters: Filters) -> set[int]:
    out = set()
    for a in reader.list_articles():
        art = reader.article(a["id"])
        sources = [art.source, *reader.sources_of(art.id)]
        if any(filters.source_matches(s) for s in sources) and filters.date_matches(art.date):
            out.update(reader.passage_ids(art.id))
    return out


def dense_reference(reader: StoreReader, q: np.ndarray, ids: set[int], k: int) -> list[int]:
    pool = sorted(ids)
    scores = reader.vectors_for(pool) @ q if pool else np.zeros(0)
    return [pool[i] for i in np.argsort(-scores, kind="stable")[:k]]


def bm25_reference(reader: StoreReader, query: str, ids: set[int]) -> dict[int, float]:
    """BM25 (Lucene form, the store's k1=0.9 b=0.4) over every live passage, kept to ``ids``."""
    every = all_ids(reader)
    rows = reader.passages(every)
    tokens = [tokenize(embedding_text(rows[p][1].title, rows[p][0].text)) for p in every]
    ref = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    ref.index(tokens, show_progress=False)
    q = list(dict.fromkeys(t for t in tokenize(query) if t in ref.vocab_dict))
    if not q:
        return {}
    scores = ref.get_scores(q)
    return {p: float(s) for p, s in zip(every, scores, strict=True) if s > 0 and p in ids}


def assert_bm25(got: list[tuple[int, float]], want: dict[int, float], k: int) -> None:
    best = sorted(want.values(), reverse=True)[:k]
    assert [s for _, s in got] == pytest.approx(best, rel=1e-5)
    for p, s in got:
        assert s == pytest.approx(want[p], rel=1e-5)


QUERIES = ["bridge in Ashford", "cost million pounds council", "visitors harbour wall", "zebra"]
FILTERS = [
    Filters(source="*.md"),
    Filters(source="report_00[1-4].txt"),
    Filters(source="/data/archive/*"),
    Filters(source="news/"),
    Filters(source="wire.jsonl"),
    Filters(date_from="2021-03-01", date_to="2021-06-30"),
    Filters(source="*.txt", date_from="2021-05-01"),
    Filters(source="no-such-file"),
]


class StoreContract:
    """Tests every backend passes. Subclasses provide the ``make_store`` fixture."""

    @pytest.fixture
    def filled(self, make_store: MakeStore) -> tuple[Store, list[NewArticle]]:
        store, items = make_store("filled"), corpus()
        fill(store, items)
        return store, items

    def test_an_empty_store_has_no_index(self, make_store: MakeStore) -> None:
        store = make_store("empty")
        assert not store.exists()
        with pytest.raises(IndexMissing):
            store.reader(MODEL)
        with store.writer(MODEL, DIM) as w:  # a session that commits nothing leaves no index
            assert w.sources() == [] and not w.changed
        assert not store.exists()

    def test_articles_and_passages_round_trip(self, filled: Any) -> None:
        store, items = filled
        reader = store.reader(MODEL)
        assert reader.counts() == (len(items), sum(len(i.chunks) for i in items))
        listed = {a["id"]: a for a in reader.list_articles()}
        assert set(listed) == {i.article.id for i in items}
        assert [a["title"] for a in reader.list_articles()] == sorted(
            a["title"] for a in listed.values()
        )
        for item in items:
            art = reader.article(item.article.id)
            assert art == item.article  # every field, pages included; no group
            pids = reader.passage_ids(art.id)
            rows = reader.passages(pids)
            assert [rows[p][0] for p in pids] == list(item.chunks)  # text order, offsets
            for chunk, owner in rows.values():
                assert owner.text[chunk.start : chunk.end] == chunk.text
            assert listed[art.id]["chunks"] == len(pids) and listed[art.id]["chars"] == len(
                art.text
            )
            np.testing.assert_allclose(reader.vectors_for(pids), item.vectors, atol=2e-3)
            assert reader.sources_of(art.id) == [art.source]
        with pytest.raises(KeyError):
            reader.article("no-such-article")
        assert reader.passages([10**12]) == {}
        assert len(set(all_ids(reader))) == reader.counts()[1]

    def test_dense_search_equals_brute_force(self, filled: Any) -> None:
        reader = filled[0].reader(MODEL)
        every = set(all_ids(reader))
        for query in QUERIES:
            q = EMB.embed([query])[0]
            got = reader.dense_search(q, 10)
            assert [p for p, _ in got] == dense_reference(reader, q, every, 10)
            want = reader.vectors_for([p for p, _ in got]) @ q
            np.testing.assert_allclose([s for _, s in got], want, atol=1e-4)
        assert len(reader.dense_search(q, 10_000)) == len(every)

    def test_lexical_search_and_idf_equal_a_reference_bm25(self, filled: Any) -> None:
        reader = filled[0].reader(MODEL)
        every = set(all_ids(reader))
        for query in QUERIES:
            want = bm25_reference(reader, query, every)
            assert_bm25(reader.lexical_search(query, 5), want, 5)
            assert_bm25(reader.lexical_search(query, 1000), want, 1000)
        n = len(every)
        rows = reader.passages(sorted(every))
        docs = [set(tokenize(embedding_text(a.title, c.text))) for c, a in rows.values()]
        for term in ["bridg", "ashford", "said", "no-such-term"]:
            df = sum(term in d for d in docs)
            assert reader.idf([term]) == [pytest.approx(np.log(1 + (n - df + 0.5) / (df + 0.5)))]

    @pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f"{f.source}|{f.date_from}")
    def test_filters_by_source_glob_name_path_and_dates(
        self, filled: Any, filters: Filters
    ) -> None:
        reader = filled[0].reader(MODEL)
        allowed = allowed_ids(reader, filters)
        if filters.source == "no-such-file":
            assert not allowed
        elif filters.source in ("*.md", "report_00[1-4].txt", "wire.jsonl"):
            assert 0 < len(allowed) < len(all_ids(reader))
        for query in QUERIES:
            q = EMB.embed([query])[0]
            dense = reader.dense_search(q, 6, filters)
            assert [p for p, _ in dense] == dense_reference(reader, q, allowed, 6)
            assert_bm25(
                reader.lexical_search(query, 6, filters), bm25_reference(reader, query, allowed), 6
            )

    def test_removals_renames_and_updates(self, filled: Any) -> None:
        store, items = filled
        gone, renamed, copied = items[2].article, items[3].article, items[4].article
        edited = new_article(items[6].article.title, items[6].article.text + " A late update.",
                             items[6].article.source)  # fmt: skip
        with store.writer(MODEL, DIM) as w:
            assert w.source_article(gone.source) == gone.id and w.has_article(gone.id)
            w.remove_source(gone.source)
            w.add_source("/data/news/renamed.txt", renamed.id, "/data")
            w.remove_source(renamed.source)
            w.add_source("/elsewhere/copy.txt", copied.id, None)
            w.remove_source(items[6].article.source)  # an update: old version out, new one in
            w.add_articles([edited])
            w.add_source(edited.article.source, edited.article.id, "/data")
            assert w.changed and not w.has_article(gone.id)
            assert ("/elsewhere/copy.txt", None) in w.sources()
            synced = w.sources(["/data"])
            assert synced and {r for _, r in synced} == {"/data"}
            assert ("/data/news/renamed.txt", "/data") in synced and w.sources(["/nowhere"]) == []
            w.regroup(0.5)
            w.commit()
        reader = store.reader(MODEL)
        ids = {a["id"] for a in reader.list_articles()}
        assert gone.id not in ids and items[6].article.id not in ids and edited.article.id in ids
        assert reader.article(renamed.id).source == "/data/news/renamed.txt"
        assert reader.sources_of(copied.id) == sorted([copied.source, "/elsewhere/copy.txt"])
        every = set(all_ids(reader))
        assert reader.counts() == (len(items) - 1, len(every))
        for query in QUERIES:
            q = EMB.embed([query])[0]
            assert [p for p, _ in reader.dense_search(q, 8)] == dense_reference(reader, q, every, 8)
            assert_bm25(reader.lexical_search(query, 8), bm25_reference(reader, query, every), 8)
        found = reader.dense_search(EMB.embed([edited.lexical_texts[-1]])[0], 1)
        assert reader.passages([found[0][0]])[found[0][0]][1].id == edited.article.id
        assert store.check() == []

    def test_cached_vectors_by_embedding_hash(self, filled: Any) -> None:
        store, items = filled
        with store.writer(MODEL, DIM) as w:
            known = w.cached_vectors([*items[1].embed_hashes, "not-a-hash"])
            assert set(known) == set(items[1].embed_hashes)
            for h, v in zip(items[1].embed_hashes, items[1].vectors, strict=True):
                np.testing.assert_allclose(known[h], v, atol=2e-3)
            new = new_article("Fresh", "A fresh story about kestrels over the estuary.", "/x/f.txt")
            w.add_articles([new])  # vectors of this session count too
            assert set(w.cached_vectors(new.embed_hashes)) == set(new.embed_hashes)

    def test_near_duplicate_groups_follow_adds_and_removals(self, make_store: MakeStore) -> None:
        store = make_store("groups")
        texts = {"full": FULL, "reprint": REPRINT, "cut": SECOND_CUT, "other": UNRELATED}
        items = {k: new_article(k.title(), t, f"/g/{k}.txt") for k, t in texts.items()}

        def check_groups() -> None:
            reader = store.reader(MODEL)
            live = sorted((a["id"], reader.article(a["id"]).text) for a in reader.list_articles())
            want = group_near_duplicates(live, 0.5)
            got = {a["id"]: a["group_id"] for a in reader.list_articles() if a["group_id"]}
            assert got == want
            for gid in set(want.values()):
                members = reader.group_members(gid)
                assert {m.id for m in members} == {a for a, g in want.items() if g == gid}
                assert members[0].id == gid and [len(m.text) for m in members] == sorted(
                    (len(m.text) for m in members), reverse=True)  # fmt: skip
            stats = reader.stats()
            assert len(stats["duplicate_groups"]) == len(set(want.values()))

        fill(store, [items["reprint"], items["other"]])
        check_groups()  # no pair above the threshold yet
        fill(store, [items["full"], items["cut"]])
        check_groups()  # one group of three, named after the full story
        assert (
            store.reader(MODEL).article(items["reprint"].article.id).group_id
            == items["full"].article.id
        )
        with store.writer(MODEL, DIM) as w:
            w.remove_source("/g/full.txt")  # the bridge between the two cuts goes
            w.regroup(0.5)
            w.commit()
        check_groups()
        assert store.check() == []

    def test_stats(self, filled: Any) -> None:
        store, items = filled
        stats = store.reader(MODEL).stats()
        assert stats["articles"] == len(items) and stats["chunks"] == sum(
            len(i.chunks) for i in items
        )
        assert stats["model"] == MODEL and stats["dimension"] == DIM
        assert stats["duplicate_groups"] == [] and stats["index_dir"] == store.location
        assert set(stats) >= {"snapshot", "updated"}

    def test_commits_become_visible_on_refresh_per_thread(self, filled: Any) -> None:
        store, items = filled
        reader = store.reader(MODEL)
        before, version = reader.counts(), reader.version
        extra = new_article(
            "Late", "A late story about the ferry in Calder reopening.", "/data/late.txt"
        )
        with store.writer(MODEL, DIM) as w:
            w.add_articles([extra])
            w.add_source(extra.article.source, extra.article.id, "/data")
            w.remove_source(items[0].article.source)
            w.regroup(0.5)
            assert reader.counts() == before  # nothing visible before the commit
            w.commit()
        assert reader.counts() == before and reader.version == version
        old_ids = all_ids(reader)
        seen: dict[str, Any] = {}

        def other_thread() -> None:
            seen["changed"] = reader.refresh()
            seen["ids"], seen["version"] = all_ids(reader), reader.version

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert seen["changed"] and seen["version"] != version and seen["ids"] != old_ids
        assert all_ids(reader) == old_ids  # this thread keeps its commit until it refreshes
        assert reader.refresh() and not reader.refresh()
        assert reader.counts() == (before[0], before[1] - len(items[0].chunks) + len(extra.chunks))

    def test_uncommitted_changes_are_dropped(self, filled: Any) -> None:
        store, items = filled
        with store.writer(MODEL, DIM) as w:
            w.remove_source(items[0].article.source)
            w.add_articles([new_article("Lost", "This story is never committed.", "/x/lost.txt")])
        reader = store.reader(MODEL)
        assert reader.counts()[0] == len(items) and store.check() == []
        with store.writer(MODEL, DIM) as w:
            assert w.source_article(items[0].article.source) == items[0].article.id

    def test_one_writer_at_a_time_and_the_model_is_checked(self, make_store: MakeStore) -> None:
        store = make_store("busy", lock_timeout=0.2)
        fill(store, corpus(3))
        with store.writer(MODEL, DIM), pytest.raises(IndexBusy, match="busy"):  # noqa: SIM117
            with make_store("busy", lock_timeout=0.2).writer(MODEL, DIM):
                pass
        with pytest.raises(ModelMismatch):
            store.reader("another-model")
        with pytest.raises(ModelMismatch), store.writer("another-model", DIM):
            pass

    def test_many_small_commits_answer_like_one(self, make_store: MakeStore) -> None:
        items = corpus(30, seed=9)
        one, many = make_store("one"), make_store("many")
        fill(one, items)
        for start in range(0, len(items), 2):
            fill(many, items[start : start + 2])
        with many.writer(MODEL, DIM) as w:  # and one removal from an early commit
            w.remove_source(items[1].article.source)
            w.commit()
        with one.writer(MODEL, DIM) as w:
            w.remove_source(items[1].article.source)
            w.commit()
        a, b = one.reader(MODEL), many.reader(MODEL)
        assert a.counts() == b.counts() and many.check() == []

        def by_chunk(reader: StoreReader, hits: list[tuple[int, float]]) -> list[tuple[str, float]]:
            rows = reader.passages([p for p, _ in hits])
            return [(rows[p][0].id, round(s, 5)) for p, s in hits]

        for query in QUERIES:
            q = EMB.embed([query])[0]
            assert by_chunk(a, a.dense_search(q, 8)) == by_chunk(b, b.dense_search(q, 8))
            assert by_chunk(a, a.lexical_search(query, 8)) == by_chunk(
                b, b.lexical_search(query, 8)
            )
            assert a.idf(tokenize(query)) == pytest.approx(b.idf(tokenize(query)), rel=1e-12)
