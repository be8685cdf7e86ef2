"""What the ``rag`` command shows: hits and answers as JSON or as text (an answer streamed as it
is drafted), and progress bars on stderr."""

from __future__ import annotations

import sys
from typing import Any

from rag.errors import RagError
from rag.types import Answer, Conflict


def progress_bars() -> Any:
    """``(progress, close)``: an ingest progress callback drawing one bar per stage, and its cleanup."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    labels = {"read": "reading files", "embed": "embedding passages"}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is not None and bar.total != total:
            bar.total = total  # the total grows as more files are read
            bar.refresh()
        if bar is None:
            bar = bars[stage] = tqdm(
                total=total, desc=labels.get(stage, stage), unit="", file=sys.stderr
            )
        bar.update(done - bar.n)

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return progress, close


def confidence_label(confidence: float | None) -> str:
    """ "confidence 0.83 (high)": the calibrated probability and a word for it; "" without one."""
    if confidence is None:
        return ""
    word = "high" if confidence >= 0.7 else "medium" if confidence >= 0.4 else "low"
    return f"confidence {confidence:.2f} ({word})"


def conflict_line(c: Conflict) -> str:
    """ "[1] 231 passengers (ferry_v2.txt, 2021-03-05) vs [2] 212 passengers (ferry_v1.txt, ...)"."""
    sides = []
    for n, value, source, date in zip(c.citations, c.values, c.sources, c.dates, strict=True):
        name = source.replace("\\", "/").rsplit("/", 1)[-1]
        sides.append(f"[{n}] {' '.join(value.split())} ({name}{', ' + date if date else ''})")
    return " vs ".join(sides)


def _print_answer(a: Answer) -> None:
    if a.short_line():
        print(a.short_line())
    print(a.text)
    if a.confidence is not None:
        print(confidence_label(a.confidence))
    for conflict in a.conflicts:
        print(f"sources disagree ({conflict.kind}): {conflict_line(conflict)}")
    for note in a.notes:
        print(f"note: {note}")
    if a.abstained:
        if a.closest:
            print("\nClosest passages:")
        for i, h in enumerate(a.closest, start=1):
            print(f"  ({i}) {h.article.title} ({h.article.source}), score {h.score:.3f}")
            print(f"      {h.chunk.text[:300]}")
        return
    unsupported = [s.text for s in a.sentences if not s.supported]
    for s in unsupported:
        print(f"unsupported by its citations: {s}")
    print()
    for c in a.citations:
        dated = f", {c.date}" if c.date else ""
        page = f", p. {c.page}" if c.page is not None else ""
        print(f"[{c.n}] {c.title}{dated} ({c.source}{page}, chars {c.start}-{c.end})")
        quoted = c.quote if c.quote[:1] in "\"\u201c\u2018'" else f"\u201c{c.quote}\u201d"
        print(f"    {quoted}")
        for v in c.versions:
            for change in v.changes_within(c.start, c.end):
                name = v.source.replace("\\", "/").rsplit("/", 1)[-1]
                print(f"    another version, {name}, says {change.there} (here: {change.here})")


def stream_answer(parts: Any) -> Answer:
    """Print tokens as they come, then the checked answer and its sources."""
    streamed = False
    final: Answer | None = None
    for part in parts:
        if isinstance(part, str):
            if not streamed:
                print("(draft) ", end="")
            streamed = True
            print(part, end="", flush=True)
        else:
            final = part
    if streamed:
        print("\n")
    if final is None:
        raise RagError("the answer was cut off before it finished")
    _print_answer(final)
    return final
