"""What a question asks for: a person, an organisation, a place, a date, a number, a title, another
proper name, or other.

The expected answer type comes from the question word and, for "what/which" questions, from the
noun they ask about ("Which architect ..." asks for a person, "In what city ..." for a place,
"What is the name of the film ..." for a title, "What prize ..." for a name of some other kind).
"""

from __future__ import annotations

import re

__all__ = ["KINDS", "answer_kind", "asked_head", "asks_what_called"]

KINDS = ("person", "organisation", "place", "date", "number", "work", "name", "other")

_HEADS: dict[str, str] = {}
for _kind, _words in {
    "person": """person people man woman men women boy girl child architect president king queen
        leader player quarterback coach author writer poet scientist physicist chemist
        mathematician philosopher theologian actor actress artist painter sculptor composer
        musician singer emperor empress general admiral commander officer soldier politician
        minister senator governor mayor chancellor pope bishop priest monk saint prince princess
        duke earl lord lady founder inventor engineer designer director producer son daughter
        wife husband father mother brother sister uncle aunt nephew niece heir successor
        predecessor ruler khan sultan pharaoh chief head manager owner ceo chairman member
        student teacher professor doctor explorer astronaut pilot judge lawyer economist
        historian journalist reporter editor host presenter character pitcher kicker receiver
        linebacker mvp individual figure spokesman spokeswoman official referee anchor analyst
        entertainer astronomer biologist physician surgeon novelist playwright dramatist
        missionary reformer rival opponent winner champion""",
    "organisation": """team company companies organization organisation group party university
        college school church network agency club band corporation firm institution government
        newspaper league army navy union association council committee court ministry department
        business bank brand broadcaster channel label publisher manufacturer airline society
        order denomination franchise studio museum faction tribe dynasty provider carrier
        operator retailer charity affiliate subsidiary conglomerate station""",
    "place": """city cities country countries state states town place location region continent
        river island area county province nation capital village site venue stadium building
        street district territory port harbor harbour lake sea ocean mountain valley desert
        neighborhood neighbourhood borough suburb kingdom empire border coast landmark arena
        airport campus state's""",
    "work": """book film movie song album episode show series novel play poem painting opera
        programme magazine hymn title sermon treatise essay single soundtrack documentary
        symphony sculpture statue""",
    "date": """year years date day month century decade era season age time period""",
    "number": """number amount percentage percent population size length distance cost price
        temperature speed weight height depth width area total count rate ratio score sum
        fraction proportion quantity rating salary wage pay average margin attendance budget
        revenue income capacity gdp fee mass volume frequency voltage diameter radius elevation
        altitude""",
    # A proper name of some other kind: the answer is a name ("the Nobel Prize", "Latin").
    "name": """prize award trophy medal language religion faith event war battle treaty
        tournament competition championship festival holiday mission project operation rocket
        spacecraft ship vessel planet website act constitution""",
}.items():
    for _w in _words.split():
        _HEADS.setdefault(_w, _kind)

# "what/which ... <noun>": the first noun after the question word that names a kind.
_WHAT = re.compile(r"\b(?:what|which)\b((?:\s+[\w'-]+){1,4})")
_NAME_OF = re.compile(
    r"\bname(?:s)? of (?:the |a |an |this |that |his |her |their |its )?([\w'-]+)"
)
_SORT = frozenset("kind type sort form".split())
_NUMBERS = frozenset("two three four five six seven eight nine ten several".split())
_DO = frozenset("did does do will can could would should has have had may might must".split())
_SKIP = (
    frozenset("the a an kind type sort of is was are were did does do has had".split()) | _NUMBERS
)


def _head(word: str) -> str | None:
    """The kind a head noun names, singular or plural ("stadiums", "cities")."""
    for form in (
        word,
        word[:-1] if word.endswith("s") else "",
        word[:-3] + "y" if word.endswith("ies") else "",
    ):
        if form in _HEADS:
            return _HEADS[form]
    return None


def _asked(question: str) -> tuple[str, str] | None:
    """The head noun a "what/which" question asks about, with the kind it names."""
    m = _NAME_OF.search(question)
    if m and (kind := _head(m.group(1))) is not None:
        return kind, m.group(1)
    for m in _WHAT.finditer(question):
        words = m.group(1).split()
        if words and words[0] in _DO:
            continue  # "What did the council decide?": the noun is the subject, not the answer
        for n, word in enumerate(words):
            if word in _SKIP:
                continue
            kind = _head(word)
            if kind is not None:
                if n >= 2 and words[n - 1] == "of" and words[n - 2] in _SORT:
                    return "other", word  # "What type of unions?": a sort of thing, not a name
                return kind, word
            # "What Polish city": skip adjectives until a known head noun or a verb-like word.
            if word.endswith(("ed", "ing")) or word in ("name", "named", "called"):
                break
    return None


def asked_head(question: str) -> str | None:
    """The noun a "what/which" question names its answer by ("What festival ..." -> "festival"):
    a word the answer may share ("the Newcastle Beer Festival") without being the question's."""
    found = _asked(" ".join(question.lower().replace("’", "'").split()))
    return found[1] if found else None


_CALLED = re.compile(r"\b(?:called|known as|named|nicknamed)\s*\?*\s*$", re.IGNORECASE)


def asks_what_called(question: str) -> bool:
    """Whether the question asks what something is called ("... known as?", "... named?")."""
    return bool(_CALLED.search(question)) and not re.match(r"\s*(?:why|how)\b", question, re.I)


def answer_kind(question: str) -> str:
    """The expected answer type of ``question``: one of :data:`KINDS`."""
    q = " ".join(question.lower().replace("’", "'").split())
    if re.search(
        r"\b(when|what year|which year|what date|what century|what decade|how long ago|"
        r"since when|what day|what month|what time|what era|what period)\b",
        q,
    ):
        return "date"
    if re.search(
        r"\b(how many|how much|how long|how old|how far|how big|how large|how tall|how high|"
        r"how deep|how wide|how fast|how often|how heavy|what percent(?:age)?|what number|"
        r"what amount|what fraction|what proportion)\b",
        q,
    ):
        return "number"
    if re.search(r"\bstand for\b|\bshort for\b|\babbreviation\b", q):
        return "name"  # "What does AFC stand for?": American Football Conference
    if asks_what_called(q):
        return "name"  # "What is the dialect of Newcastle known as?": Geordie
    asked = _asked(q)
    head = asked[0] if asked else None
    if head is not None and not re.search(r"^\s*(who|where)\b", q):
        return head
    if re.search(r"\b(who|whom|whose)\b", q):
        return "person"
    if re.search(r"\bwhere\b", q):
        return "place"
    return head or "other"
