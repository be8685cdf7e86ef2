"""Generated news-like articles for crash, concurrency and load tests: deterministic from a seed."""

from __future__ import annotations

import random
from pathlib import Path

TOWNS = [
    "Ashford", "Brimley", "Calder", "Dunmore", "Elmstead", "Farrow", "Glenhope", "Harwick",
    "Ivybridge", "Jarrow", "Kelso", "Lynmouth", "Marston", "Northam", "Oakridge", "Penrith",
]  # fmt: skip
PEOPLE = [
    "Ada Quill", "Bram Otley", "Cora Vance", "Dev Patel", "Edith Rowe", "Femi Adeyemi",
    "Greta Lind", "Hugo Marsh", "Iris Chen", "Jonas Berg", "Kiri Tane", "Lena Sokol",
]  # fmt: skip
THINGS = [
    "bridge", "library", "ferry", "orchard", "tram line", "harbour wall", "school roof",
    "water main", "market hall", "cycle path", "bus depot", "flood barrier", "clinic",
]  # fmt: skip
VERBS = ["reopen", "close", "expand", "be repaired", "be inspected", "move", "be rebuilt"]
UNITS = ["weeks", "months", "days"]
REASONS = [
    "after a winter storm damaged it",
    "because the council found cracks in the structure",
    "following complaints from residents",
    "once the new budget was approved",
    "after engineers finished a survey",
    "when the contractor delivered the steel",
]


def sentence(rng: random.Random) -> str:
    kind = rng.randrange(4)
    town, person, thing = rng.choice(TOWNS), rng.choice(PEOPLE), rng.choice(THINGS)
    n, unit = rng.randint(2, 90), rng.choice(UNITS)
    if kind == 0:
        return f"{person} said the {thing} in {town} would {rng.choice(VERBS)} within {n} {unit}."
    if kind == 1:
        return f"The {thing} in {town} cost {n} million pounds {rng.choice(REASONS)}."
    if kind == 2:
        return f"Residents of {town} counted {n * 13} visitors at the {thing} last year."
    return (
        f"According to {person}, work on the {thing} started {n} {unit} ago {rng.choice(REASONS)}."
    )


def article(rng: random.Random, number: int, version: int = 0) -> tuple[str, str]:
    """(title, text) of article ``number``; a new ``version`` changes its body."""
    title = f"Report {number}: the {rng.choice(THINGS)} of {rng.choice(TOWNS)}"
    paragraphs = []
    for _ in range(rng.randint(2, 4)):
        body = " ".join(sentence(rng) for _ in range(rng.randint(2, 4)))
        paragraphs.append(body)
    paragraphs.append(f"This is revision {version} of report {number}.")
    return title, "\n\n".join(paragraphs)


def write_articles(
    folder: Path, count: int, seed: int = 0, version: int = 0, first: int = 0
) -> list[Path]:
    """Write ``count`` articles ``article_NNN.txt`` (numbers from ``first``) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(first, first + count):
        rng = random.Random(f"{seed}-{number}-{version}")
        title, text = article(rng, number, version)
        path = folder / f"article_{number:03d}.txt"
        path.write_text(f"{title}\n\n{text}\n", encoding="utf-8")
        paths.append(path)
    return paths


def questions(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    forms = [
        "When will the {thing} in {town} reopen?",
        "How much did the {thing} in {town} cost?",
        "What did {person} say about the {thing}?",
        "How many visitors came to the {thing} in {town}?",
    ]
    return [
        rng.choice(forms).format(
            thing=rng.choice(THINGS), town=rng.choice(TOWNS), person=rng.choice(PEOPLE)
        )
        for _ in range(count)
    ]
