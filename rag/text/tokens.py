"""Words as the BM25 index sees them: case- and accent-folded, stopwords dropped, stemmed.

The retriever, the answerer and the page tokenise questions and sentences with the same
:func:`tokenize` as the index, so a query term matches exactly what was indexed.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

import Stemmer

__all__ = ["STOPWORDS", "tokenize"]

# Written for this project. Apostrophes are removed before the lookup ("don't" -> "dont").
_STOPWORD_TEXT = """
a about above after again against all also am an and any are arent as at be because been before
being below between both but by can cannot cant could couldnt did didnt do does doesnt doing dont
down during each either else ever few for from further had hadnt has hasnt have havent having he
hed hes her here hers herself him himself his how however i id if im in into is isnt it its itself
ive just let lets me more most much must mustnt my myself neither no nor not now of off on once
only or other ought our ours ourselves out over own same shall she shes should shouldnt so some
such than that thats the their theirs them themselves then there theres these they theyre this
those though through thus to too under until up upon us very was wasnt we were werent weve what
whats when where whether which while who whom whose why will with wont would wouldnt yet you
youre your yours yourself yourselves s t d ll m re ve
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())

# A number with inner separators ("3.5", "1,000"), else a run of letters/digits.
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:'[^\W_]+)*")
_THOUSANDS_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_MAX_TOKEN_CHARS = 40  # longer "words" are hashes, URLs or base64 noise
_stemmers = threading.local()  # PyStemmer objects must not be shared between threads


def _stemmer() -> Stemmer.Stemmer:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return stemmer


def _fold(text: str) -> str:
    """Case-fold and drop accents (naïve -> naive), keeping composed scripts such as Hangul."""
    text = unicodedata.normalize("NFKD", text.casefold())
    if not text.isascii():  # only non-ASCII text can hold combining marks: skip the per-char loop
        text = "".join(c for c in text if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", text).replace("\u2019", "'")


@functools.lru_cache(maxsize=1 << 16)
def _term(word: str) -> str:
    """One matched word as it is indexed: normalised and stemmed; "" when it is not indexed."""
    if word[0].isdigit() and _THOUSANDS_RE.fullmatch(word):
        word = word.replace(",", "")  # 1,000 and 1000 are the same number
    if word.endswith("'s"):
        word = word[:-2]
    word = word.replace("'", "")
    if word and word not in STOPWORDS and len(word) <= _MAX_TOKEN_CHARS:
        return str(_stemmer().stemWord(word))
    return ""


def tokenize(text: str) -> list[str]:
    """Lowercased, accent-folded, stopword-free, Snowball-stemmed word tokens of ``text``."""
    # Words repeat: each distinct one is normalised and stemmed once (cached).
    return [t for t in map(_term, _TOKEN_RE.findall(_fold(text))) if t]
