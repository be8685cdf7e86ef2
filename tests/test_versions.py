"""Versions of a text: only differences that carry facts count, with offsets into each version."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rag.text.versions import fact_differences, words
from rag.types import Article


def kinds_and_texts(a: str, b: str) -> list[tuple[str, str, str]]:
    return [(d.kind, d.a_text, d.b_text) for d in fact_differences(a, b)]


def test_a_changed_number_date_or_name_is_a_difference() -> None:
    assert kinds_and_texts(
        "The ferry carried 212 passengers.", "The ferry carried 231 passengers."
    ) == [("number", "212", "231")]
    assert kinds_and_texts(
        "The bridge opened in March 2009 after repairs.",
        "The bridge opened in May 2010 after repairs.",
    ) == [("date", "March 2009", "May 2010")]
    assert kinds_and_texts(
        "Officials met in Hermosillo on Monday.", "Officials met in Nogales on Monday."
    ) == [("name", "Hermosillo", "Nogales")]
    assert kinds_and_texts(
        "Damage cost two million dollars.", "Damage cost three million dollars."
    ) == [("number", "two", "three")]


def test_harmless_differences_are_not_facts() -> None:
    same = [
        ("He said “we can’t wait,” she said.", 'He said "we can\'t wait," she said.'),
        (
            "A long-standing plan for the Arizona- Mexico border.",
            "A longstanding plan for the Arizona-Mexico border.",
        ),
        ("It has 1,200 members.", "It has 1200 members."),
        ("The deal was signed Thursday in Nogales.", "The deal was signed today in Nogales."),
        ("Talks with Felipe Calderón went well.", "Talks with Felipe Calderon went well."),
        ("It rained. The council met on Monday.", "The council met on Monday."),  # one is silent
        ("Mohammed Farah won.", "Mohamed Farah won."),  # two spellings of one name
    ]
    for a, b in same:
        assert fact_differences(a, b) == [], (a, b)


def test_a_word_that_is_capitalised_only_at_a_sentence_start_is_not_a_name() -> None:
    assert fact_differences("Crowds came. Rain fell later.", "Crowds came. Snow fell later.") == []


def test_rewritten_prose_is_not_a_changed_fact() -> None:
    a = "Officials in Washington said the plan, first proposed by the mayor, was sound."
    b = "A spokesman described a completely different arrangement agreed with Ottawa last week."
    assert fact_differences(a, b) == []


def test_kinds_filter() -> None:
    a, b = "In 2009 Smith paid 40 dollars.", "In 2010 Smyth paid 40 dollars."
    assert {d.kind for d in fact_differences(a, b)} == {"date", "name"}
    assert [d.kind for d in fact_differences(a, b, kinds=frozenset({"name"}))] == ["name"]


@given(
    st.text(alphabet=st.sampled_from(list("ab Cd 12.,-’'\n")), max_size=60), st.text(max_size=60)
)
def test_offsets_slice_back_and_a_text_never_differs_from_itself(a: str, b: str) -> None:
    assert fact_differences(a, a) == []
    for d in fact_differences(a, b):
        assert a[d.a[0] : d.a[1]] == d.a_text and b[d.b[0] : d.b[1]] == d.b_text
    for w in words(a):
        assert a[w.start : w.end] == w.text


def test_names_that_open_a_sentence_are_compared_when_they_read_as_names() -> None:
    same_rest = " is often viewed as the first modern geologist."
    assert kinds_and_texts("James Hutton" + same_rest, "Thoreau" + same_rest) == [
        ("name", "James Hutton", "Thoreau")
    ]
    # One capitalised word each: a name when the text names it elsewhere ...
    intro = "Cmdr. Armando Trevino spoke. "
    assert kinds_and_texts(
        intro + "Trevino said the patrols start in May.",
        intro + "Garcia said the patrols start in May.",
    ) == [("name", "Trevino", "Garcia")]
    # ... else any word; and a rewritten headline is no name at all.
    assert (
        fact_differences(
            "Crowds came. Rain fell later that day.", "Crowds came. Snow fell later that day."
        )
        == []
    )
    assert (
        fact_differences(
            "Joint effort targets border crime\n\nIn a politically sensitive operation, agents train.",
            "U.S., Mexico join forces on the border\n\nIn a politically sensitive operation, agents train.",
        )
        == []
    )


class _GroupReader:
    """A reader whose group changes with its commit (``version``), as a store reader's does."""

    def __init__(self, members: list[Article]) -> None:
        self.members = members
        self.version = "commit-1"
        self.calls = 0

    def group_members(self, group_id: str) -> list[Article]:
        self.calls += 1
        return list(self.members)


def test_group_members_are_cached_per_commit_and_read_again_after_one() -> None:
    from rag.retrieval.versions import group_differences

    one = Article(id="a1", source="a.txt", title="t", text="The ferry carried 212 people.")
    two = Article(id="a2", source="b.txt", title="t", text="The ferry carried 231 people.")
    reader = _GroupReader([one, two])
    first = group_differences(reader, "g-cache")
    group_differences(reader, "g-cache")
    assert reader.calls == 1 and first is not None and len(first.others) == 1
    three = Article(id="a3", source="c.txt", title="t", text="The ferry carried 250 people.")
    reader.members = [one, two, three]
    reader.version = "commit-2"
    after = group_differences(reader, "g-cache")
    assert reader.calls == 2 and after is not None and len(after.others) == 2
