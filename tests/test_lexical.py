"""BM25 index: hand-computed scores, agreement with bm25s, incremental updates, persistence."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np
import pytest

from rag.errors import CorruptIndex
from rag.store import lexical, lexical_files
from rag.store.lexical import LexicalIndex
from rag.text.tokens import tokenize

CORPUS = [
    "The central bank raised interest rates by half a point to fight inflation.",
    "Inflation in the euro area slowed to 3.5 percent in March, the statistics office said.",
    "Farmers in the valley say the drought has ruined this year's wheat harvest.",
    "A new species of frog was discovered in the rainforest of northern Peru.",
    "The city council voted to build a bridge across the river by 2026.",
    "Engineers warned that the old bridge could collapse under heavy trucks.",
    "The football club sacked its manager after a run of seven defeats.",
    "Scientists sequenced the genome of the wheat plant to breed drought tolerant varieties.",
    "The museum reopened its dinosaur hall after two years of renovation.",
    "Oil prices fell sharply as demand from factories weakened.",
    "Central bankers met in Frankfurt to discuss the strength of the euro.",
    "Heavy rain flooded the river valley and closed the main road.",
    "The election commission counted ballots late into the night.",
    "Voters in the northern province elected a new governor in 1998.",
    "The telescope captured images of a distant galaxy forming stars.",
    "Astronomers found water vapour in the atmosphere of a distant planet.",
    "The company recalled 1,000 cars because of faulty brakes.",
    "Brake failures caused several accidents on the mountain road.",
    "Teachers went on strike over pay and class sizes.",
    "The school board promised smaller classes and higher pay for teachers.",
    "A heatwave pushed temperatures above 40 degrees in the capital.",
    "Firefighters battled forest fires fuelled by the heat and strong winds.",
    "The hospital opened a new wing for children with cancer.",
    "Doctors reported a rise in measles cases among unvaccinated children.",
    "The orchestra played Beethoven's ninth symphony to a full hall.",
    "A violinist from Vienna won the international music competition.",
    "The airline cancelled hundreds of flights because of the pilots' strike.",
    "Pilots demanded better rest periods between long flights.",
    "The government announced a plan to plant one million trees.",
    "Environmental groups criticised the plan to drill for oil in the Arctic.",
    "Archaeologists uncovered a Roman villa beneath a car park.",
    "The ancient villa contained mosaics of hunting scenes.",
    "The tech company unveiled a faster chip for mobile phones.",
    "Phone makers are struggling with a shortage of memory chips.",
    "The marathon was won in record time despite the heat.",
    "Runners collapsed from heat exhaustion near the finish line.",
    "The bakery on the corner sells bread made from local wheat.",
    "Bread prices rose after the poor wheat harvest.",
    "A storm knocked out power to thousands of homes on the coast.",
    "Power companies restored electricity after the storm within two days.",
    "The minister resigned after a scandal over expenses.",
    "Parliament debated new rules on ministers' expenses.",
    "The zoo celebrated the birth of a baby elephant.",
    "Elephants in the national park are threatened by poachers.",
    "The river ferry service was suspended because of low water.",
    "Low water levels on the river hurt shipping of grain and coal.",
    "A court ruled that the factory must reduce its emissions.",
    "The factory closed, and three hundred workers lost their jobs.",
    "Students protested against higher university fees.",
    "The university opened a new library with late opening hours.",
]

QUERIES = [
    "wheat harvest drought",
    "bridge over the river",
    "interest rates inflation euro",
    "teachers pay strike",
    "heat",
    "distant galaxy planet",
    "1,000 cars recalled",
    "inflation 3.5 percent",
    "elephant",
    "the and of",  # only stopwords
    "zebra unicorn",  # unknown terms
]


def reference_scores(
    docs: dict[int, list[str]], query: list[str], k1: float = 1.5, b: float = 0.75
) -> dict[int, float]:
    """Brute-force BM25 (Lucene form) straight from the formula."""
    n = len(docs)
    if n == 0:
        return {}
    avgdl = sum(len(t) for t in docs.values()) / n or 1.0
    counts = {i: Counter(t) for i, t in docs.items()}
    out: dict[int, float] = {}
    for term in set(query):
        df = sum(1 for c in counts.values() if term in c)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, c in counts.items():
            tf = c.get(term, 0)
            if tf:
                norm = k1 * (1 - b + b * len(docs[i]) / avgdl)
                out[i] = out.get(i, 0.0) + idf * tf / (tf + norm)
    return out


def assert_same_results(got: list[tuple[int, float]], expected: dict[int, float]) -> None:
    assert {i for i, _ in got} == set(expected)
    for i, score in got:
        assert score == pytest.approx(expected[i], rel=1e-9)
    scores = [s for _, s in got]
    assert scores == sorted(scores, reverse=True)


# --- tokenize -------------------------------------------------------------------------------


def test_tokenize_lowercases_stems_and_drops_stopwords() -> None:
    assert tokenize("The Runners were RUNNING in the rain") == ["runner", "run", "rain"]
    assert tokenize("the and of to") == []
    assert tokenize("") == []


def test_tokenize_keeps_numbers() -> None:
    assert tokenize("In 1998 it grew 3.5% to 1,000,000 units.") == [
        "1998",
        "grew",
        "3.5",
        "1000000",
        "unit",
    ]
    # A sentence-final period is not part of the number.
    assert tokenize("It was 1998.") == ["1998"]


def test_tokenize_folds_accents_and_apostrophes() -> None:
    assert tokenize("Naïve café") == tokenize("naive cafe")
    assert tokenize("Beethoven's") == tokenize("Beethoven")
    assert tokenize("don't won't") == []


# --- scores ---------------------------------------------------------------------------------


def test_bm25_by_hand_on_three_documents() -> None:
    index = LexicalIndex()
    index.add([10, 20, 30], ["cat cat dog", "dog fish", "bird"])
    # N = 3, lengths 3, 2, 1 -> avgdl = 2. k1 = 1.5, b = 0.75.
    # norm(doc) = k1 * (1 - b + b * dl / avgdl):  10 -> 1.5 * (0.25 + 1.125) = 2.0625
    #                                             20 -> 1.5 * (0.25 + 0.75)  = 1.5
    # "cat": df 1, idf = log(1 + 2.5 / 1.5) = log(8/3); doc 10 tf 2 -> 2 / (2 + 2.0625)
    # "dog": df 2, idf = log(1 + 1.5 / 2.5) = log(1.6); doc 10 tf 1 -> 1 / 3.0625
    #                                                   doc 20 tf 1 -> 1 / 2.5
    cat_10 = math.log(8 / 3) * 2 / 4.0625
    dog_10 = math.log(1.6) * 1 / 3.0625
    dog_20 = math.log(1.6) * 1 / 2.5
    got = index.search("dog", k=10)
    assert [i for i, _ in got] == [20, 10]
    assert got[0][1] == pytest.approx(dog_20) and got[1][1] == pytest.approx(dog_10)
    got = index.search("cats and dogs", k=10)
    assert got[0] == (10, pytest.approx(cat_10 + dog_10))
    assert got[1] == (20, pytest.approx(dog_20))
    # "bird": df 1, idf = log(8/3); doc 30 dl 1 -> norm 1.5 * (0.25 + 0.375) = 0.9375
    assert index.search("bird", k=1) == [(30, pytest.approx(math.log(8 / 3) / 1.9375))]


def test_matches_bm25s_lucene() -> None:
    tokens = [tokenize(t) for t in CORPUS]
    ids = list(range(1000, 1000 + len(CORPUS)))
    index = LexicalIndex(k1=1.5, b=0.75)
    index.add(ids, CORPUS)
    reference = bm25s.BM25(k1=1.5, b=0.75, method="lucene")  # idf log(1 + (N-df+.5)/(df+.5))
    reference.index(tokens, show_progress=False)
    for query in QUERIES:
        q = list(dict.fromkeys(t for t in tokenize(query) if t in reference.vocab_dict))
        got = index.search(query, k=len(CORPUS) + 5)
        if not q:
            assert got == []
            continue
        expected = reference.get_scores(q)
        want = {ids[i]: float(s) for i, s in enumerate(expected) if s > 0}
        assert {i for i, _ in got} == set(want), query
        for doc_id, score in got:
            assert score == pytest.approx(want[doc_id], rel=1e-5), query
        # Same ranking, up to ties within bm25s's float32 precision.
        ranked = sorted(want, key=lambda i: -want[i])
        for (ours, _), theirs in zip(got, ranked, strict=True):
            assert ours == theirs or want[ours] == pytest.approx(want[theirs], rel=1e-5)


def test_search_edge_cases() -> None:
    index = LexicalIndex()
    assert index.search("anything", k=5) == []
    assert len(index) == 0 and index.ids().tolist() == []
    index.add([1, 2], ["red apple", "green apple"])
    assert index.search("the of and", k=5) == []
    assert index.search("apple", k=0) == []
    assert len(index.search("apple", k=100)) == 2
    assert index.search("red", k=100)[0][0] == 1
    with pytest.raises(ValueError, match="k must"):
        index.search("apple", k=-1)


def test_duplicate_ids_rejected() -> None:
    index = LexicalIndex()
    index.add([1, 2], ["a b c", "d e f"])
    with pytest.raises(ValueError, match="already"):
        index.add([3, 2], ["x", "y"])
    with pytest.raises(ValueError, match="twice"):
        index.add([5, 5], ["x", "y"])
    with pytest.raises(ValueError, match="length"):
        index.add([6], ["x", "y"])
    assert sorted(index.ids().tolist()) == [1, 2]  # a failed add changes nothing
    with pytest.raises(ValueError, match="b must"):
        LexicalIndex(b=2.0)


# --- incremental updates --------------------------------------------------------------------


def test_incremental_add_equals_building_from_scratch() -> None:
    ids = list(range(len(CORPUS)))
    whole = LexicalIndex()
    whole.add(ids, CORPUS)
    parts = LexicalIndex()
    for start in range(0, len(CORPUS), 7):
        parts.add(ids[start : start + 7], CORPUS[start : start + 7])
        parts.search("wheat", k=3)  # builds the postings, so later adds use the tail segment
    for query in QUERIES:
        a, b = whole.search(query, k=20), parts.search(query, k=20)
        assert [i for i, _ in a] == [i for i, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], rel=1e-12)


def test_random_adds_and_removes_match_brute_force() -> None:
    rng = random.Random(7)
    words = [f"w{i}" for i in range(40)]
    index = LexicalIndex()
    docs: dict[int, list[str]] = {}
    next_id = 0
    for step in range(60):
        if docs and rng.random() < 0.35:
            gone = rng.sample(sorted(docs), k=min(len(docs), rng.randint(1, 6)))
            assert index.remove(gone + [10**9]) == len(gone)  # unknown ids are ignored
            for i in gone:
                del docs[i]
        else:
            batch = {}
            for _ in range(rng.randint(1, 30)):
                batch[next_id] = [rng.choice(words) for _ in range(rng.randint(0, 12))]
                next_id += 1
            index.add_tokens(list(batch), list(batch.values()))
            docs.update(batch)
        if step == 30:  # cross the 1000-row base/tail boundary once
            extra = {next_id + j: ["w1", "bulk"] for j in range(1100)}
            next_id += 1100
            index.add_tokens(list(extra), list(extra.values()))
            docs.update(extra)
        assert len(index) == len(docs)
        assert sorted(index.ids().tolist()) == sorted(docs)
        query = rng.sample(words, 3)
        got = index.search_tokens(query, k=len(docs) + 1)
        assert_same_results(got, reference_scores(docs, query))


@pytest.mark.parametrize("k", [1, 3, 10, 1000])
def test_top_k_matches_brute_force_with_common_and_rare_terms(k: int) -> None:
    # Common words (in most documents) next to rare ones exercise every scoring path: the
    # shortcut that skips documents with only common terms, and the sparse and dense sums.
    rng = random.Random(k)
    common = ["said", "year", "new"]
    rare = [f"r{i}" for i in range(300)]
    docs = {}
    for i in range(400):
        words = [w for w in common if rng.random() < 0.7]
        words += rng.choices(rare, k=rng.randint(1, 8)) + rng.choices(common, k=rng.randint(0, 4))
        docs[i * 3 + 1] = words
    index = LexicalIndex()
    index.add_tokens(list(docs), list(docs.values()))
    index.remove(list(docs)[::5])
    for i in list(docs)[::5]:
        del docs[i]
    for query in (["said", "r7"], ["r3", "r9", "year", "new"], ["said"], ["said", "year"]):
        want = reference_scores(docs, query)
        best = sorted(want, key=lambda i: (-want[i], i))[:k]
        got = index.search_tokens(query, k)
        assert [i for i, _ in got] == best, query
        assert [s for _, s in got] == pytest.approx([want[i] for i in best], rel=1e-9)


def test_remove_never_returns_removed_ids_and_compacts() -> None:
    ids = list(range(len(CORPUS)))
    index = LexicalIndex()
    index.add(ids, CORPUS)
    removed = set(ids[::2])
    index.remove(removed)
    for query in QUERIES:
        assert not {i for i, _ in index.search(query, k=100)} & removed
    rest = LexicalIndex()
    rest.add([i for i in ids if i not in removed], [CORPUS[i] for i in ids if i not in removed])
    for query in QUERIES:
        assert index.search(query, k=100) == rest.search(query, k=100)
    # A removed id can be added again.
    index.add([0], ["a completely new text about wheat"])
    assert index.search("completely new", k=5)[0][0] == 0


# --- persistence ----------------------------------------------------------------------------


def _built(tmp_path: Path) -> tuple[LexicalIndex, Path]:
    index = LexicalIndex(k1=1.2, b=0.7)
    index.add(list(range(len(CORPUS))), CORPUS)
    index.remove([3, 4, 5])
    index.add([100, 101], ["a late wheat story", "a late bridge story"])
    directory = tmp_path / "lex"
    lexical_files.save(index, directory)
    return index, directory


def test_save_load_round_trip(tmp_path: Path) -> None:
    index, directory = _built(tmp_path)
    loaded = lexical_files.load(directory)
    assert (loaded.k1, loaded.b) == (1.2, 0.7)
    assert len(loaded) == len(index)
    assert loaded.ids().tolist() == index.ids().tolist()
    for query in QUERIES + ["late story"]:
        assert loaded.search(query, k=100) == index.search(query, k=100)
    # Both keep working the same after more changes.
    for idx in (index, loaded):
        idx.add([200], ["wheat wheat bridge"])
        idx.remove([100])
    for query in QUERIES:
        assert loaded.search(query, k=100) == index.search(query, k=100)
    empty = tmp_path / "empty"
    lexical_files.save(LexicalIndex(), empty)
    assert len(lexical_files.load(empty)) == 0


def test_missing_file_is_corrupt(tmp_path: Path) -> None:
    _, directory = _built(tmp_path)
    (directory / "term_ids.npy").unlink()
    with pytest.raises(CorruptIndex, match="term_ids.npy is missing"):
        lexical_files.load(directory)
    with pytest.raises(CorruptIndex, match="missing"):
        lexical_files.load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "name", ["doc_ptr", "term_ids", "term_counts", "doc_len", "doc_ids", "live"]
)
def test_truncated_array_is_corrupt(tmp_path: Path, name: str) -> None:
    _, directory = _built(tmp_path)
    path = directory / f"{name}.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 9])
    with pytest.raises(CorruptIndex, match="damaged"):
        lexical_files.load(directory)
    path.write_bytes(data[:40])  # cut inside the header
    with pytest.raises(CorruptIndex, match="damaged"):
        lexical_files.load(directory)


def test_inconsistent_arrays_are_corrupt(tmp_path: Path) -> None:
    _, directory = _built(tmp_path)
    lengths = np.load(directory / "doc_len.npy")
    lengths[0] += 1
    np.save(directory / "doc_len.npy", lengths)
    with pytest.raises(CorruptIndex, match="lengths"):
        lexical_files.load(directory)
    np.save(directory / "doc_len.npy", lengths[:-1])
    with pytest.raises(CorruptIndex, match="rows"):
        lexical_files.load(directory)
    np.save(directory / "doc_len.npy", lengths.astype(np.float64))
    with pytest.raises(CorruptIndex, match="type"):
        lexical_files.load(directory)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: "{not json",
        lambda m: json.dumps({**m, "terms": m["terms"][:-3]}),  # term ids now out of range
        lambda m: json.dumps({**m, "terms": m["terms"][:-1] + [m["terms"][0]]}),
        lambda m: json.dumps({**m, "n_rows": m["n_rows"] + 1}),
        lambda m: json.dumps({**m, "format": "something-else"}),
        lambda m: json.dumps({**m, "version": 99}),
        lambda m: json.dumps({**m, "b": "wide"}),
        lambda m: json.dumps([1, 2, 3]),
    ],
)
def test_edited_json_is_corrupt(tmp_path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    _, directory = _built(tmp_path)
    path = directory / "lexical.json"
    path.write_text(edit(json.loads(path.read_text())))
    with pytest.raises(CorruptIndex, match="damaged"):
        lexical_files.load(directory)


def test_pickled_array_is_refused(tmp_path: Path) -> None:
    _, directory = _built(tmp_path)
    np.save(directory / "doc_ids.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CorruptIndex, match="doc_ids.npy"):
        lexical_files.load(directory)


@pytest.mark.parametrize("rows_per_block", [1, 3, 64])
def test_load_after_removals_matches_the_saved_index_in_small_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows_per_block: int
) -> None:
    """Loading sums lengths and counts document frequencies a block of rows at a time (bounded
    memory at a million passages); small blocks must give what one block gives."""
    rng = random.Random(rows_per_block)
    words = [f"w{i}" for i in range(30)]
    docs = {i: [rng.choice(words) for _ in range(rng.randint(0, 9))] for i in range(150)}
    index = LexicalIndex()
    index.add_tokens(list(docs), list(docs.values()))
    gone = rng.sample(sorted(docs), 40)
    index.remove(gone)
    for i in gone:
        del docs[i]
    lexical_files.save(index, tmp_path / "lex")
    for module, name in ((lexical_files, "_row_sums"), (lexical, "_live_df")):
        real = getattr(module, name)
        monkeypatch.setattr(
            module, name, lambda *a, _real=real: _real(*a, rows_per_block=rows_per_block)
        )
    loaded = lexical_files.load(tmp_path / "lex")
    want_df = Counter(w for tokens in docs.values() for w in set(tokens))
    assert {t: int(loaded._df[i]) for i, t in enumerate(loaded._terms) if loaded._df[i]} == {
        t: n for t, n in want_df.items()
    }
    for query in (words[:3], words[10:12], ["w7"]):
        got = loaded.search_tokens(query, k=len(docs) + 1)
        assert_same_results(got, reference_scores(docs, query))
        assert got == index.search_tokens(query, k=len(docs) + 1)
    # A damaged length is still caught with small blocks.
    np.save(tmp_path / "lex" / "doc_len.npy", np.zeros(len(index._doc_len.view), np.int32))
    with pytest.raises(CorruptIndex, match="lengths"):
        lexical_files.load(tmp_path / "lex")


def test_a_term_repeated_past_65535_times_is_clipped_not_wrapped() -> None:
    docs = {1: ["flood"] * 70_000 + ["river"], 2: ["flood", "river", "bank"], 3: ["bank"]}
    index, read_only = LexicalIndex(), LexicalIndex()
    for lex in (index, read_only):
        lex.add_tokens(list(docs), list(docs.values()))
    read_only.make_read_only()  # clips the counts it keeps before any search, not in the postings
    assert read_only._term_counts.view.dtype == np.uint16
    clipped = {**docs, 1: ["flood"] * 65_535 + ["other"] * 4_465 + ["river"]}
    # Same length, count held at 65,535: a wrapped uint16 count (4,464) would score lower.
    want = reference_scores(clipped, ["flood"])
    for lex in (index, read_only):
        got = dict(lex.search_tokens(["flood"], k=3))
        assert got.keys() == want.keys() == {1, 2}
        assert got[1] == pytest.approx(want[1], rel=1e-9)
        assert got[2] == pytest.approx(want[2], rel=1e-9)


def test_read_only_index_searches_the_same_and_refuses_changes(tmp_path: Path) -> None:
    index, directory = _built(tmp_path)
    loaded = lexical_files.load(directory)
    want = {q: index.search(q, k=100) for q in QUERIES + ["late story"]}
    loaded.make_read_only()
    assert len(loaded._term_ids.view) > 0  # kept until a search has built the postings
    for query, hits in want.items():
        assert loaded.search(query, k=100) == hits
    assert len(loaded._term_ids.view) == len(loaded._term_counts.view) == 0  # memory let go
    assert loaded.idf(["wheat", "bridge"]) == index.idf(["wheat", "bridge"])
    assert loaded.ids().tolist() == index.ids().tolist() and len(loaded) == len(index)
    for change in (
        lambda: loaded.add([999], ["wheat"]),
        lambda: loaded.remove([100]),
        lambda: lexical_files.save(loaded, tmp_path / "copy"),
    ):
        with pytest.raises(RuntimeError, match="searching only"):
            change()
    assert loaded.search(QUERIES[0], k=100) == want[QUERIES[0]]  # unchanged by the refusals
    # Made read-only after its postings exist, an index lets the term arrays go at once.
    searched = lexical_files.load(directory)
    searched.search(QUERIES[0], k=1)
    searched.make_read_only()
    assert len(searched._term_ids.view) == 0
    assert searched.search(QUERIES[1], k=100) == want[QUERIES[1]]
