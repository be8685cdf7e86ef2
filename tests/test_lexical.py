"""BM25 over segments: hand-computed scores, agreement with bm25s, deletions and merges, files."""

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
from rag.store import lexical_files
from rag.store.lexical import LexicalSegment, LexicalView, idf, search
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


# --- an index of segments, as the store keeps them --------------------------------------------


class Segmented:
    """Passages in segments (each: ascending ids and their BM25 rows) with deletions."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.parts: list[tuple[LexicalSegment, np.ndarray]] = []
        self.deleted: set[int] = set()

    def add(self, docs: dict[int, list[str]]) -> None:
        ids = sorted(docs)
        self.parts.append((LexicalSegment.build([docs[i] for i in ids]), np.array(ids, np.int64)))

    def add_texts(self, ids: list[int], texts: list[str]) -> None:
        self.add({i: tokenize(t) for i, t in zip(ids, texts, strict=True)})

    def merge(self, which: list[int]) -> None:
        """Merge some segments into one, dropping their deleted passages."""
        chosen = [self.parts[i] for i in which]
        keep = [np.flatnonzero(~np.isin(ids, list(self.deleted))) for _, ids in chosen]
        ids = np.concatenate([ids[k] for (_, ids), k in zip(chosen, keep, strict=True)])
        order = np.argsort(ids)
        seg = LexicalSegment.merge([(s, k) for (s, _), k in zip(chosen, keep, strict=True)], order)
        self.parts = [p for i, p in enumerate(self.parts) if i not in which] + [(seg, ids[order])]
        self.deleted -= {int(i) for (_, all_ids) in chosen for i in all_ids}  # dropped for good

    def views(self) -> list[LexicalView]:
        gone = np.array(sorted(self.deleted), np.int64)
        out = []
        for seg, ids in self.parts:
            rows = np.flatnonzero(np.isin(ids, gone))
            out.append(LexicalView(seg, ids, rows))
        return out

    def search(self, query: list[str] | str, k: int) -> list[tuple[int, float]]:
        tokens = tokenize(query) if isinstance(query, str) else query
        return search(self.views(), tokens, k, self.k1, self.b)


# --- scores ---------------------------------------------------------------------------------


@pytest.mark.parametrize("split", [[3], [1, 1, 1], [2, 1]])
def test_bm25_by_hand_on_three_documents(split: list[int]) -> None:
    index = Segmented()
    docs = {10: ["cat", "cat", "dog"], 20: ["dog", "fish"], 30: ["bird"]}
    start = 0
    for n in split:  # one segment or several: the same statistics
        index.add(dict(list(docs.items())[start : start + n]))
        start += n
    # N = 3, lengths 3, 2, 1 -> avgdl = 2. k1 = 1.5, b = 0.75.
    # norm(doc) = k1 * (1 - b + b * dl / avgdl):  10 -> 1.5 * (0.25 + 1.125) = 2.0625
    #                                             20 -> 1.5 * (0.25 + 0.75)  = 1.5
    # "cat": df 1, idf = log(1 + 2.5 / 1.5) = log(8/3); doc 10 tf 2 -> 2 / (2 + 2.0625)
    # "dog": df 2, idf = log(1 + 1.5 / 2.5) = log(1.6); doc 10 tf 1 -> 1 / 3.0625
    #                                                   doc 20 tf 1 -> 1 / 2.5
    cat_10 = math.log(8 / 3) * 2 / 4.0625
    dog_10 = math.log(1.6) * 1 / 3.0625
    dog_20 = math.log(1.6) * 1 / 2.5
    got = index.search(["dog"], k=10)
    assert [i for i, _ in got] == [20, 10]
    assert got[0][1] == pytest.approx(dog_20) and got[1][1] == pytest.approx(dog_10)
    got = index.search(["cat", "dog"], k=10)
    assert got[0] == (10, pytest.approx(cat_10 + dog_10))
    assert got[1] == (20, pytest.approx(dog_20))
    # "bird": df 1, idf = log(8/3); doc 30 dl 1 -> norm 1.5 * (0.25 + 0.375) = 0.9375
    assert index.search(["bird"], k=1) == [(30, pytest.approx(math.log(8 / 3) / 1.9375))]
    assert idf(index.views(), ["dog", "zebra"]) == [
        pytest.approx(math.log(1.6)),
        pytest.approx(math.log(1 + 3.5 / 0.5)),
    ]


@pytest.mark.parametrize("segments", [1, 4])
def test_matches_bm25s_lucene(segments: int) -> None:
    tokens = [tokenize(t) for t in CORPUS]
    ids = list(range(1000, 1000 + len(CORPUS)))
    index = Segmented()
    size = math.ceil(len(CORPUS) / segments)
    for lo in range(0, len(CORPUS), size):
        index.add_texts(ids[lo : lo + size], CORPUS[lo : lo + size])
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
    index = Segmented()
    assert index.search("anything", k=5) == []
    assert search([], ["x"], 5, 1.5, 0.75) == []
    index.add_texts([1, 2], ["red apple", "green apple"])
    assert index.search("the of and", k=5) == []
    assert index.search("apple", k=0) == []
    assert len(index.search("apple", k=100)) == 2
    assert index.search("red", k=100)[0][0] == 1
    with pytest.raises(ValueError, match="k must"):
        index.search("apple", k=-1)
    empty = LexicalSegment.build([])
    assert (
        empty.n_docs == 0
        and search(
            [LexicalView(empty, np.zeros(0, np.int64), np.zeros(0, np.int64))], ["x"], 3, 1.5, 0.75
        )
        == []
    )


# --- segments, deletions and merges ---------------------------------------------------------


def test_one_segment_and_many_score_exactly_alike() -> None:
    ids = list(range(len(CORPUS)))
    whole, parts = Segmented(), Segmented()
    whole.add_texts(ids, CORPUS)
    for start in range(0, len(CORPUS), 7):
        parts.add_texts(ids[start : start + 7], CORPUS[start : start + 7])
    for query in QUERIES:
        assert whole.search(query, k=20) == parts.search(query, k=20)  # bit for bit


def test_random_adds_removes_and_merges_match_brute_force() -> None:
    rng = random.Random(7)
    words = [f"w{i}" for i in range(40)]
    index = Segmented()
    docs: dict[int, list[str]] = {}
    next_id = 0
    for step in range(80):
        roll = rng.random()
        if docs and roll < 0.3:
            gone = rng.sample(sorted(docs), k=min(len(docs), rng.randint(1, 6)))
            index.deleted.update(gone)
            for i in gone:
                del docs[i]
        elif len(index.parts) > 2 and roll < 0.45:
            index.merge(rng.sample(range(len(index.parts)), rng.randint(2, len(index.parts))))
        else:
            batch = {}
            for _ in range(rng.randint(1, 30)):
                batch[next_id] = [rng.choice(words) for _ in range(rng.randint(0, 12))]
                next_id += 1
            index.add(batch)
            docs.update(batch)
        if step == 40:  # one segment much larger than the others
            extra = {next_id + j: ["w1", "bulk"] for j in range(1100)}
            next_id += 1100
            index.add(extra)
            docs.update(extra)
        views = index.views()
        assert sum(v.n_live for v in views) == len(docs)
        query = rng.sample(words, 3)
        got = index.search(query, k=len(docs) + 1)
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
    index = Segmented()
    items = list(docs.items())
    for lo in (0, 150, 390):  # a big, a middle and a tiny segment
        index.add(dict(items[lo : {0: 150, 150: 390, 390: 400}[lo]]))
    index.deleted.update(list(docs)[::5])
    for i in list(docs)[::5]:
        del docs[i]
    for query in (["said", "r7"], ["r3", "r9", "year", "new"], ["said"], ["said", "year"]):
        want = reference_scores(docs, query)
        best = sorted(want, key=lambda i: (-want[i], i))[:k]
        got = index.search(query, k)
        assert [i for i, _ in got] == best, query
        assert [s for _, s in got] == pytest.approx([want[i] for i in best], rel=1e-9)


def test_a_filter_keeps_exactly_the_allowed_rows() -> None:
    index = Segmented()
    index.add_texts(list(range(25)), CORPUS[:25])
    index.add_texts(list(range(25, 50)), CORPUS[25:])
    index.deleted.update({2, 30})
    allowed = set(range(0, 50, 3))
    views = index.views()
    masks = [np.isin(v.ids, list(allowed)) for v in views]
    docs = {i: tokenize(t) for i, t in enumerate(CORPUS) if i not in index.deleted}
    for query in QUERIES:
        want = {i: s for i, s in reference_scores(docs, tokenize(query), 1.5, 0.75).items()
                if i in allowed}  # fmt: skip
        got = search(views, tokenize(query), 4, 1.5, 0.75, masks)
        best = sorted(want, key=lambda i: (-want[i], i))[:4]
        assert [i for i, _ in got] == best


def test_a_term_repeated_past_65535_times_is_clipped_not_wrapped() -> None:
    docs = {1: ["flood"] * 70_000 + ["river"], 2: ["flood", "river", "bank"], 3: ["bank"]}
    index = Segmented()
    index.add(docs)
    assert index.parts[0][0].post_tf.dtype == np.uint16
    clipped = {**docs, 1: ["flood"] * 65_535 + ["other"] * 4_465 + ["river"]}
    # Same length, count held at 65,535: a wrapped uint16 count (4,464) would score lower.
    want = reference_scores(clipped, ["flood"])
    got = dict(index.search(["flood"], k=3))
    assert got.keys() == want.keys() == {1, 2}
    assert got[1] == pytest.approx(want[1], rel=1e-9)
    assert got[2] == pytest.approx(want[2], rel=1e-9)


# --- files ----------------------------------------------------------------------------------


def _saved(tmp_path: Path) -> tuple[Segmented, Path]:
    index = Segmented(k1=1.2, b=0.7)
    index.add_texts(list(range(len(CORPUS))), CORPUS)
    directory = tmp_path / "lex"
    lexical_files.save(index.parts[0][0], directory)
    return index, directory


def test_save_load_round_trip(tmp_path: Path) -> None:
    index, directory = _saved(tmp_path)
    loaded = Segmented(k1=1.2, b=0.7)
    loaded.parts = [(lexical_files.load(directory), index.parts[0][1])]
    assert isinstance(loaded.parts[0][0].fwd_terms, np.memmap)  # only deletions read it
    for query in QUERIES:
        assert loaded.search(query, k=100) == index.search(query, k=100)
    for idx in (index, loaded):
        idx.deleted.update({3, 17})
    for query in QUERIES:
        assert loaded.search(query, k=100) == index.search(query, k=100)
    assert lexical_files.check_forward(loaded.parts[0][0], directory) == []
    lexical_files.save(LexicalSegment.build([]), tmp_path / "empty")
    assert lexical_files.load(tmp_path / "empty").n_docs == 0


def test_missing_file_is_corrupt(tmp_path: Path) -> None:
    _, directory = _saved(tmp_path)
    (directory / "post_rows.npy").unlink()
    with pytest.raises(CorruptIndex, match="post_rows.npy is missing"):
        lexical_files.load(directory)
    with pytest.raises(CorruptIndex, match="missing"):
        lexical_files.load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "name", ["post_ptr", "post_rows", "post_tf", "doc_len", "fwd_ptr", "fwd_terms"]
)
def test_truncated_array_is_corrupt(tmp_path: Path, name: str) -> None:
    _, directory = _saved(tmp_path)
    path = directory / f"{name}.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 9])
    with pytest.raises(CorruptIndex, match="damaged"):
        lexical_files.load(directory)
    path.write_bytes(data[:40])  # cut inside the header
    with pytest.raises(CorruptIndex, match="damaged"):
        lexical_files.load(directory)


def test_inconsistent_arrays_are_corrupt(tmp_path: Path) -> None:
    _, directory = _saved(tmp_path)
    lengths = np.load(directory / "doc_len.npy")
    lengths[0] -= 1
    np.save(directory / "doc_len.npy", lengths)
    with pytest.raises(CorruptIndex, match="lengths"):
        lexical_files.load(directory)
    np.save(directory / "doc_len.npy", lengths[:-1])
    with pytest.raises(CorruptIndex, match="rows"):
        lexical_files.load(directory)
    np.save(directory / "doc_len.npy", lengths.astype(np.float64))
    with pytest.raises(CorruptIndex, match="type"):
        lexical_files.load(directory)


def test_per_row_terms_that_disagree_with_the_postings_are_found(tmp_path: Path) -> None:
    _, directory = _saved(tmp_path)
    terms = np.load(directory / "fwd_terms.npy")
    terms[0] = (terms[0] + 1) % terms.max()
    np.save(directory / "fwd_terms.npy", terms)
    seg = lexical_files.load(directory)  # cheap checks pass: only rag check reads them all
    assert lexical_files.check_forward(seg, directory)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: "{not json",
        lambda m: json.dumps({**m, "terms": m["terms"][:-3]}),  # term ids now out of range
        lambda m: json.dumps({**m, "terms": m["terms"][:-1] + [m["terms"][0]]}),
        lambda m: json.dumps({**m, "n_docs": m["n_docs"] + 1}),
        lambda m: json.dumps({**m, "format": "something-else"}),
        lambda m: json.dumps({**m, "version": 99}),
        lambda m: json.dumps({**m, "n_entries": "many"}),
        lambda m: json.dumps([1, 2, 3]),
    ],
)
def test_edited_json_is_corrupt(tmp_path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    _, directory = _saved(tmp_path)
    path = directory / "terms.json"
    path.write_text(edit(json.loads(path.read_text())))
    with pytest.raises(CorruptIndex, match="damaged"):
        lexical_files.load(directory)


def test_pickled_array_is_refused(tmp_path: Path) -> None:
    _, directory = _saved(tmp_path)
    np.save(directory / "doc_len.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CorruptIndex, match="doc_len.npy"):
        lexical_files.load(directory)


def test_row_sums_in_small_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading sums lengths a block of entries at a time (bounded memory at a million
    passages); small blocks must give what one block gives."""
    _, directory = _saved(tmp_path)
    monkeypatch.setattr(lexical_files, "_BLOCK", 7)
    lexical_files.load(directory)
    lengths = np.load(directory / "doc_len.npy")
    lengths[-1] += 1
    np.save(directory / "doc_len.npy", lengths)
    with pytest.raises(CorruptIndex, match="lengths"):
        lexical_files.load(directory)
