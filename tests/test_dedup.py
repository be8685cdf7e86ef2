"""Near-duplicates: shingles, containment, collapsing ranked passages, grouping article versions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.ingest.dedup import group_near_duplicates, sketch_texts
from rag.text.shingles import collapse, containment, jaccard, shingles

STORY = [
    "The harbour authority of Port Alder confirmed on Tuesday that the old grain pier will be "
    "demolished next spring, ending more than a century of service on the northern waterfront.",
    "Engineers who inspected the pier in January found that several of its timber piles had "
    "rotted through and that the deck could no longer carry loaded lorries safely.",
    "The authority's chairwoman, Mira Holt, said repairing the structure would cost almost twice "
    "as much as building a new concrete quay on the same site.",
    "Fishermen who moor their boats along the pier have been told to move to the southern basin "
    "by the end of February, a decision several of them described as rushed.",
    "Local historians have asked for the cast iron bollards and the harbour master's bell to be "
    "saved and displayed in the town museum once the demolition begins.",
    "The new quay is expected to open in the autumn of the following year and will include a "
    "covered fish market, electric charging points and a public walkway.",
    "Councillors from the opposition questioned whether the authority had considered the cost "
    "of dredging the basin, which they said could add millions to the final bill.",
    "Residents can comment on the plans at a public meeting in the town hall next Thursday "
    "evening, and written objections will be accepted until the end of the month.",
]
FULL = "\n\n".join(STORY)
# A shortened reprint: paragraphs 1, 2, 3, 6 and 8 of 8, with a couple of words edited.
REPRINT = "\n\n".join(
    [
        STORY[0].replace("Tuesday", "Wednesday"),
        STORY[1],
        STORY[2].replace("almost twice", "nearly twice"),
        STORY[5],
        STORY[7],
    ]
)
# Another cut: the opening plus the paragraphs the first reprint left out.
SECOND_CUT = "\n\n".join([STORY[0], STORY[3], STORY[4], STORY[6]])

UNRELATED = (
    "The regional orchestra announced its winter season on Monday, opening with a programme of "
    "Sibelius and closing in March with a new work commissioned from a young local composer. "
    "Ticket prices will stay the same as last year, and students can buy standby seats for a "
    "small fee an hour before each concert. The conductor said the hall's renovated acoustics "
    "had changed the way the players listen to one another on stage."
)


# --- shingles and set measures --------------------------------------------------------------


def test_shingles_normalise_text() -> None:
    assert shingles("Hello, World!  It's   a fine day.") == shingles("hello world its a fine day")
    assert shingles("one two three four five six") != shingles("one two three four five seven")
    # Six words give two 5-word shingles.
    assert len(shingles("one two three four five six")) == 2


def test_short_text_gives_one_shingle() -> None:
    assert len(shingles("breaking news")) == 1
    assert shingles("Breaking NEWS!") == shingles("breaking news")
    assert shingles("...") == set()
    assert len(shingles("one two three", n=2)) == 2
    with pytest.raises(ValueError, match="n must"):
        shingles("a b", n=0)


def test_shingle_hashes_are_stable_across_processes(
    processes: None,
) -> None:
    code = "from rag.text.shingles import shingles; print(sorted(shingles('a stable hash of these words')))"
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(result.stdout)
    assert outputs == {str(sorted(shingles("a stable hash of these words"))) + "\n"}


def test_containment_and_jaccard_by_hand() -> None:
    a, b = {1, 2, 3, 4}, {3, 4, 5, 6, 7, 8}
    # |a & b| = 2, min size 4 -> 0.5; union 8 -> 0.25
    assert containment(a, b) == 0.5
    assert jaccard(a, b) == 0.25
    assert containment({1, 2}, {1, 2, 3, 4, 5}) == 1.0
    assert containment(set(), {1}) == 0.0
    assert jaccard(set(), set()) == 0.0


# --- collapse -------------------------------------------------------------------------------


def test_collapse_keeps_best_placed_copy() -> None:
    passages = [
        ("wire", STORY[1]),
        ("other", STORY[4]),
        ("reprint", STORY[1].replace("January", "February")),  # one word changed
        ("orchestra", UNRELATED),
        ("another", STORY[4] + " The museum has agreed."),
    ]
    got = collapse(passages, key_text=lambda p: p[1], threshold=0.6)
    assert [kept[0] for kept, _ in got] == ["wire", "other", "orchestra"]
    assert [[d[0] for d in dups] for _, dups in got] == [["reprint"], ["another"], []]


def test_collapse_threshold_and_empty_texts() -> None:
    items = ["", "", STORY[0], STORY[0]]
    got = collapse(items, key_text=str, threshold=0.6)
    # Texts without words never collapse; the exact copy does.
    assert [(k, len(d)) for k, d in got] == [("", 0), ("", 0), (STORY[0], 1)]
    assert collapse([], key_text=str, threshold=0.5) == []
    # At threshold 1.0 a one-word edit is no longer "the same text".
    edited = STORY[0].replace("Tuesday", "Friday")
    assert len(collapse([STORY[0], edited], key_text=str, threshold=1.0)) == 2
    with pytest.raises(ValueError, match="threshold"):
        collapse(items, key_text=str, threshold=1.5)


# --- grouping article versions --------------------------------------------------------------


def test_reprint_groups_with_the_full_story() -> None:
    c = containment(shingles(REPRINT), shingles(FULL))
    assert 0.8 < c < 1.0  # mostly contained; the edits broke a few shingles
    docs = [("reprint", REPRINT), ("full", FULL), ("orchestra", UNRELATED)]
    assert group_near_duplicates(docs, threshold=0.5) == {"reprint": "full", "full": "full"}


def test_unrelated_articles_do_not_group() -> None:
    docs = [("story", FULL), ("orchestra", UNRELATED), ("cut", " ".join(STORY[3:5]))]
    # The cut is 2 paragraphs of the story: a version. The orchestra piece is not.
    assert group_near_duplicates(docs) == {"story": "story", "cut": "story"}
    assert group_near_duplicates([("story", FULL), ("orchestra", UNRELATED)]) == {}
    assert group_near_duplicates([]) == {}
    assert group_near_duplicates([("only", FULL)]) == {}


def test_three_versions_form_one_group() -> None:
    docs = [("cut-a", REPRINT), ("cut-b", SECOND_CUT), ("full", FULL), ("other", UNRELATED)]
    assert group_near_duplicates(docs) == {"cut-a": "full", "cut-b": "full", "full": "full"}


def test_threshold_decides() -> None:
    # The second cut shares only its opening paragraph with the first (~1/4 of its shingles).
    pair = [("cut-a", REPRINT), ("cut-b", SECOND_CUT)]
    assert group_near_duplicates(pair, threshold=0.5) == {}
    assert group_near_duplicates(pair, threshold=0.1) == {"cut-a": "cut-a", "cut-b": "cut-a"}
    with pytest.raises(ValueError, match="same doc_id"):
        group_near_duplicates([("x", FULL), ("x", REPRINT)])


def test_many_random_documents_find_only_the_planted_pairs() -> None:
    rng = np.random.default_rng(11)
    vocabulary = [f"w{i}" for i in range(5000)]
    docs: list[tuple[str, str]] = []
    for i in range(2000):
        words = rng.choice(vocabulary, size=int(rng.integers(120, 400)))
        docs.append((f"doc{i}", " ".join(words)))
    planted = {}
    for n, source in enumerate((5, 777, 1500)):
        words = docs[source][1].split()
        keep = words[: int(len(words) * 0.55)]  # a shortened reprint...
        keep[10], keep[len(keep) // 2] = "edited", "changed"  # ...with two words edited
        docs.append((f"reprint{n}", " ".join(keep)))
        planted[f"reprint{n}"] = planted[f"doc{source}"] = f"doc{source}"
    assert group_near_duplicates(docs, threshold=0.5) == planted
    # Sketches made ahead of time, one by one and in another order, give the same groups.
    ahead = {doc_id: sketch_texts([text])[0] for doc_id, text in reversed(docs[::3])}
    assert group_near_duplicates(docs, threshold=0.5, sketches=ahead) == planted
    assert group_near_duplicates(docs[:1], sketches=ahead) == {}


def test_candidate_pairs_match_brute_force() -> None:
    """Pairs whose signatures agree on a whole band: the bucketing finds exactly those."""
    from rag.text.minhash import candidate_pairs

    rng = np.random.default_rng(5)
    for n, values in ((0, 3), (1, 3), (2, 2), (7, 2), (40, 3), (60, 50)):
        sig = rng.integers(0, values, size=(n, 8)).astype(np.uint32)
        expected = {
            (i, j)
            for i in range(n)
            for j in range(i + 1, n)
            if any((sig[i, b : b + 2] == sig[j, b : b + 2]).all() for b in range(0, 8, 2))
        }
        assert {tuple(p) for p in candidate_pairs(sig, rows=2).tolist()} == expected


def test_a_long_lived_system_sketches_each_article_once(
    tmp_path: Path, corpus_dir: Path, hash_embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.ingest.dedup as dedup
    import rag.ingest.pipeline as pipeline
    from rag.settings import Settings
    from rag.system import System

    system = System(Settings(index_dir=tmp_path / "index"), embedder=hash_embedder)
    system.ingest([corpus_dir])
    sketched: list[int] = []
    real = dedup.sketch_texts

    def counted(texts: list[str]) -> list[Any]:
        sketched.append(len(texts))
        return real(texts)

    for module in (dedup, pipeline):  # wherever the sketching happens
        monkeypatch.setattr(module, "sketch_texts", counted)
    extra = tmp_path / "extra.txt"
    extra.write_text("A note about the orchard frost and the growers who lit fires all night.")
    system.ingest([extra], sync=False)
    assert sum(sketched) == 1  # the new article only, not the whole index again
    groups = [g for g in system.stats()["duplicate_groups"]]
    assert len(groups) == 1 and len(groups[0]["articles"]) == 2  # the reprint is still grouped
