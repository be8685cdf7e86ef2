"""Soak test: many concurrent questions against one index while another process keeps ingesting.

Reader threads share one ``System`` (as the Streamlit page does) and ask questions in a loop; a
separate writer process adds, rewrites and deletes article files and re-ingests the folder, so
commits land all the time. Everything runs locally: extractive answers, no network at all.

Prints: asks, errors (must be 0), latency p50/p95/p99, how many newer snapshots the readers
switched to, writer commits, and the final integrity check. Exit code 1 if anything went wrong.

    python bench/soak.py                         # 200 synthetic articles, real model, 60 s
    python bench/soak.py --fake --seconds 20     # hash embedder: exercises locking, not the model
    python bench/soak.py --jsonl ../shared/eval/bbc-news/bbc_news.jsonl --limit 300
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import random
import re
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.synthetic and tests.conftest (the --fake embedder)
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rag.settings import Settings  # noqa: E402
from rag.store.local import LocalStore  # noqa: E402
from rag.system import System  # noqa: E402
from tests.synthetic import questions as synthetic_questions  # noqa: E402
from tests.synthetic import sentence, write_articles  # noqa: E402


def _settings(index: Path, backend: str) -> Settings:
    return Settings(index_dir=index, llm="", lock_timeout=120, embed_backend=backend)  # type: ignore[arg-type]


def _embedder(fake: bool) -> Any:
    if not fake:
        return None  # System loads the configured local model
    from tests.conftest import HashEmbedder

    return HashEmbedder()


def _from_jsonl(path: Path, limit: int, folder: Path) -> list[str]:
    """Write up to ``limit`` records as text files; return questions made from their sentences."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    qs: list[str] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n >= limit:
                break
            rec = json.loads(line)
            text = str(rec.get("text", ""))
            (folder / f"rec_{n:05d}.txt").write_text(f"{rec.get('title', n)}\n\n{text}\n")
            sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 8]
            if sentences:
                words = rng.choice(sentences).split()
                qs.append(" ".join(words[: rng.randint(5, 9)]) + "?")
    return qs


def writer(
    index: str, folder: str, seconds: float, fake: bool, backend: str, out: Any, ready: Any
) -> None:
    """Separate process: change files and re-ingest until the time is up."""
    try:
        system = System(_settings(Path(index), backend), embedder=_embedder(fake))
        system.embedder.dimension  # load the model before the clock starts  # noqa: B018
        root = Path(folder)
        rng = random.Random(7)
        ready.set()
        deadline = time.monotonic() + seconds
        cycles = commits = 0
        ingest_seconds: list[float] = []
        added: list[Path] = []
        while time.monotonic() < deadline:
            files = sorted(root.glob("*.txt"))
            for path in rng.sample(files, min(2, len(files))):  # rewrite two articles
                with path.open("a", encoding="utf-8") as f:
                    f.write(f"\n{sentence(rng)}\n")
            added += write_articles(root, 1, seed=cycles, first=90_000 + cycles)  # add one
            if len(added) > 3:  # and delete an article this loop added earlier
                added.pop(0).unlink()
            started = time.perf_counter()
            report = system.ingest([root])
            ingest_seconds.append(time.perf_counter() - started)
            cycles += 1
            commits += bool(report.added or report.updated or report.removed or report.renamed)
        out.put({"cycles": cycles, "commits": commits, "ingest_seconds": ingest_seconds})
    except BaseException:  # noqa: BLE001 - reported by the parent
        out.put({"error": traceback.format_exc()})


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    p.add_argument("--threads", type=int, default=4, help="concurrent askers (default 4)")
    p.add_argument("--articles", type=int, default=200, help="synthetic articles (default 200)")
    p.add_argument("--jsonl", type=Path, help="take articles from this JSONL instead")
    p.add_argument("--limit", type=int, default=200, help="records taken from --jsonl")
    p.add_argument("--fake", action="store_true", help="hash embedder instead of the real model")
    p.add_argument("--backend", default="fp32", help="embedding backend (default fp32)")
    p.add_argument("--workdir", type=Path, help="folder for articles and index (default: temp)")
    args = p.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="rag-soak-"))
    folder, index = work / "articles", work / "index"
    if args.jsonl:
        qs = _from_jsonl(args.jsonl, args.limit, folder)
    else:
        write_articles(folder, args.articles, seed=11)
        qs = synthetic_questions(11, 500)
    settings = _settings(index, args.backend)
    system = System(settings, embedder=_embedder(args.fake))
    started = time.perf_counter()
    report = system.ingest([folder])
    print(f"setup: {report.summary()} (took {time.perf_counter() - started:.1f} s) in {work}")
    system.ask(qs[0])  # warm up: model and index loaded before the clock starts

    ctx = mp.get_context("spawn")
    out, ready = ctx.Queue(), ctx.Event()
    proc = ctx.Process(
        target=writer,
        args=(str(index), str(folder), args.seconds, args.fake, args.backend, out, ready),
    )
    proc.start()
    if not ready.wait(300):
        print("writer process did not start", file=sys.stderr)
        proc.kill()
        return 1

    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    switches = [0]
    snapshots: set[str] = set()
    abstained = [0]
    deadline = time.monotonic() + args.seconds

    def asker(n: int) -> None:
        rng = random.Random(n)
        last = None
        while time.monotonic() < deadline:
            q = rng.choice(qs)
            t0 = time.perf_counter()
            try:
                answer = system.ask(q)
                took = time.perf_counter() - t0
                reader = system.reader()
                for c in answer.citations:
                    offset = c.start - c.passage_start
                    if c.passage[offset : offset + len(c.quote)] != c.quote:
                        raise AssertionError(f"citation {c.n} is not inside its passage")
                    try:  # ids are content hashes: same id, same text, in any snapshot
                        text = reader.article(c.article_id).text
                    except KeyError:
                        continue  # removed by a commit since the answer was made
                    if text[c.start : c.end] != c.quote:
                        raise AssertionError(f"citation {c.n} does not slice its article")
                snap = reader.version
            except Exception:  # noqa: BLE001 - counted and shown
                with lock:
                    errors.append(traceback.format_exc())
                continue
            with lock:
                latencies.append(took)
                abstained[0] += answer.abstained
                snapshots.add(snap)
                if last is not None and snap != last:
                    switches[0] += 1
            last = snap

    threads = [threading.Thread(target=asker, args=(n,)) for n in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        w = out.get(timeout=600)
    except queue.Empty:
        w = {"error": "the writer process reported nothing"}
    proc.join(60)
    if "error" in w:
        errors.append("writer: " + w["error"])

    problems = LocalStore(index).check()
    final = System(settings, embedder=system.embedder).stats()
    ms = [x * 1000 for x in latencies]
    print(
        f"model: {'hash-64 (fake)' if args.fake else system.embedder.model_id}, "
        f"{args.threads} asking threads, {args.seconds:g} s, loopback only (extractive answers)"
    )
    print(
        f"asks: {len(latencies)} ({len(latencies) / args.seconds:.1f}/s), abstained {abstained[0]}"
    )
    print(f"errors: {len(errors)}")
    print(
        f"latency ms: p50 {_percentile(ms, 50):.0f}  p95 {_percentile(ms, 95):.0f}  "
        f"p99 {_percentile(ms, 99):.0f}  max {max(ms, default=float('nan')):.0f}"
    )
    print(
        f"refreshes seen by readers: {switches[0]} switches to a newer snapshot, "
        f"{len(snapshots)} distinct snapshots answered from"
    )
    if "cycles" in w:
        ing = w["ingest_seconds"]
        print(
            f"writer: {w['cycles']} ingest cycles, {w['commits']} commits, ingest p50 "
            f"{_percentile(ing, 50):.2f} s, max {max(ing, default=0):.2f} s"
        )
    print(
        f"final index: {final['articles']} articles, {final['chunks']} passages, "
        f"{final['snapshot']}; check: {problems or 'consistent'}"
    )
    for e in errors[:3]:
        print(f"--- error ---\n{e}", file=sys.stderr)
    return 0 if not errors and not problems and proc.exitcode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
