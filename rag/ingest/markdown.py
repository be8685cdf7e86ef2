"""Markdown to plain lines: keep the words, drop the markup (headings, emphasis, link syntax)."""

from __future__ import annotations

import re

from rag.ingest.boilerplate import Line
from rag.types import Removal

_SPACES = re.compile(r"[^\S\n]+")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$")
_SETEXT = re.compile(r"^\s{0,3}(?:=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$")
_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_BULLET = re.compile(r"^[*+]\s+")
_ITEM = re.compile(r"^(?:-|\d{1,3}[.)])\s")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^()\s]*(?:\([^)]*\))?[^()\s]*)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()\s]|\([^)]*\))*(?:\s+\"[^\"]*\")?\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_HTML_COMMENT = re.compile(r"<!--.*?-->")
_STRONG = re.compile(r"(?<!\w)(\*\*|__)(?=\S)(.+?)(?<=\S)\1(?!\w)")
_EM_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_EM_UNDER = re.compile(r"(?<!\w)_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_CODE = re.compile(r"`([^`\n]+)`")


def _inline(text: str, removals: list[Removal]) -> str:
    def image(m: re.Match[str]) -> str:
        removals.append(Removal(m.group(1) or m.group(2), "image"))
        return ""

    text = _HTML_COMMENT.sub("", text)
    text = _IMAGE.sub(image, text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    # Code spans first and untouched, so '*' and '_' inside code stay as written.
    parts = re.split(r"(`[^`\n]+`)", text)
    for k in range(0, len(parts), 2):
        p = _STRONG.sub(r"\2", parts[k])
        p = _EM_STAR.sub(r"\1", p)
        p = _EM_UNDER.sub(r"\1", p)
        parts[k] = _STRIKE.sub(r"\1", p)
    text = _CODE.sub(r"\1", "".join(parts))
    return _SPACES.sub(" ", text).strip()


def _front_matter(raw: list[str], removals: list[Removal], extra: dict[str, str]) -> int:
    """Parse a leading '---' YAML block of 'key: value' lines; return the lines it spans."""
    if not raw or raw[0].strip() != "---":
        return 0
    for end in range(1, min(len(raw), 60)):
        if raw[end].strip() in ("---", "..."):
            for item in raw[1:end]:
                key, sep, value = item.partition(":")
                if sep and key.strip().lower() in ("title", "date", "author", "url", "site"):
                    extra[key.strip().lower()] = value.strip().strip("\"'")
            removals.append(Removal("\n".join(raw[: end + 1]), "front matter"))
            return end + 1
    return 0


def markdown_lines(text: str, removals: list[Removal], extra: dict[str, str]) -> list[Line]:
    """Lines of a markdown document with markup removed; fenced code kept verbatim."""
    raw = text.split("\n")
    lines: list[Line] = []
    fence: str | None = None
    for i in range(_front_matter(raw, removals, extra), len(raw)):
        line = raw[i]
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
                lines.append(Line(""))
            else:
                lines.append(Line(line.rstrip(), verbatim=True))
            continue
        if m:
            fence = m.group(1)
            lines.append(Line(""))
            continue
        if _RULE.match(line) or _REF_DEF.match(line):
            lines.append(Line(""))
            continue
        if _SETEXT.match(line) and lines and lines[-1].text and not lines[-1].verbatim:
            lines.append(Line(""))  # the line above was a heading: make it a block of its own
            continue
        heading = _HEADING.match(line)
        if heading:
            # A heading is a block of its own even without blank lines around it.
            lines += [Line(""), Line(_inline(heading.group(1) or "", removals)), Line("")]
            continue
        body = _QUOTE.sub("", line)
        indent = len(body) - len(body.lstrip(" \t"))
        text = _inline(_BULLET.sub("- ", body.strip()), removals)
        prev = lines[-1] if lines else None
        if text and prev and prev.text and not prev.verbatim and not _ITEM.match(text):
            prev.text = f"{prev.text} {text}"  # a soft line break inside a paragraph
        else:
            lines.append(Line(text, indent))
    return lines
