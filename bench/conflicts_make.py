"""Build an evaluation set of story versions from SQuAD: pairs that disagree on one fact, and
reprints that only differ harmlessly.

    python bench/conflicts_make.py SQUAD.json OUTDIR [--altered N] [--consistent M]
        [--elsewhere K] [--seed S]

Each SQuAD question whose answer is a number, a date or a name (and occurs once in its
paragraph) can make a pair of articles, ``<id>_a.txt`` (the paragraph as it is) and
``<id>_b.txt`` (the same paragraph with that one answer altered: another number, a shifted year
or another month, another name of the same kind taken from an answer in a different article).
The question file marks it ``"conflict": [original, altered]``: a right answer cites both.
Other questions make a consistent pair: either the paragraph and a reprint with quote marks,
hyphens, British/American spellings and number formatting changed and a sentence without the
answer dropped, or (``--elsewhere``) the paragraph and a version where another value of the
asked kind in the answer's sentence changed (asked about passengers, the crew count differs);
the question file marks both ``"consistent": true`` (the answer does not differ). Half the
pairs carry publication dates, the later one on a random side. ``questions.jsonl`` holds every
question; ``questions-altered.jsonl``, ``questions-elsewhere.jsonl`` and
``questions-reprints.jsonl`` one kind each, so that ``rag eval`` reports each on its own:

    rag ingest OUTDIR/articles --index IDX
    rag eval OUTDIR/questions-altered.jsonl --index IDX    # conflict_surfaced
    rag eval OUTDIR/questions-reprints.jsonl --index IDX   # false_conflict on harmless reprints
    rag eval OUTDIR/questions-elsewhere.jsonl --index IDX  # conflicts on a neighbouring fact
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer.entities import find_entities  # noqa: E402
from rag.answer.kinds import answer_kind  # noqa: E402

_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_SPELLINGS = [
    ("organisation", "organization"),
    ("organised", "organized"),
    ("recognised", "recognized"),
    ("colour", "color"),
    ("centre", "center"),
    ("favour", "favor"),
    ("honour", "honor"),
    ("labour", "labor"),
    ("defence", "defense"),
    ("programme", "program"),
    ("travelled", "traveled"),
    ("modelling", "modeling"),
]
_NAME_KINDS = ("person", "organisation", "place", "work")
_JOINS = frozenset("of the and de von van".split())


def _shape(answer: str) -> str | None:
    """What kind of value an answer is, by its form: number, year, month, name or None."""
    a = answer.strip()
    if re.fullmatch(r"1[0-9]\d\d|20\d\d", a):
        return "year"
    if any(re.search(rf"\b{m}\b", a) for m in _MONTHS) and len(a.split()) <= 4:
        return "month"
    if re.fullmatch(r"[$£€]?\d[\d,]*(?:\.\d+)?(?:\s+\w+){0,2}", a):
        return "number"
    words = a.split()
    if 1 <= len(words) <= 4 and all(w[:1].isupper() for w in words if w.lower() not in _JOINS):
        return "name"
    return None


def _alter_number(text: str, rng: random.Random) -> str:
    m = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    assert m is not None
    raw = m.group()
    digits = raw.replace(",", "")
    if "." in digits:
        value = float(digits)
        new = f"{value * rng.choice([0.5, 0.8, 1.25, 1.5, 2.0]):.{len(digits.split('.')[1])}f}"
    else:
        value = int(digits)
        factor = rng.choice([0.5, 0.75, 1.3, 1.5, 2, 3])
        changed = max(1, round(value * factor))
        if changed == value:
            changed = value + rng.randint(1, 9)
        new = f"{changed:,}" if "," in raw else str(changed)
    return text[: m.start()] + new + text[m.end() :]


def _alter_year(text: str, rng: random.Random) -> str:
    year = int(text.strip())
    return str(year + rng.choice([-7, -5, -3, -2, 2, 3, 4, 6]))


def _alter_month(text: str, rng: random.Random) -> str:
    for m in _MONTHS:
        if re.search(rf"\b{m}\b", text):
            other = rng.choice([x for x in _MONTHS if x != m])
            return re.sub(rf"\b{m}\b", other, text, count=1)
    return text


def _reprint(text: str, answer: str, rng: random.Random) -> str:
    """The paragraph as another outlet might reprint it: nothing a reader would call a change."""
    out = text.replace('"', "\u201c", 1)  # quote marks
    out = re.sub(r"\u201c([^\u201c\u201d\"]*)\"", "\u201c\\1\u201d", out)
    out = out.replace("'s ", "\u2019s ")
    for a, b in _SPELLINGS:
        out = re.sub(rf"\b{a}\b", b, out)
    out = re.sub(r"\b(\d{1,3}),(\d{3})\b(?!,\d)", r"\1\2", out)  # 1,200 -> 1200
    out = re.sub(r"\b([a-z]+)-([a-z]+)\b", r"\1\2", out, count=1)  # long-standing -> longstanding
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", out)
    droppable = [i for i, s in enumerate(sentences) if answer not in s and i > 0]
    if len(sentences) > 3 and droppable:
        del sentences[rng.choice(droppable)]
    return " ".join(sentences)


def _article(title: str, body: str, date: str | None) -> str:
    dated = f"Published on {date}\n\n" if date else ""
    return f"{title}\n\n{dated}{body.strip()}\n"


def _dates(rng: random.Random) -> tuple[str | None, str | None]:
    if rng.random() < 0.5:
        return None, None
    day = rng.randint(1, 20)
    first, second = f"2024-05-{day:02d}", f"2024-05-{day + rng.randint(1, 5):02d}"
    return (first, second) if rng.random() < 0.5 else (second, first)


def _alter(
    value: str,
    shape: str,
    kind: str,
    names: dict[str, list[tuple[str, str]]],
    title: str,
    rng: random.Random,
) -> str | None:
    """Another value of the same shape: a number, a year or a month changed, or another name
    (an answer to a question of the same ``kind`` about another article)."""
    if shape == "number":
        return _alter_number(value, rng)
    if shape == "year":
        return _alter_year(value, rng)
    if shape == "month":
        return _alter_month(value, rng)
    if kind not in names or not find_entities(value):
        return None
    return rng.choice([n for t, n in names[kind] if t != title and n != value])


def _sentence_of(context: str, answer: str) -> str:
    at = context.index(answer)
    before = context.rfind(". ", 0, at)
    start = 0 if before < 0 else before + 2
    end = context.find(". ", at + len(answer))
    return context[start : len(context) if end < 0 else end + 1]


def _elsewhere(context: str, answer: str, kind: str, rng: random.Random) -> tuple[str, str] | None:
    """Another value in the answer's sentence, of the kind the question asks for (the hardest
    case: "212 passengers and a crew of nine", asked about passengers, nine changed)."""
    sentence = _sentence_of(context, answer)
    at = sentence.index(answer)
    others = []
    for e in find_entities(sentence):
        if e.start < at + len(answer) and at < e.end:
            continue  # the answer itself
        shape = _shape(e.text)
        if e.start == 0 or e.text in answer or answer in e.text or context.count(e.text) != 1:
            continue
        if shape is None:
            continue
        same = (
            (kind == "number" and shape == "number")
            or (kind == "date" and shape in ("year", "month"))
            or (kind in _NAME_KINDS and shape == "name")
        )
        if same:
            others.append((e.text, shape))
    if not others:
        return None
    value, shape = rng.choice(others)
    if shape == "name":
        words = value.split()
        new = " ".join([*words[:-1], rng.choice(["Harrow", "Lindqvist", "Okafor", "Marsh"])])
    else:
        new = _alter(value, shape, kind, {}, "", rng) or value
    return (value, new) if new != value and new not in context else None


def build(
    src: str | Path, outdir: str | Path, altered: int, consistent: int, elsewhere: int, seed: int
) -> None:
    data: dict[str, Any] = json.loads(Path(src).read_text(encoding="utf-8"))
    rng = random.Random(seed)
    items = []  # (title, paragraph index, context, qa)
    names: dict[str, list[tuple[str, str]]] = {k: [] for k in _NAME_KINDS}
    for article in data["data"]:
        for p_i, p in enumerate(article["paragraphs"]):
            for qa in p["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                items.append((article["title"], p_i, p["context"], qa))
                kind = answer_kind(qa["question"])
                ans = qa["answers"][0]["text"].strip()
                if kind in names and _shape(ans) == "name":
                    names[kind].append((article["title"], ans))
    rng.shuffle(items)
    out = Path(outdir)
    (out / "articles").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    used_paragraphs: set[tuple[str, int]] = set()
    counts = {"altered": 0, "elsewhere": 0, "consistent": 0}
    wanted = {"altered": altered, "elsewhere": elsewhere, "consistent": consistent}
    for title, p_i, context, qa in items:
        if counts == wanted:
            break
        if (title, p_i) in used_paragraphs:
            continue
        answer = qa["answers"][0]["text"].strip()
        if context.count(answer) != 1 or len(answer) < 2:
            continue
        kind = answer_kind(qa["question"])
        shape = _shape(answer)
        golds = list(dict.fromkeys(a["text"] for a in qa["answers"]))
        qid = qa["id"]
        heading = f"{title.replace('_', ' ')}, part {p_i + 1}"
        date_a, date_b = _dates(rng)
        row: dict[str, Any] = {"id": qid, "question": qa["question"].strip(), "answers": golds}
        new = None
        if shape is not None and counts["altered"] < altered:
            new = _alter(answer, shape, kind, names, title, rng)
        if new is not None and new != answer and new not in context:
            second, body_b = "b", context.replace(answer, new, 1)
            row.update(answers=[*golds, new], conflict=[answer, new], shape=shape)
            counts["altered"] += 1
        elif (
            counts["elsewhere"] < elsewhere
            and kind != "other"
            and (change := _elsewhere(context, answer, kind, rng)) is not None
        ):
            second, body_b = "e", context.replace(change[0], change[1], 1)
            row.update(consistent=True, altered_elsewhere=list(change))
            counts["elsewhere"] += 1
        elif counts["consistent"] < consistent:
            body_b = _reprint(context, answer, rng)
            if answer not in body_b:
                continue
            second = "r"
            row["consistent"] = True
            counts["consistent"] += 1
        else:
            continue
        (out / "articles" / f"{qid}_a.txt").write_text(_article(heading, context, date_a))
        (out / "articles" / f"{qid}_{second}.txt").write_text(_article(heading, body_b, date_b))
        row["gold_sources"] = [f"{qid}_a.txt", f"{qid}_{second}.txt"]
        rows.append(row)
        used_paragraphs.add((title, p_i))

    def write(name: str, keep: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep)
        (out / name).write_text(lines, encoding="utf-8")

    write("questions.jsonl", rows)
    write("questions-altered.jsonl", [r for r in rows if "conflict" in r])
    write("questions-elsewhere.jsonl", [r for r in rows if "altered_elsewhere" in r])
    write("questions-reprints.jsonl", [r for r in rows if r["gold_sources"][1].endswith("_r.txt")])
    print(
        f"{counts['altered']} altered pairs, {counts['elsewhere']} pairs with another fact of the "
        f"sentence altered, {counts['consistent']} consistent reprints -> {out}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="SQuAD JSON file (v1.1 layout)")
    parser.add_argument("outdir", help="folder to write articles/ and questions.jsonl into")
    parser.add_argument("--altered", type=int, default=300, help="pairs with an altered fact")
    parser.add_argument("--consistent", type=int, default=150, help="harmless reprint pairs")
    parser.add_argument(
        "--elsewhere",
        type=int,
        default=100,
        help="pairs where another value of the asked kind in the answer's sentence changed",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    build(args.src, args.outdir, args.altered, args.consistent, args.elsewhere, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
