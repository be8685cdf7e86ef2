"""Turn raw article text into the cleaned text that is stored, chunked and quoted.

Every offset in the system points into the text made here, so cleaning is deterministic and keeps
all article paragraphs: it repairs characters and whitespace, drops page furniture (see
:mod:`rag.ingest.boilerplate`) and records each dropped piece as a :class:`~rag.types.Removal`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import ftfy

from rag.ingest.boilerplate import Line, find_boilerplate
from rag.ingest.markdown import markdown_lines
from rag.ingest.metadata import parse_date
from rag.types import Removal

__all__ = ["Cleaned", "clean_article", "clean_text", "normalize_chars", "repair_underscores"]

_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,  # "&amp;" in a plain-text article may be what the author wrote
    uncurl_quotes=False,  # curly quotes are legitimate text
    fix_character_width=False,  # full-width CJK punctuation is legitimate text
    fix_latin_ligatures=False,
    normalization="NFC",
    explain=False,
)
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Control characters except tab and newline, invisible format characters that only break
# matching (soft hyphen, zero-width space, word joiner, BOM) and Unicode non-characters.
_JUNK = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff\ufffe\uffff]")
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but newline: tabs, NBSP, thin spaces
_TERMINAL = tuple('.!?:;"”’)]…»')
_LIST_ITEM = re.compile(r"^(?:[-*•+–]|\d{1,3}[.)]|[a-z][.)])\s")


@dataclass
class Cleaned:
    """The cleaned body text, what was dropped, and the metadata seen while cleaning."""

    text: str
    removals: list[Removal] = field(default_factory=list)
    title: str | None = None
    date: str | None = None
    author: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # e.g. markdown front matter fields


def normalize_chars(raw: str) -> str:
    """Repair mojibake, drop control characters and lone surrogates, NFC, '\\n' line breaks."""
    text = _SURROGATE_PAIR.sub(
        lambda m: m.group().encode("utf-16", "surrogatepass").decode("utf-16"), raw
    )
    text = _LONE_SURROGATE.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = text.replace("\x00", "")
    if not text.isascii():  # pure ASCII has no mojibake to repair; ftfy is the slow step
        text = ftfy.fix_text(text, _FTFY)
    text = _JUNK.sub("", text)
    return unicodedata.normalize("NFC", text)


def to_lines(text: str) -> list[Line]:
    """Split into lines, keeping indentation (comment threads show in it) before collapsing."""
    lines = []
    for raw in text.split("\n"):
        body = raw.lstrip(" \t")
        indent = len(raw) - len(body)
        lines.append(Line(_SPACES.sub(" ", body).strip(), indent))
    return lines


def _join(fragments: list[str], text: str) -> None:
    """Append a wrapped line to a line under construction (kept as fragments: no quadratic copy)."""
    last = fragments[-1]
    # "inter-\nnational" was split by wrapping; "Arizona-\nMexico" is a real hyphen.
    if len(last) >= 2 and last[-1] in "-\u2010" and last[-2].isalpha() and text[:1].isalpha():
        if text[0].islower():
            fragments[-1] = last[:-1]
        fragments.append(text)
    else:
        fragments += [" ", text]


def _hard_wrapped(block: list[str]) -> bool:
    """Lines of similar length under ~100 characters: a paragraph wrapped at a fixed width."""
    inner = [len(t) for t in block[:-1]]
    if not inner or max(inner) > 100:
        return False
    widest = max(inner)
    return sum(n >= 0.6 * widest for n in inner) >= 0.75 * len(inner)


def _block_paragraphs(block: list[str], join_lines: bool) -> list[str]:
    """One block of consecutive lines → paragraphs (a paragraph may hold a '\\n'-joined list)."""
    if not join_lines:
        return block
    wrapped = _hard_wrapped(block)
    paras: list[list[list[str]]] = [[[block[0]]]]  # paragraphs → lines → fragments
    for text in block[1:]:
        line = paras[-1][-1]
        start, last = line[0], line[-1]
        if _LIST_ITEM.match(text):
            if _LIST_ITEM.match(start):
                paras[-1].append([text])
            else:
                paras.append([[text]])
        elif (wrapped and not _LIST_ITEM.match(start)) or (
            not last.endswith(_TERMINAL) and (text[:1].islower() or last.endswith(("-", ",")))
        ):
            _join(line, text)
        else:
            paras.append([[text]])  # one line per paragraph, as page dumps write them
    return ["\n".join("".join(fragments) for fragments in para) for para in paras]


def _paragraphs(lines: list[Line], join_lines: bool) -> list[tuple[str, bool]]:
    """(paragraph, is_code) pairs from the kept lines; blank lines separate blocks."""
    paragraphs: list[tuple[str, bool]] = []
    block: list[Line] = []
    for line in [*lines, Line("")]:
        if line.text and (not block or block[-1].verbatim == line.verbatim):
            block.append(line)
            continue
        if block:
            if block[0].verbatim:
                paragraphs.append(("\n".join(ln.text for ln in block), True))
            else:
                texts = [ln.text for ln in block]
                paragraphs.extend((p, False) for p in _block_paragraphs(texts, join_lines))
        block = [line] if line.text else []
    return paragraphs


# --- the '_' that replaced quotes, apostrophes and dashes in some scraped feeds -------------
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_URLISH = re.compile(r"://|www\.|@|\.(?:com|org|net|gov|edu|html?)\b")
_WORD = re.compile(r"\w*_\w*")  # words with an underscore
_LETTERS = r"[^\W\d_]"
_CONTRACTION = re.compile(rf"^(?P<w>(?:{_LETTERS}|\x00)+)_(?P<s>s|t|re|ve|ll|d|m)$")
_OPEN = re.compile(rf"(?:^|(?<=[\s(\[{{—–-]))_(?={_LETTERS}|\d)")
_CLOSE = re.compile(r"(?<=[^\W_]|[.,!?;:…])_(?=$|[\s.,;:!?)\]}—–-])")


def _contraction(m: re.Match[str]) -> str:
    token = m.group()
    core = token.strip("_")
    lead = token[: len(token) - len(token.lstrip("_"))]
    trail = token[len(lead) + len(core) :]
    if not core or any(c.isdigit() for c in core):
        return token
    hidden = core.replace("__", "\x00")  # '__' is a lost accented letter inside a word
    found = _CONTRACTION.match(hidden)
    if hidden.count("_") != 1 or not found:
        return token  # snake_case and other identifiers
    if found.group("s") == "t" and not found.group("w").endswith("n"):
        return token
    return lead + hidden.replace("_", "'").replace("\x00", "__") + trail


def _masked(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to the runs of ``text`` that are not code spans, URLs or e-mail addresses."""
    out: list[str] = []
    run: list[str] = []
    pieces = _CODE_SPAN.split(text)
    spans = _CODE_SPAN.findall(text)
    for k, piece in enumerate(pieces):
        for token in re.split(r"(\s+)", piece):  # tokens, not one regex: linear on long lines
            if token and not token.isspace() and _URLISH.search(token):
                out += [fn("".join(run)), token]
                run = []
            else:
                run.append(token)
        if k < len(spans):
            out += [fn("".join(run)), spans[k]]
            run = []
    out.append(fn("".join(run)))
    return "".join(out)


def _quotes(text: str) -> str:
    opens = {m.start() for m in _OPEN.finditer(text)}
    closes = {m.start() for m in _CLOSE.finditer(text)}
    chars = list(text)
    pending: int | None = None
    for i in sorted(opens | closes):
        if i in opens and pending is None:
            pending = i
        elif i in closes and pending is not None:
            chars[pending] = chars[i] = '"'
            pending = None
        elif i in closes and text[i - 1] == "s" and text[i + 1 : i + 2] == " ":
            chars[i] = "'"  # unpaired after a plural: "the countries_ deepening cooperation"
    return "".join(chars)


def repair_underscores(paragraphs: list[str]) -> list[str]:
    """Undo a feed's replacement of quotes, apostrophes and dashes by '_' where unambiguous.

    ``don_t`` → ``don't``, ``_We are..._`` → ``"We are..."`` (pairs within a paragraph), `` _ ``
    → `` — ``. ``__`` (an accented letter lost as two bytes) is left alone: which letter it was
    cannot be known, and a guess would put words in a quote that the source never had.
    """
    out = []
    for p in paragraphs:
        if "_" not in p:
            out.append(p)
            continue
        p = _masked(p, lambda s: re.sub(r"(?:^|(?<= ))_(?= )", "—", s))
        p = _masked(p, lambda s: _WORD.sub(_contraction, s))
        out.append(p)
    # Quote pairs only where the text shows the damage: a fixed apostrophe or no real quotes.
    if out != paragraphs or not any(c in p for p in paragraphs for c in '"“”'):
        out = [_masked(p, _quotes) if "_" in p else p for p in out]
    return out


def _drop_teasers(paragraphs: list[str], removals: list[Removal]) -> list[str]:
    """Drop a '...'-truncated teaser that the next paragraph repeats in full."""
    kept = []
    for i, p in enumerate(paragraphs):
        stem = p.rstrip().removesuffix("...").removesuffix("…").rstrip()
        nxt = paragraphs[i + 1] if i + 1 < len(paragraphs) else ""
        if stem != p and len(stem) >= 20 and nxt.startswith(stem) and len(nxt) > len(stem):
            removals.append(Removal(p, "teaser"))
            continue
        kept.append(p)
    return kept


def clean_lines(
    lines: list[Line],
    *,
    keep_comments: bool = False,
    join_lines: bool = True,
    find_title: bool = True,
    pdf: bool = False,
) -> Cleaned:
    """Boilerplate removal, paragraph building and punctuation repair on prepared lines."""
    bp = find_boilerplate(lines, keep_comments=keep_comments, find_title=find_title, pdf=pdf)
    if bp.title is not None and all(
        r is not None for ln, r in zip(lines, bp.reasons, strict=True) if ln.text
    ):
        # The "title" was the only text left: it is the article, not a heading.
        bp = find_boilerplate(lines, keep_comments=keep_comments, find_title=False, pdf=pdf)
        bp.title = bp.title or next((ln.text for ln in lines if ln.text), None)
    kept = [ln if r is None else Line("") for ln, r in zip(lines, bp.reasons, strict=True)]
    pairs = _paragraphs(kept, join_lines)
    prose = repair_underscores([p for p, code in pairs if not code])
    it = iter(prose)
    paragraphs = [p if code else next(it) for p, code in pairs]
    removals = list(bp.removals)
    paragraphs = _drop_teasers(paragraphs, removals)
    date = bp.date
    if date is None and paragraphs:
        # A news dateline: "WASHINGTON, March 3, 2009 — ..." at the very start of the body.
        date = parse_date(paragraphs[0][:60]) if re.match(r"^[A-Z]{3,}", paragraphs[0]) else None
    return Cleaned("\n\n".join(paragraphs), removals, bp.title, date, bp.author)


def clean_article(
    raw: str,
    *,
    keep_comments: bool = False,
    markdown: bool = False,
    join_lines: bool = True,
    find_title: bool = True,
    pdf: bool = False,
) -> Cleaned:
    """Clean one article given as text (a page dump, a markdown file, a PDF page)."""
    text = normalize_chars(raw)
    removals: list[Removal] = []
    extra: dict[str, str] = {}
    lines = markdown_lines(text, removals, extra) if markdown else to_lines(text)
    cleaned = clean_lines(
        lines, keep_comments=keep_comments, join_lines=join_lines, find_title=find_title, pdf=pdf
    )
    cleaned.removals = removals + cleaned.removals
    cleaned.extra = extra
    cleaned.title = extra.get("title") or cleaned.title
    cleaned.date = parse_date(extra.get("date")) or cleaned.date
    cleaned.author = extra.get("author") or cleaned.author
    return cleaned


def clean_text(raw: str, *, keep_comments: bool = False) -> tuple[str, list[Removal]]:
    """Clean a plain-text dump of an article: returns the text and every piece dropped, with why.

    A short first line standing alone is taken as the title and dropped from the body (a
    Removal with reason "title").
    """
    cleaned = clean_article(raw, keep_comments=keep_comments)
    return cleaned.text, cleaned.removals
