"""Evaluation harness: normalisation, hand-checked metrics, question files, SQuAD converter."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.eval.metrics import Passage, contains_answer, ndcg_at, normalize_answer, source_matches
from rag.eval.questions import EvalQuestion, load_questions
from rag.eval.runner import evaluate, format_table

ROOT = Path(__file__).resolve().parents[1]


def _load_converter():
    spec = importlib.util.spec_from_file_location("squad_convert", ROOT / "bench/squad_convert.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["squad_convert"] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Denver Broncos!", "denver broncos"),
        ("  an   Apple,  a pear ", "apple pear"),
        ("1,000", "1000"),  # ASCII punctuation is deleted, as in the SQuAD script
        ("Theory of the atom", "theory of atom"),  # 'the' inside 'theory' survives
        ("Broncos—the champions", "broncos champions"),  # em dash separates words
        ("“Golden” anniversary", "golden anniversary"),
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_contains_answer_matches_whole_words_only() -> None:
    assert contains_answer("It ended in 1945.", ["1945"])
    assert not contains_answer("It ended in 1945.", ["194"])
    assert contains_answer("The Denver Broncos won.", ["denver broncos", "Carolina"])
    assert not contains_answer("anything", ["the"])  # answer normalising to nothing never matches


def test_source_matches_by_name_or_path_ending() -> None:
    assert source_matches("/data/articles/Kenya.txt", "Kenya.txt")
    assert source_matches("Kenya.txt", "Kenya.txt")
    assert source_matches("C:\\x\\sub\\Kenya.txt", "sub/Kenya.txt")
    assert not source_matches("/data/articles/NotKenya.txt", "Kenya.txt")
    assert not source_matches("/data/other/Kenya.txt", "sub/Kenya.txt")


# ---------------------------------------------------------------------------- retrieval metrics


Q = EvalQuestion("q1", "Who won?", ("Denver Broncos",), ("gold.txt",))


def test_metrics_on_handcrafted_ranking() -> None:
    ranking = [
        Passage("/a/other.txt", "The Denver Broncos won."),  # rank 1: wrong source
        Passage("/a/gold.txt", "Nothing useful here."),  # rank 2: gold source, no answer
        Passage("/a/gold.txt", "the denver broncos, champions"),  # rank 3: first hit
        Passage("/a/third.txt", "x"),
    ]
    report = evaluate([Q], lambda _q: ranking)
    # First hit at rank 3 -> hit@1 = 0, hit@3 = hit@5 = hit@10 = 1, RR = 1/3.
    assert report.hit_at_1 == 0.0
    assert report.hit_at_3 == report.hit_at_5 == report.hit_at_10 == 1.0
    assert report.mrr_at_10 == pytest.approx(1 / 3)
    # Distinct sources: other, gold, third -> gold at document rank 2: DCG = 1/log2(3);
    # ideal (one gold source) = 1/log2(2) = 1 -> nDCG = 0.6309.
    assert report.ndcg_at_10 == pytest.approx(1 / math.log2(3))
    assert report.rows[0].first_hit_rank == 3
    assert report.quote_hit is None and report.abstention_rate is None  # no answerer given


def test_metrics_average_over_questions_and_miss_scores_zero() -> None:
    q2 = EvalQuestion("q2", "Where?", ("Paris",), ("p.txt",))
    lists = {
        "Who won?": [Passage("gold.txt", "Denver Broncos")],  # hit at 1: RR 1
        "Where?": [Passage("x.txt", "Paris")] * 3 + [Passage("p.txt", "in Paris")],  # hit at 4
    }
    report = evaluate([Q, q2], lambda q: lists[q])
    assert report.hit_at_1 == 0.5  # (1 + 0) / 2
    assert report.hit_at_3 == 0.5
    assert report.hit_at_5 == 1.0
    assert report.mrr_at_10 == pytest.approx((1 + 1 / 4) / 2)
    # q2's distinct sources: x, p -> gold at rank 2 -> 1/log2(3); q1: 1.0.
    assert report.ndcg_at_10 == pytest.approx((1 + 1 / math.log2(3)) / 2)

    miss = evaluate([Q], lambda _q: [Passage("gold.txt", "no")] * 12)
    assert miss.hit_at_10 == 0.0 and miss.mrr_at_10 == 0.0
    assert miss.ndcg_at_10 == 1.0  # the document was found even though no passage answers


def test_hit_beyond_k_is_not_counted() -> None:
    ranking = [Passage("x.txt", "")] * 10 + [Passage("gold.txt", "Denver Broncos")]
    report = evaluate([Q], lambda _q: ranking, k=10)
    assert report.hit_at_10 == 0.0 and report.mrr_at_10 == 0.0 and report.ndcg_at_10 == 0.0


def test_question_without_answers_hits_on_source_alone() -> None:
    q = EvalQuestion("q", "Tell me", (), ("gold.txt",))
    report = evaluate([q], lambda _q: [Passage("x.txt", ""), Passage("d/gold.txt", "anything")])
    assert report.hit_at_1 == 0.0 and report.hit_at_3 == 1.0
    assert report.mrr_at_10 == 0.5


def test_ndcg_with_two_gold_sources() -> None:
    # Distinct order: a, x, b (a repeated later is ignored). Gains at ranks 1 and 3:
    # DCG = 1 + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3) = 1.6309 -> 0.9197.
    value = ndcg_at(["a.txt", "x.txt", "a.txt", "b.txt"], ["a.txt", "b.txt"])
    assert value == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # Two paths that both match the same gold name earn credit once.
    assert ndcg_at(["p/a.txt", "q/a.txt"], ["a.txt", "b.txt"]) == pytest.approx(
        1 / (1 + 1 / math.log2(3))
    )
    assert ndcg_at([], ["a.txt"]) == 0.0


# ---------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class FakeCitation:
    quote: str


@dataclass(frozen=True)
class FakeAnswer:
    abstained: bool
    citations: tuple[FakeCitation, ...]


def test_quote_hits_and_abstention_rates() -> None:
    questions = [
        EvalQuestion("a1", "q-a1", ("Broncos",), ("g.txt",)),  # first quote right
        EvalQuestion("a2", "q-a2", ("Panthers",), ("g.txt",)),  # only second quote right
        EvalQuestion("a3", "q-a3", ("Levi's Stadium",), ("g.txt",)),  # wrongly abstains
        EvalQuestion("a4", "q-a4", ("Santa Clara",), ("g.txt",)),  # wrong quote
        EvalQuestion("i1", "q-i1", (), ("g.txt",), impossible=True),  # abstains: correct
        EvalQuestion("i2", "q-i2", (), ("g.txt",), impossible=True),  # answers: wrong
    ]
    replies = {
        "q-a1": FakeAnswer(False, (FakeCitation("The Broncos won."),)),
        "q-a2": FakeAnswer(False, (FakeCitation("Nope."), FakeCitation("the Panthers lost"))),
        "q-a3": FakeAnswer(True, ()),
        "q-a4": FakeAnswer(False, (FakeCitation("Santa Monica"),)),
        "q-i1": FakeAnswer(True, ()),
        "q-i2": FakeAnswer(False, (FakeCitation("something"),)),
    }
    asked: list[str] = []

    def retrieve(q: str) -> list[Passage]:
        asked.append(q)
        return [Passage("g.txt", "Broncos Panthers Levi's Stadium Santa Clara")]

    report = evaluate(questions, retrieve, replies.__getitem__)
    assert asked == ["q-a1", "q-a2", "q-a3", "q-a4"]  # impossible ones are not retrieved for
    assert (report.n, report.n_answerable, report.n_impossible) == (6, 4, 2)
    assert report.quote_hit == pytest.approx(1 / 4)  # a1 only
    assert report.any_quote_hit == pytest.approx(2 / 4)  # a1, a2
    assert report.abstention_rate == pytest.approx(1 / 2)  # i1 of i1, i2
    assert report.false_abstention_rate == pytest.approx(1 / 4)  # a3
    assert report.hit_at_1 == 1.0  # retrieval metrics see answerable questions only
    d = report.to_dict()
    assert d["metrics"]["quote_hit"] == pytest.approx(0.25)
    assert len(d["rows"]) == 6 and d["rows"][0]["hits"]["1"] is True
    json.dumps(d)  # JSON-ready


def test_progress_is_called_per_question() -> None:
    calls: list[tuple[int, int]] = []
    evaluate([Q, Q], lambda _q: [], progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]


def test_format_table_side_by_side_with_ratio() -> None:
    ours = evaluate([Q], lambda _q: [Passage("gold.txt", "Denver Broncos")])
    base = evaluate([Q], lambda _q: [Passage("x.txt", ""), Passage("gold.txt", "Denver Broncos")])
    text = format_table({"ours": ours, "baseline": base})
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "ours", "baseline", "ours/baseline"]
    mrr = next(line for line in lines if line.startswith("mrr@10")).split()
    assert mrr == ["mrr@10", "1.000", "0.500", "2.000"]
    hit1 = next(line for line in lines if line.startswith("hit@1 ")).split()
    assert hit1 == ["hit@1", "1.000", "0.000", "-"]  # no ratio against zero
    ndcg = next(line for line in lines if line.startswith("ndcg@10")).split()
    assert ndcg[1] == "1.000"
    single = format_table({"baseline": base}).splitlines()
    assert single[0].split() == ["metric", "baseline"]
    assert next(line for line in single if line.startswith("n ")).split() == ["n", "1"]


# ---------------------------------------------------------------------------- question files


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = {"id": "1", "question": "Who?", "answers": ["X"], "gold_sources": ["a.txt"]}


def test_load_questions_reads_valid_file(tmp_path: Path) -> None:
    imp = {
        "id": "2",
        "question": "Why?",
        "answers": [],
        "gold_sources": ["a.txt"],
        "impossible": True,
    }
    path = _write(tmp_path, [json.dumps(GOOD), "", json.dumps(imp)])
    qs = load_questions(path)
    assert qs == [
        EvalQuestion("1", "Who?", ("X",), ("a.txt",), False),
        EvalQuestion("2", "Why?", (), ("a.txt",), True),
    ]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "bad JSON"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "answers"}), "missing field 'answers'"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "id"}), "missing field 'id'"),
        (json.dumps({**GOOD, "question": "   "}), "empty question"),
        (json.dumps({**GOOD, "answers": "X"}), "list of strings"),
        (json.dumps({**GOOD, "impossible": "no"}), "true or false"),
        (json.dumps({**GOOD, "impossible": True}), "cannot have answers"),
        (json.dumps({**GOOD, "gold_sources": []}), "without gold_sources"),
        (json.dumps(GOOD), "duplicate id"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_load_questions_names_line_and_problem(tmp_path: Path, bad_line: str, message: str) -> None:
    path = _write(tmp_path, [json.dumps(GOOD), bad_line])
    with pytest.raises(ValueError, match=f"line 2: .*{message}"):
        load_questions(path)


# ---------------------------------------------------------------------------- converter


SQUAD_V1 = {
    "version": "1.1",
    "data": [
        {
            "title": "Super_Bowl_50",
            "paragraphs": [
                {
                    "context": "Denver beat Carolina.",
                    "qas": [
                        {
                            "id": "a",
                            "question": "Who won?",
                            "answers": [
                                {"text": "Denver", "answer_start": 0},
                                {"text": "Denver", "answer_start": 0},
                                {"text": "Denver beat", "answer_start": 0},
                            ],
                        },
                    ],
                },
                {
                    "context": "It was in 2016.",
                    "qas": [{"id": "b", "question": "When?", "answers": [{"text": "2016"}]}],
                },
            ],
        },
        {
            "title": "Sky_(United_Kingdom)",
            "paragraphs": [
                {
                    "context": "Sky is a broadcaster.",
                    "qas": [
                        {
                            "id": "c",
                            "question": "What is Sky?",
                            "answers": [{"text": "a broadcaster"}],
                        }
                    ],
                }
            ],
        },
    ],
}


def test_converter_v1(tmp_path: Path) -> None:
    conv = _load_converter()
    src = tmp_path / "dev.json"
    src.write_text(json.dumps(SQUAD_V1), encoding="utf-8")
    assert conv.main([str(src), str(tmp_path / "out")]) == 0
    art = tmp_path / "out" / "articles"
    assert sorted(p.name for p in art.iterdir()) == [
        "Sky_(United_Kingdom).txt",
        "Super_Bowl_50.txt",
    ]
    assert (art / "Super_Bowl_50.txt").read_text(encoding="utf-8") == (
        "Super Bowl 50\n\nDenver beat Carolina.\n\nIt was in 2016.\n"
    )
    qs = load_questions(tmp_path / "out" / "questions.jsonl")
    assert [q.id for q in qs] == ["a", "b", "c"]
    assert qs[0].answers == ("Denver", "Denver beat")  # deduplicated, original order
    assert qs[0].gold_sources == ("Super_Bowl_50.txt",)
    assert qs[2].gold_sources == ("Sky_(United_Kingdom).txt",)
    assert not any(q.impossible for q in qs)


def test_converter_v2_and_sampling(tmp_path: Path) -> None:
    conv = _load_converter()
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "Normans",
                "paragraphs": [
                    {
                        "context": "The Normans lived in Normandy.",
                        "qas": [
                            {
                                "id": f"p{i}",
                                "question": f"Where {i}?",
                                "answers": [{"text": "Normandy"}],
                                "is_impossible": False,
                            }
                            for i in range(5)
                        ]
                        + [
                            {
                                "id": f"i{i}",
                                "question": f"Why {i}?",
                                "answers": [],
                                "is_impossible": True,
                            }
                            for i in range(5)
                        ],
                    }
                ],
            }
        ],
    }
    src = tmp_path / "dev2.json"
    src.write_text(json.dumps(data), encoding="utf-8")
    assert conv.convert(src, tmp_path / "full") == (1, 10)
    full = load_questions(tmp_path / "full" / "questions.jsonl")
    assert [q.impossible for q in full] == [False] * 5 + [True] * 5
    assert all(q.answers == () for q in full if q.impossible)

    assert conv.convert(src, tmp_path / "s1", sample=4, seed=0) == (1, 4)
    assert conv.convert(src, tmp_path / "s2", sample=4, seed=0) == (1, 4)
    ids1 = [q.id for q in load_questions(tmp_path / "s1" / "questions.jsonl")]
    ids2 = [q.id for q in load_questions(tmp_path / "s2" / "questions.jsonl")]
    assert ids1 == ids2  # a fixed seed gives a fixed sample
    order = [q.id for q in full]
    assert ids1 == sorted(ids1, key=order.index)  # kept in dataset order
    assert len(set(ids1)) == 4
    assert conv.convert(src, tmp_path / "s3", sample=50) == (1, 10)  # more than there are: all


def test_safe_title() -> None:
    conv = _load_converter()
    assert conv.safe_title("Fresno,_California") == "Fresno,_California"
    assert conv.safe_title("a/b c?") == "a_b_c"
    assert conv.safe_title("..") == "untitled"


# ---------------------------------------------------------------------------- reading step


def test_exact_match_and_f1_use_squad_normalisation() -> None:
    from rag.eval.metrics import exact_match, token_f1

    assert exact_match("the Denver Broncos.", ["Denver Broncos"])
    assert not exact_match("Denver", ["Denver Broncos"])
    assert not exact_match("", ["Denver Broncos"])
    assert token_f1("Denver", ["Denver Broncos"]) == pytest.approx(2 / 3)
    assert token_f1("Denver Broncos", ["Carolina", "the Denver Broncos"]) == 1.0
    assert token_f1("Carolina Panthers", ["Denver Broncos"]) == 0.0


@dataclass(frozen=True)
class ShortAnswer:
    abstained: bool
    citations: tuple[FakeCitation, ...]
    text: str
    short_answer: str
    confidence: float


def test_reading_step_counts_only_questions_with_gold_in_top5() -> None:
    questions = [
        EvalQuestion("a1", "q1", ("Broncos",), ("g.txt",)),  # gold at rank 1, read right
        EvalQuestion("a2", "q2", ("Panthers",), ("g.txt",)),  # gold at rank 1, read wrong
        EvalQuestion("a3", "q3", ("Levi",), ("g.txt",)),  # gold at rank 6: not in the reading step
    ]
    passages = {
        "q1": [Passage("g.txt", "the Broncos won")],
        "q2": [Passage("g.txt", "the Panthers lost")],
        "q3": [Passage("x.txt", "-")] * 5 + [Passage("g.txt", "at Levi")],
    }
    replies = {
        "q1": ShortAnswer(
            False, (FakeCitation("The Broncos won."),), "The Broncos won. [1]", "the Broncos", 0.9
        ),
        "q2": ShortAnswer(
            False,
            (FakeCitation("Nope."), FakeCitation("Panthers")),
            "Nope. [1] Panthers [2]",
            "",
            0.4,
        ),
        "q3": ShortAnswer(False, (FakeCitation("at Levi"),), "at Levi [1]", "Levi's", 0.2),
    }
    report = evaluate(questions, passages.__getitem__, replies.__getitem__)
    assert report.n_gold_top5 == 2
    assert report.reading_quote_hit == pytest.approx(1 / 2)  # a1 of a1, a2
    assert report.reading_answer_hit == 1.0  # a2's answer holds Panthers in its second quote
    assert report.answer_hit == 1.0
    assert report.short_nonempty == pytest.approx(2 / 3)  # a1, a3
    assert report.short_em == pytest.approx(1 / 2)  # "the Broncos" == "Broncos"; "Levi's" != "Levi"
    assert [r.confidence for r in report.rows] == [0.9, 0.4, 0.2]


def test_reliability_and_tradeoff() -> None:
    from rag.eval.calibration import expected_calibration_error, reliability, tradeoff
    from rag.eval.runner import QuestionResult

    rows = [
        QuestionResult("a", False, abstained=False, quote_hit=True, confidence=0.95),
        QuestionResult("b", False, abstained=False, quote_hit=False, confidence=0.91),
        QuestionResult("c", False, abstained=False, quote_hit=True, confidence=0.15),
        QuestionResult("i", True, abstained=False, confidence=0.12),
        QuestionResult("j", True, abstained=False, confidence=0.5),
    ]
    table = reliability(rows, bins=10)
    assert [(b["lo"], b["n"]) for b in table] == [(0.1, 2), (0.5, 1), (0.9, 2)]
    assert table[0]["accuracy"] == 0.5 and table[2]["accuracy"] == 0.5
    assert table[2]["confidence"] == pytest.approx(0.93)
    ece = (2 * abs(0.135 - 0.5) + 1 * 0.5 + 2 * abs(0.93 - 0.5)) / 5
    assert expected_calibration_error(rows) == pytest.approx(ece)
    curve = {round(r["threshold"], 2): r for r in tradeoff(rows, [0.0, 0.2, 0.6])}
    assert curve[0.0]["abstain_impossible"] == 0.0 and curve[0.0]["abstain_answerable"] == 0.0
    assert curve[0.2]["abstain_impossible"] == 0.5
    assert curve[0.2]["abstain_answerable"] == pytest.approx(1 / 3)
    assert curve[0.6]["abstain_impossible"] == 1.0
    assert curve[0.6]["accuracy_answered"] == 0.5


def test_reading_cache_round_trip(tmp_path: Path) -> None:
    import numpy as np

    from rag.answer.extractive import ExtractiveAnswerer
    from rag.eval.cache import ReadingCache, build_cache
    from rag.settings import Settings
    from rag.types import Article, Chunk, Hit
    from tests.conftest import HashEmbedder

    text = "The bridge opened in 1932. It carried trains.\n\nThe ferry stopped in 1950."
    art = Article(id="a1", source="/x/bridge.txt", title="Bridge", text=text)
    chunks = [Chunk("c0", "a1", 0, 0, 45, text[:45]), Chunk("c1", "a1", 1, 47, 73, text[47:])]
    assert all(text[c.start : c.end] == c.text for c in chunks)
    embedder = HashEmbedder()
    questions = [EvalQuestion("q1", "When did the bridge open?", ("1932",), ("bridge.txt",))]

    def search(q: str, v: np.ndarray) -> list[Hit]:
        return [Hit(chunks[0], art, 0.9), Hit(chunks[1], art, 0.5, also_in=("/y/copy.txt",))]

    cache = build_cache(search, embedder, lambda ts: [2.0] * len(ts), questions)
    cache.save(tmp_path / "c")
    loaded = ReadingCache.load(tmp_path / "c")
    hits = loaded.hits("q1")
    assert hits == search("", np.zeros(1))
    assert np.allclose(loaded.question_vector("q1"), embedder.embed([questions[0].question])[0])
    assert loaded.idf(["bridg", "open"]) == [2.0, 2.0]
    cached = loaded.embedder()
    assert np.allclose(cached.embed(["It carried trains."]), embedder.embed(["It carried trains."]))
    with pytest.raises(KeyError, match="not in the cache"):
        cached.embed(["never seen"])
    assert np.allclose(
        loaded.embedder(lambda: embedder).embed(["never seen"]), embedder.embed(["never seen"])
    )
    # The answerer reads the same from the cache as from the live parts.
    live = ExtractiveAnswerer(
        embedder, Settings(min_confidence=0.0), idf=lambda ts: [2.0] * len(ts)
    )
    offline = ExtractiveAnswerer(cached, Settings(min_confidence=0.0), idf=loaded.idf)
    q = questions[0].question
    assert live.answer(q, hits).text == offline.answer(q, hits, loaded.question_vector("q1")).text


# ---------------------------------------------------------------------------- disagreements


@dataclass(frozen=True)
class FakeConflictAnswer:
    abstained: bool
    citations: tuple[FakeCitation, ...]
    conflicts: tuple[str, ...] = ()


def test_conflicts_surfaced_and_false_conflicts() -> None:
    questions = [
        # versions disagree: both values quoted and the disagreement reported
        EvalQuestion("c1", "q-c1", ("212", "231"), ("a.txt", "b.txt"), conflict=("212", "231")),
        # both values quoted, no disagreement reported: cited, not surfaced
        EvalQuestion("c2", "q-c2", ("17", "11"), ("a.txt", "b.txt"), conflict=("17", "11")),
        # one value only
        EvalQuestion("c3", "q-c3", ("Tallinn", "Riga"), ("a.txt",), conflict=("Tallinn", "Riga")),
        # consistent versions: a disagreement reported there is false; an abstention is no answer
        EvalQuestion("k1", "q-k1", ("Nair",), ("a.txt",), consistent=True),
        EvalQuestion("k2", "q-k2", ("Nair",), ("a.txt",), consistent=True),
        EvalQuestion("k3", "q-k3", ("Nair",), ("a.txt",), consistent=True),
    ]
    replies = {
        "q-c1": FakeConflictAnswer(
            False, (FakeCitation("carried 231 passengers"), FakeCitation("212 passengers")), ("x",)
        ),
        "q-c2": FakeConflictAnswer(False, (FakeCitation("killed 17 and later 11 people"),)),
        "q-c3": FakeConflictAnswer(False, (FakeCitation("held in Riga"),), ("x",)),
        "q-k1": FakeConflictAnswer(False, (FakeCitation("Priya Nair"),), ("x",)),
        "q-k2": FakeConflictAnswer(False, (FakeCitation("Priya Nair"),)),
        "q-k3": FakeConflictAnswer(True, ()),
    }
    report = evaluate(questions, lambda q: [Passage("a.txt", "x")], replies.__getitem__)
    assert report.n_conflict == 3
    assert report.conflict_values_cited == pytest.approx(2 / 3)  # c1, c2
    assert report.conflict_surfaced == pytest.approx(1 / 3)  # c1
    assert report.false_conflict == pytest.approx(1 / 2)  # k1 of the answers k1, k2
    metrics = report.to_dict()["metrics"]
    assert metrics["n_conflict"] == 3 and "false_conflict" in format_table({"ours": report})
    # A name is cited as written even where the SQuAD rule folds "Twain's" into "twains".
    q = EvalQuestion(
        "n",
        "q-n",
        ("Mark Twain", "Ma Jianlong"),
        ("a.txt",),
        conflict=("Mark Twain", "Ma Jianlong"),
    )
    named = FakeConflictAnswer(
        False, (FakeCitation("Mark Twain's works"), FakeCitation("Ma Jianlong's works")), ("x",)
    )
    assert evaluate([q], lambda _: [], lambda _: named).conflict_surfaced == 1.0
    # A number as written after a currency sign the SQuAD rule keeps ("€20,860" -> "€20860") ...
    q = EvalQuestion("e", "q-e", ("20,860", "27,814"), ("a.txt",), conflict=("20,860", "27,814"))
    euros = FakeConflictAnswer(
        False, (FakeCitation("€20,860 p.a."), FakeCitation("€27,814")), ("x",)
    )
    assert evaluate([q], lambda _: [], lambda _: euros).conflict_surfaced == 1.0
    # ... but a number is not found inside another: "17" is not in "1917".
    q = EvalQuestion("y", "q-y", ("17", "11"), ("a.txt",), conflict=("17", "11"))
    years = FakeConflictAnswer(False, (FakeCitation("in 1917 and 1911"),), ("x",))
    assert evaluate([q], lambda _: [], lambda _: years).conflict_values_cited == 0.0


def test_question_files_mark_conflicts_and_consistent_versions(tmp_path: Path) -> None:
    row = {"id": "1", "question": "How many?", "answers": ["212", "231"], "gold_sources": ["a.txt"]}
    path = _write(
        tmp_path,
        [
            json.dumps({**row, "conflict": ["212", "231"]}),
            json.dumps({**row, "id": "2", "consistent": True}),
        ],
    )
    a, b = load_questions(path)
    assert a.conflict == ("212", "231") and not a.consistent
    assert b.consistent and b.conflict == ()
    for bad, message in [
        ({**row, "conflict": ["212"]}, "at least two different values"),
        ({**row, "conflict": ["212", "212"]}, "at least two different values"),
        ({**row, "consistent": "yes"}, "true or false"),
        ({**row, "consistent": True, "conflict": ["1", "2"]}, "both"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_questions(_write(tmp_path, [json.dumps(bad)]))


def test_the_fixture_set_of_versions_is_well_formed() -> None:
    folder = ROOT / "tests/fixtures/conflicts"
    questions = load_questions(folder / "questions.jsonl")
    names = {p.name for p in (folder / "articles").iterdir()}
    assert sum(bool(q.conflict) for q in questions) >= 10
    assert sum(q.consistent for q in questions) >= 5
    for q in questions:
        assert set(q.gold_sources) <= names
        texts = [(folder / "articles" / s).read_text(encoding="utf-8") for s in q.gold_sources]
        for value in q.conflict:  # each value is in exactly one of the two versions
            assert sum(contains_answer(t, [value]) for t in texts) == 1, (q.id, value)
