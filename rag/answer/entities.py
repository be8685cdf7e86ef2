"""Dates, numbers and names in English text, by rules: what a typed question's answer can be.

Each :class:`Entity` is a span of the text given (offsets into it) with a kind from
:data:`rag.answer.kinds.KINDS`, or ``"name"`` for a proper name whose kind the rules cannot tell
(a bare "Trevino" may be a person, a place or a company). Rules, not a statistical tagger: they
need no model download, run in microseconds per sentence, and measured as well as spaCy's small
English pipeline on the answers (docs/answers.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text.tokens import STOPWORDS

__all__ = ["Entity", "find_entities"]


@dataclass(frozen=True)
class Entity:
    start: int
    end: int
    kind: str  # person, organisation, place, date, number, work, or name (a proper name)
    text: str


_MONTHS = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan\.|Feb\.|Mar\.|Apr\.|Jun\.|Jul\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)"
)
_WEEKDAYS = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_ORDINAL_WORDS = (
    r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
    r"twenty-first)"
)
_YEAR = r"(?:1[0-9]\d\d|20\d\d)"
_DATE = re.compile(
    "|".join(
        (
            rf"\b(?:{_WEEKDAYS},?\s+)?{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+{_YEAR})?\b",
            rf"\b(?:{_WEEKDAYS},?\s+)?\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}(?:,?\s+{_YEAR})?\b",
            rf"\b(?:(?:early|mid|late)[- ])?{_MONTHS}\s+(?:of\s+)?{_YEAR}\b",
            r"\b(?:(?:early|mid|late)[- ])?(?:1[0-9]\d0|20\d0)s\b",
            rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)|{_ORDINAL_WORDS})[- ]centur(?:y|ies)(?:\s+(?:BC|AD|BCE|CE))?",
            rf"\b(?:AD\s+)?{_YEAR}(?:\s*(?:BC|AD|BCE|CE))?\b(?![,.]\d)",
            r"\b\d{1,4}\s*(?:BC|AD|BCE|CE)\b",
            rf"\b{_WEEKDAYS}\b",
            r"\b\d{1,2}(?::\d\d)?\s*(?:a\.m\.|p\.m\.|am\b|pm\b)",
        )
    )
)
_NUMBER_WORDS = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    r"eighty|ninety|hundred|a hundred|a thousand|dozen|a dozen|half|several dozen|hundreds|"
    r"thousands|millions)"
)
_SCALE = r"(?:\s+(?:hundred|thousand|million|billion|trillion|crore|lakh))?"
_UNITS = (
    r"(?:miles?|kilometres?|kilometers?|km|metres?|meters?|m|centimetres?|centimeters?|cm|"
    r"millimetres?|millimeters?|mm|nanometers?|nanometres?|nm|micrometers?|feet|foot|ft|inches|"
    r"inch|yards?|acres?|hectares?|square\s+(?:miles?|kilometres?|kilometers?|km|metres?|meters?|"
    r"feet)|kilograms?|kg|grams?|g|tonnes?|tons?|pounds?|lbs?|ounces?|litres?|liters?|gallons?|"
    r"degrees?(?:\s+(?:Celsius|Fahrenheit|C|F))?|°[CF]?|volts?|watts?|kilowatts?|megawatts?|MW|"
    r"kW|hertz|Hz|years?|months?|weeks?|days?|hours?|minutes?|seconds?|percent|per\s+cent|%|"
    r"mph|km/h|points?|yards?|votes?|seats?|people|times)"
)
_NUMBER = re.compile(
    rf"(?:[$£€¥]\s?|\bUS\$\s?)\d[\d,]*(?:\.\d+)?{_SCALE}"
    rf"|\b\d+(?:[.,]\d+)*(?:½|¼|¾)?{_SCALE}(?:\s*(?:%|percent|per cent))?"
    rf"|[½¼¾]"
    rf"|\b{_NUMBER_WORDS}(?:[- ]{_NUMBER_WORDS})*{_SCALE}\b",
    re.IGNORECASE,
)
_UNIT_AFTER = re.compile(rf"[\s-]*{_UNITS}\b", re.IGNORECASE)

_CAP = r"(?:[A-ZÀ-ÖØ-Þ][\w'’.&-]*|[A-Z]\.)"
_JOIN = r"(?:of|de|von|van|aan|der|den|da|del|della|di|du|la|le|bin|ibn|al|upon|the|&|v\.?|vs\.?)"
# Capitalised only because they open a sentence: never the start of a name.
_OPENERS = frozenset(
    """although however while whereas when whenever after before during since despite because
    unlike like following according meanwhile later today yesterday many most some several
    early other both each every all another instead thus therefore hence also though even
    once perhaps under within without upon over among amid between beyond toward towards""".split()
)
_NAME = re.compile(rf"{_CAP}(?:(?:\s+|\s+{_JOIN}\s+(?:{_JOIN}\s+)?|-){_CAP})*")

_TITLES = frozenset(
    """mr mrs ms miss dr sir dame lord lady president king queen pope saint st gen general cmdr
    commander capt captain col colonel lt sgt sen senator rep gov governor prof professor rev
    judge justice prince princess emperor empress archbishop bishop cardinal father brother sister
    mayor chancellor minister premier sheikh rabbi imam coach quarterback dean""".split()
)
_ORG_CUES = frozenset(
    """company corporation corp inc ltd llc plc co university college school church council party
    association agency department committee bank club society institute institution museum
    network broadcasting league army navy ministry court foundation group commission board union
    police service office organization organisation federation alliance trust press times post
    news airlines airways motors industries records studios systems laboratories labs
    brothers minerals mining resources energy holdings partners capital pharmaceuticals
    technologies electric foods petroleum steel chemicals media entertainment communications
    telecom insurance financial investments ventures enterprises software""".split()
)
_PLACE_CUES = frozenset(
    """river city county lake mountain mountains mount mt island islands ocean sea valley street
    road avenue square park bay gulf province state kingdom republic desert falls coast peninsula
    stadium bridge airport station hall palace castle cathedral tower district region territory
    canal forest harbor harbour port strait straits plain plains basin hills heights beach
    county""".split()
)
_EVENT_CUES = frozenset(
    """award awards prize prizes cup championship championships bowl festival games olympics
    war wars battle treaty act show series trophy medal conference summit election""".split()
)
_PLACE_BEFORE = re.compile(
    r"\b(?:in|at|from|near|to|into|across|outside|inside|throughout|towards?|via|between|of)\s+$"
)
_INITIALS = re.compile(r"(?:^|\s)(?:[A-Z]\.){2,}$")  # "U.S.", "Washington, D.C."
_QUOTED = re.compile(r"[\"“]([^\"“”]{2,80})[\"”]")


def _proper_kind(text: str, before: str) -> str:
    words = [w.strip(".,'’").lower() for w in text.split()]
    prev = re.search(r"([A-Za-z]+)\.?\s+$", before)
    if any(w in _EVENT_CUES for w in words):
        return "name"
    if any(w in _ORG_CUES for w in words) or re.fullmatch(r"[A-Z]{2,6}", text):
        return "organisation"
    if any(w in _PLACE_CUES for w in words):
        return "place"
    if prev and prev.group(1).lower() in _TITLES:
        return "person"
    if _PLACE_BEFORE.search(before[-20:]):
        return "place"
    caps = [w for w in text.split() if w[:1].isupper()]
    if 2 <= len(caps) <= 4 and len(caps) == len(text.split()):
        return "person"  # "Armando Trevino", "T. J. Ward": first and last names
    return "name"


def _is_date_word(text: str) -> bool:
    return bool(re.fullmatch(rf"{_MONTHS}|{_WEEKDAYS}", text))


def find_entities(text: str) -> list[Entity]:
    """Dates, numbers, quoted titles and proper names in ``text``, in order, not overlapping."""
    found: list[Entity] = []
    taken = [False] * len(text)

    def add(start: int, end: int, kind: str) -> None:
        if start < end and not any(taken[start:end]):
            found.append(Entity(start, end, kind, text[start:end]))
            for i in range(start, end):
                taken[i] = True

    for m in _QUOTED.finditer(text):
        if m.group(1)[:1].isupper() and len(m.group(1).split()) <= 10:
            add(m.start(1), m.end(1), "work")
    for m in _DATE.finditer(text):
        add(m.start(), m.end(), "date")
    for m in _NUMBER.finditer(text):
        end = m.end()
        unit = _UNIT_AFTER.match(text, end)
        if unit:
            end = unit.end()
        add(m.start(), end, "number")
    for m in _NAME.finditer(text):
        start, end = m.start(), m.end()
        name = text[start:end]
        if not _INITIALS.search(name):  # "U.S." keeps its period; a sentence's last one is not
            name = name.rstrip(".")  # part of the name
        end = start + len(name)
        words = name.split()
        # Drop capitalised function words ("The", "In", "He") that open the name.
        while words and (
            words[0].lower().strip("'’") in STOPWORDS
            or words[0].lower() in _OPENERS
            or _is_date_word(words[0])
        ):
            start += len(words[0])
            rest = text[start:end]
            start += len(rest) - len(rest.lstrip())
            words = words[1:]
        while words and words[-1].lower() in STOPWORDS:
            end -= len(words[-1])
            end = start + len(text[start:end].rstrip())
            words = words[:-1]
        if not words or _is_date_word(" ".join(words)):
            continue
        name = text[start:end]
        if name.endswith(("'s", "’s")):
            end -= 2
            name = name[:-2]
        if len(name) < 2:
            continue
        add(start, end, _proper_kind(name, text[max(0, start - 30) : start]))
    return sorted(found, key=lambda e: e.start)
