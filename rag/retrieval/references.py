"""Offline follow-up rewriting: what "he", "there", "the company" or "And in 2010?" refer to.

A follow-up leans on the turn before it. The previous question and answer name people, places,
organisations and dates (rule-based entities, :mod:`rag.answer.entities`); a reference in the new
question is replaced by the one it most likely means, so that retrieval and the answerer read a
question in plain words: after "Who leads the Sonora contingent?" answered with "Commander Luis
Trevino leads ...", "Where is he based?" becomes "Where is Trevino based?" (a person by surname, as
the article's later sentences name them).

Which entity a reference means:

- he/she/him/his/her: a person; what the previous answer named first when it answered a "who"
  question, else the person the previous question named, else one the answer named.
- it/its/they/them/their/this/that, "the company": an organisation or a named thing; the answer's
  when the previous question asked for one ("Which company ..."), else the question's subject.
- there, "the town": a place, found the same way.

An ellipsis ("And in 2010?", "What about Westerby?") repeats the previous question with the new
piece in place of the one of the same kind (a date for a date, a name for a name), or added to it.
"""

from __future__ import annotations

import re

from rag.answer.entities import Entity, find_entities
from rag.answer.kinds import answer_kind

__all__ = ["has_reference", "resolve_references"]

_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_WORD = re.compile(r"[^\W_][\w'’-]*")

_PERSON = ("person",)
_THING = ("organisation", "work", "name")
_PLACE = ("place",)
# Each reference: the kinds it can mean, then the kinds it falls back to.
_ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "person": (_PERSON, ("name",)),
    "thing": (_THING, ("place", "person")),  # the rules often call "Northgate Minerals" a person
    "place": (_PLACE, ("name",)),
}
_PRONOUNS = {
    "he": "person", "him": "person", "his": "person", "she": "person", "her": "person",
    "hers": "person", "it": "thing", "its": "thing", "they": "thing", "them": "thing",
    "their": "thing", "theirs": "thing", "there": "place",
}  # fmt: skip
_POSSESSIVE = frozenset({"his", "its", "their", "hers", "theirs"})
_DEFINITE = re.compile(
    r"\b(?:the|this|that)\s+(company|firm|corporation|business|group|organi[sz]ation|agency|"
    r"miner|force|unit|team|club|party|festival|event|city|town|village|region|state|country|"
    r"place|area|man|woman|person|officer|commander|executive|chief|painter)\b",
    re.IGNORECASE,
)
_DEFINITE_ROLE = {
    "city": "place", "town": "place", "village": "place", "region": "place", "state": "place",
    "country": "place", "place": "place", "area": "place", "man": "person", "woman": "person",
    "person": "person", "officer": "person", "commander": "person", "executive": "person",
    "chief": "person", "painter": "person",
}  # fmt: skip
# "Is there a museum?", "there has been ...": "there" as a dummy subject, not a place.
_EXISTENTIAL_BEFORE = frozenset("is are was were".split())
_EXISTENTIAL_AFTER = frozenset("is are was were will would has have had be 's".split())
_PREPOSITIONS = frozenset("in at from to near into out of around across inside outside".split())
_OBJECT_AFTER = frozenset(
    "to about with for from at in on by and or as than up down out over into".split()
)
_OPENER = re.compile(
    r"^\s*(?:(?:and|but|so|also|then|ok|okay)\b[\s,]*)?(?:(?:what|how)\s+about\b\s*)?",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"^(?:who|whom|whose|what|when|where|why|how|which|is|are|was|were|did|does|do|can|could|"
    r"will|would|has|have|had|should|may|might|tell|list|name|give|show)\b",
    re.IGNORECASE,
)
_MAX_FRAGMENT_WORDS = 6


def resolve_references(question: str, previous: str, answer: str) -> str | None:
    """``question`` with its references to the previous turn replaced by what they mean, or None
    when it holds none that the previous ``question``/``answer`` can resolve."""
    answer = _MARKER.sub("", answer)
    if answer.strip().startswith("The indexed articles don't answer"):
        answer = ""
    opener = _OPENER.match(question)
    rest = question[opener.end() :] if opener else question
    candidates = _Candidates(previous, answer)
    if opener and opener.group().strip() and _is_fragment(rest):
        piece, _ = _replace_references(rest, candidates)  # "What about his deputy?"
        return _ellipsis(piece, previous, answer)
    rewritten, changed = _replace_references(rest, candidates)
    if not changed:
        return None
    rewritten = rewritten.strip()
    return rewritten[:1].upper() + rewritten[1:]


def has_reference(question: str) -> bool:
    """Whether ``question`` uses a word that points back ("he", "there", "the company")."""
    words = [w.lower() for w in _WORD.findall(question)]
    for i, w in enumerate(words):
        if w == "there":
            before = words[i - 1] if i else ""
            after = words[i + 1] if i + 1 < len(words) else ""
            if before not in _EXISTENTIAL_BEFORE and after not in _EXISTENTIAL_AFTER:
                return True
        elif w in _PRONOUNS:
            return True
    return bool(_DEFINITE.search(question))


def _is_fragment(text: str) -> bool:
    """A piece without a question of its own ("in 2010?", "Westerby?", "the pear trees")."""
    words = _WORD.findall(text)
    return 0 < len(words) <= _MAX_FRAGMENT_WORDS and not _QUESTION_START.match(text.strip())


class _Candidates:
    """What the previous turn named, and which of it each kind of reference most likely means."""

    def __init__(self, previous: str, answer: str) -> None:
        self.asked = answer_kind(previous)
        self.in_question = _entities(previous)
        named = {e.text.lower() for e in self.in_question}
        # What the answer named that the question did not: what the answer is about.
        self.in_answer = [
            e for e in _entities(answer) if e.text.lower() not in named and e.text not in previous
        ]

    def best(self, role: str) -> str | None:
        kinds, fallback = _ROLES[role]
        answered = self.asked in kinds
        order = (
            [self.in_answer, self.in_question] if answered else [self.in_question, self.in_answer]
        )
        for found in order:  # the turn's likelier half first, then the kind
            for wanted in (kinds, fallback):
                for e in found:
                    if e.kind in wanted:
                        return _surname(e.text) if role == "person" else e.text
        return None


def _surname(name: str) -> str:
    """How news style refers back to a person ("Commander Luis Trevino" -> "Trevino"): later
    sentences about them use it, so the follow-up matches those rather than the first one again."""
    words = name.split()
    return words[-1] if len(words) > 1 and words[-1][:1].isupper() else name


def _entities(text: str) -> list[Entity]:
    """Names in ``text`` (no dates or numbers), once each; a lone capitalised word that opens a
    sentence ("Chief executive ...") is not taken for one."""
    out: list[Entity] = []
    seen: set[str] = set()
    for e in find_entities(text):
        if e.kind in ("date", "number") or e.text.lower() in seen:
            continue
        opens = not text[: e.start].strip() or text[: e.start].rstrip()[-1] in '.!?"”\n'
        if e.kind == "name" and " " not in e.text and opens:
            continue
        seen.add(e.text.lower())
        out.append(e)
    return out


def _replace_references(text: str, candidates: _Candidates) -> tuple[str, bool]:
    """Pronouns and "the company"-style phrases in ``text`` replaced; whether any was."""
    words = list(_WORD.finditer(text))
    out: list[str] = []
    pos = 0
    changed = False
    definite = {m.start(): m for m in _DEFINITE.finditer(text)}
    skip_until = -1
    for i, m in enumerate(words):
        if m.start() < skip_until:
            continue
        if m.start() in definite:
            d = definite[m.start()]
            meant = candidates.best(_DEFINITE_ROLE.get(d.group(1).lower(), "thing"))
            if meant is not None and meant.lower() not in text.lower():
                out.append(text[pos : d.start()] + meant)
                pos = skip_until = d.end()
                changed = True
            continue
        word = m.group().lower()
        role = _PRONOUNS.get(word)
        if role is None:
            continue
        before = words[i - 1].group().lower() if i > 0 else ""
        after = words[i + 1].group().lower() if i + 1 < len(words) else ""
        if word == "there" and (before in _EXISTENTIAL_BEFORE or after in _EXISTENTIAL_AFTER):
            continue  # "Is there a museum?", "there are ..."
        name = candidates.best(role)
        if name is None:
            continue
        if word in _POSSESSIVE or (word == "her" and after and after not in _OBJECT_AFTER):
            name = name + "'s"
        elif word == "there" and before not in _PREPOSITIONS:
            name = "in " + name
        out.append(text[pos : m.start()] + name)
        pos = m.end()
        changed = True
    out.append(text[pos:])
    return "".join(out), changed


_SAME_KIND = {
    "date": ("date",),
    "number": ("number",),
    "person": ("person", "name"),
    "place": ("place", "name"),
    "organisation": ("organisation", "name"),
    "work": ("work", "name"),
    "name": ("name", "person", "place", "organisation", "work"),
}


def _ellipsis(fragment: str, previous: str, answer: str) -> str:
    """The previous question again, with ``fragment`` in place of what it replaces."""
    piece = fragment.strip().rstrip("?!. ").strip()
    base = previous.strip()
    if not piece:
        return base
    new = find_entities(piece)
    bare = re.sub(r"(?i)^(?:in|on|at|during|by|for|from|the)\s+", "", piece)
    alone = len(new) == 1 and new[0].text == bare
    if alone:  # only the new piece: it takes the place of the old one of its kind
        e = new[0]
        for old in reversed(find_entities(base)):
            if old.kind in _SAME_KIND.get(e.kind, (e.kind,)) and old.text != e.text:
                return base[: old.start] + e.text + base[old.end :]
    stem = base.rstrip("?!. ")
    if alone and new[0].kind == "date" and not re.match(r"(?i)(in|on|at|during|by)\b", piece):
        piece = "in " + piece
    if alone or re.match(r"(?i)(in|on|at|during|by|for|from|before|after)\b", piece):
        return f"{stem} {piece}?"
    return f"{stem}, and {piece}?"
