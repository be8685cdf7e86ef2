"""Turn a SQuAD JSON file into an article folder plus a question file for ``rag.eval.runner``.

    python bench/squad_convert.py SRC.json OUTDIR [--sample N] [--seed S] [--not-in OTHER.json]

Writes ``OUTDIR/articles/<safe-title>.txt`` (title line, blank line, paragraphs separated by
blank lines) for every article, and ``OUTDIR/questions.jsonl``. With ``--sample`` a fixed random
sample of N questions is kept (in dataset order); every article is still written, so the
others act as distractors. With ``--not-in`` only questions on articles that OTHER.json does not
have are kept (SQuAD v2.0's dev articles are 35 of v1.1's 48, and its answerable questions are
v1.1's: a set to tune on that shares no article with v2.0 needs this).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_.,()\-]+")


def safe_title(title: str) -> str:
    """A file-name stem for a SQuAD title: characters outside ``[A-Za-z0-9_.,()-]`` -> ``_``."""
    stem = _UNSAFE.sub("_", title.strip()).strip("._") or "untitled"
    return stem[:150]


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _load(src: str | Path) -> dict[str, Any]:
    with open(src, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    if not isinstance(data.get("data"), list):
        raise ValueError(f"{src}: not SQuAD JSON (no 'data' list)")
    return data


def convert(
    src: str | Path,
    outdir: str | Path,
    sample: int | None = None,
    seed: int = 0,
    not_in: str | Path | None = None,
) -> tuple[int, int]:
    """Convert ``src`` into ``outdir``; returns (articles written, questions written)."""
    data = _load(src)
    skip = {str(a.get("title", "")) for a in _load(not_in)["data"]} if not_in else set()
    out = Path(outdir)
    articles_dir = out / "articles"
    articles_dir.mkdir(parents=True, exist_ok=True)

    used: set[str] = set()
    rows: list[dict[str, Any]] = []
    n_articles = 0
    for article in data["data"]:
        title = str(article.get("title", ""))
        stem = safe_title(title)
        name, i = f"{stem}.txt", 2
        while name.lower() in used:  # two titles that clean to one name: keep both apart
            name, i = f"{stem}_{i}.txt", i + 1
        used.add(name.lower())
        paragraphs = article.get("paragraphs", [])
        body = "\n\n".join(p["context"].strip() for p in paragraphs)
        _write_atomic(articles_dir / name, f"{title.replace('_', ' ')}\n\n{body}\n")
        n_articles += 1
        for p in paragraphs if title not in skip else []:
            for qa in p.get("qas", []):
                impossible = bool(qa.get("is_impossible", False))
                answers = [] if impossible else _dedupe([a["text"] for a in qa.get("answers", [])])
                rows.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "answers": answers,
                        "gold_sources": [name],
                        "impossible": impossible,
                    }
                )

    if sample is not None:
        if sample < 1:
            raise ValueError(f"sample must be >= 1, got {sample}")
        if sample < len(rows):
            keep = sorted(random.Random(seed).sample(range(len(rows)), sample))
            rows = [rows[i] for i in keep]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    _write_atomic(out / "questions.jsonl", lines)
    return n_articles, len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="SQuAD JSON file (v1.1 or v2.0 layout)")
    parser.add_argument("outdir", help="folder to write articles/ and questions.jsonl into")
    parser.add_argument("--sample", type=int, default=None, help="keep N random questions")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    parser.add_argument(
        "--not-in", help="SQuAD JSON file: skip questions on the articles it has (kept as text)"
    )
    args = parser.parse_args(argv)
    n_articles, n_questions = convert(args.src, args.outdir, args.sample, args.seed, args.not_in)
    print(f"{n_articles} articles, {n_questions} questions -> {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
