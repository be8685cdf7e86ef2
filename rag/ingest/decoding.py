"""Bytes to text: UTF-8 (with or without BOM), UTF-16/32 with a BOM, a declared charset, then
cp1252/latin-1 only when the result reads like text. Binary data is refused with a reason."""

from __future__ import annotations

import codecs
import re

from rag.errors import SkipFile

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SAMPLE = 200_000


# Unicode's control characters (category Cc: U+0000-001F and U+007F-009F) other than tab, line
# feed, form feed and carriage return. One regex scan: a per-character category lookup was most
# of the time spent reading a plain-text file.
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _control_share(text: str) -> float:
    sample = text[:_SAMPLE]
    if not sample:
        return 0.0
    return sum(1 for _ in _CONTROL.finditer(sample)) / len(sample)


def _reads_like_legacy_text(text: str) -> bool:
    """A cp1252/latin-1 decoding that is mostly ASCII, with letters where it is not."""
    sample = text[:_SAMPLE]
    if not sample or _control_share(sample) > 0.005:
        return False
    high = [c for c in sample if ord(c) > 127]
    if len(high) > 0.3 * len(sample):
        return False
    return not high or sum(c.isalpha() for c in high) >= 0.5 * len(high)


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Decode a text file's bytes, or raise :class:`SkipFile` saying why it is not text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = _strict(data, encoding)
            if text is None:
                raise SkipFile(f"cannot decode text: broken {encoding.upper()} after its BOM")
            return text
    nuls = data.count(0)
    if nuls > max(8, len(data) // 100):
        # UTF-16 without a BOM has a NUL beside every ASCII letter; anything else is binary.
        for encoding in ("utf-16-le", "utf-16-be"):
            text = _strict(data, encoding)
            if text is not None and _reads_like_legacy_text(text):
                return text
        raise SkipFile("binary file, not text (it contains NUL bytes)")
    text = _strict(data, "utf-8")
    if text is not None:
        if _control_share(text) > 0.05:
            raise SkipFile("binary file, not text (mostly control characters)")
        return text
    candidates = []
    if declared and _known(declared) and codecs.lookup(declared).name != "utf-8":
        candidates.append(declared)
    candidates += ["cp1252", "latin-1"]
    for encoding in candidates:
        text = _strict(data, encoding)
        if text is not None and _reads_like_legacy_text(text):
            return text
    raise SkipFile("cannot decode text: not UTF-8, and no other encoding gives readable text")


def _known(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True
