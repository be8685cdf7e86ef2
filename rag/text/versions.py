"""Versions of one text: a word-level diff that keeps only the differences that carry facts.

Two versions of a news story differ in many harmless ways: punctuation and quote marks, a
hyphen ("long-standing" / "longstanding"), a spelling variant ("organisation" / "organization"),
a relative date word that moved with the day of publication ("Thursday" / "today"), a sentence
one of them dropped. None of those is a disagreement. A disagreement is a place where both
versions say something of the same kind and say it differently: a number ("212" / "231"
passengers), a date ("March" / "May"), a name or a place ("Hermosillo" / "Nogales").

:func:`fact_differences` finds those, with character offsets into each text, so that a group
of versions can keep them, a result list can keep both passages, and an answer can cite both.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, replace

__all__ = ["FactDiff", "fact_differences", "fact_kinds", "words"]

# A word with its inner punctuation: "212", "3.5", "1,200", "U.S.", "don't", "long-standing".
_WORD = re.compile(r"[^\W_]+(?:[.,'’\-][^\W_]+)*\.?")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred thousand million billion trillion dozen dozens half quarter".split()
)
_MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
# Words whose meaning moves with the day a version was published: not a disagreement when the
# other version has a weekday or another of these in the same place.
_RELATIVE_DAYS = frozenset("today yesterday tomorrow tonight".split()) | _WEEKDAYS
# Capitalised words that are not names even in the middle of a sentence.
_NOT_NAMES = frozenset(
    "i a an the in on at of and or but for to by as it he she we they his her its their this that "
    "these those mr mrs ms dr".split()
)
_SENTENCE_END = re.compile(r"[.!?:;\"“”'’)\]—–-]\s*$")


@dataclass(frozen=True)
class Word:
    """A word of a text: its offsets, its text, and the form versions are compared in."""

    start: int
    end: int
    text: str
    norm: str
    capitalised_inside: bool  # capitalised and not the first word of its sentence


@dataclass(frozen=True)
class FactDiff:
    """One place where two versions say a fact of the same kind differently.

    ``a`` and ``b`` are character spans of the differing words in each text; ``kind`` is
    "number", "date" or "name" (a year is a date; a place is a name).
    """

    kind: str
    a: tuple[int, int]
    b: tuple[int, int]
    a_text: str
    b_text: str


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[.,'’\-]", "", text)


def words(text: str) -> list[Word]:
    """The words of ``text`` with offsets; punctuation-only tokens are not words."""
    out = []
    for m in _WORD.finditer(text):
        raw = m.group()
        if raw.endswith(".") and not re.search(r"\.[^\W_]", raw):  # "crew." -> "crew"
            raw = raw[:-1]
        before = text[max(0, m.start() - 3) : m.start()]
        first = m.start() == 0 or bool(_SENTENCE_END.search(before)) or "\n" in before
        cap = raw[:1].isupper() and not first and _fold(raw) not in _NOT_NAMES
        out.append(Word(m.start(), m.start() + len(raw), raw, _fold(raw), cap))
    return out


def fact_kinds(word: Word) -> frozenset[str]:
    """The kinds of fact a word can carry: number, date, name (empty for other words)."""
    kinds: set[str] = set()
    norm = word.norm
    if any(ch.isdigit() for ch in norm):
        kinds.add("number")
        if re.fullmatch(r"1[5-9]\d\ds?|20\d\ds?", norm):
            kinds.add("date")
    elif norm in _NUMBER_WORDS:
        kinds.add("number")
    if norm in _MONTHS or norm in _WEEKDAYS:
        kinds.add("date")
    if word.capitalised_inside and norm not in _MONTHS and norm not in _WEEKDAYS:
        kinds.add("name")
    return frozenset(kinds)


def _spelling_variant(a: str, b: str) -> bool:
    """Two spellings of one name ("Mohammed" / "Mohamed"): same start, close letters."""
    if a[:1] != b[:1] or min(len(a), len(b)) < 6 or not (a.isalpha() and b.isalpha()):
        return False
    ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    return ratio >= 0.8 and abs(len(a) - len(b)) <= 2


def _kinds_of(ws: list[Word]) -> frozenset[str]:
    return frozenset(k for w in ws for k in fact_kinds(w))


def _moved_with_the_day(old: list[Word], new: list[Word]) -> bool:
    """A relative date word that moved with the day of publication ("Thursday" / "today")."""
    olds, news = {w.norm for w in old}, {w.norm for w in new}
    return bool(olds and news) and olds <= _RELATIVE_DAYS and news <= _RELATIVE_DAYS


_JOINERS = frozenset("of von van de der del da du la le bin ibn al".split())


def _opening_name(run: list[Word]) -> bool:
    """Capitalised words that open a sentence and read as a name ("James Hutton", "Thoreau")."""
    first = run[0]
    return (
        len(run) <= 5
        and first.text[:1].isupper()
        and not first.capitalised_inside
        and first.norm.isalpha()
        and first.norm not in _NOT_NAMES | _MONTHS | _WEEKDAYS
        and all(w.text[:1].isupper() or w.norm in _JOINERS for w in run)
    )


def _opening_names(
    old: list[Word], new: list[Word], known: set[str]
) -> tuple[list[Word], list[Word]]:
    """Two runs of capitalised words that open a sentence that then goes on the same ("James
    Hutton is often viewed ..." / "Thoreau is often viewed ..."): names. A single capitalised
    word on each side may be any word ("Rain fell" / "Snow fell"), unless the texts use one of
    them as a name elsewhere ("Trevino said" where "Cmdr. Armando Trevino" is named before)."""
    if not (old and new and _opening_name(old) and _opening_name(new)):
        return old, new
    if len(old) == len(new) == 1 and not {old[0].norm, new[0].norm} & known:
        return old, new
    return (
        [replace(w, capitalised_inside=w.text[:1].isupper()) for w in old],
        [replace(w, capitalised_inside=w.text[:1].isupper()) for w in new],
    )


def fact_differences(a: str, b: str, kinds: frozenset[str] | None = None) -> list[FactDiff]:
    """Places where ``a`` and ``b`` (two versions of a text) give different facts of one kind.

    Words only one version has (a dropped sentence, an added one) are not differences: one
    version is silent there, it does not disagree. ``kinds`` limits the result to those kinds.
    """
    wa, wb = words(a), words(b)
    matcher = difflib.SequenceMatcher(
        None, [w.norm for w in wa], [w.norm for w in wb], autojunk=False
    )
    out: list[FactDiff] = []
    ops = matcher.get_opcodes()
    known = {w.norm for w in wa + wb if w.capitalised_inside}  # names the texts use elsewhere
    for k, (op, i1, i2, j1, j2) in enumerate(ops):
        if op != "replace":
            continue
        old, new = wa[i1:i2], wb[j1:j2]
        after = ops[k + 1] if k + 1 < len(ops) else None
        if after is not None and after[0] == "equal" and after[2] - after[1] >= 3:
            old, new = _opening_names(old, new, known)
        if _moved_with_the_day(old, new) or "".join(w.norm for w in old) == "".join(
            w.norm for w in new
        ):
            continue  # a relative date word, or only the hyphens and spaces differ
        shared = _kinds_of(old) & _kinds_of(new)
        if kinds is not None:
            shared &= kinds
        # A long replacement is rewritten prose, not a changed fact: keep only short ones.
        if not shared or max(len(old), len(new)) > 8:
            continue
        reported: set[int] = set()  # words of ``old`` already in a reported difference
        for kind in sorted(shared, key=("date", "number", "name").index):
            fo = [w for w in old if kind in fact_kinds(w) and w.start not in reported]
            fn = [w for w in new if kind in fact_kinds(w)]
            if (
                not fo
                or len(fo) == len(fn)
                and all(
                    o.norm == n.norm or (kind == "name" and _spelling_variant(o.norm, n.norm))
                    for o, n in zip(fo, fn, strict=True)
                )
            ):
                continue  # the facts of this kind agree; something else in the span changed
            reported.update(w.start for w in fo)
            span_a = (fo[0].start, fo[-1].end)
            span_b = (fn[0].start, fn[-1].end)
            out.append(FactDiff(kind, span_a, span_b, a[slice(*span_a)], b[slice(*span_b)]))
    return out
