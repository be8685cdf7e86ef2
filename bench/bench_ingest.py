"""Ingest throughput: our pipeline (``rag ingest``) against the LangChain tutorial recipe.

Every measurement is a fresh child process, timed from start to exit, so the wall time includes
interpreter start, imports and model load; peak RSS is that child's own (``os.wait4``). Routes
run interleaved, ``--repeats`` times each, and the table shows medians.

    python bench/bench_ingest.py --repeats 3
    python bench/bench_ingest.py --datasets squad --routes ours,ours-fp32,baseline

Datasets: "bbc" (../shared/eval/bbc-news/bbc_news.jsonl, written out as one .txt file per
article, "title\\n\\ntext", which both sides read) and "squad" (bench/data/squad-v1.1/articles).
Each side embeds its own chunking: ours whole-sentence passages of RAG_CHUNK_CHARS (title
prefixed, one sentence of overlap, identical passages embedded once), the tutorial's
RecursiveCharacterTextSplitter 1000/200. Tokens are counted with the model's tokenizer,
truncated at the model's 256, i.e. what the model actually reads.

The OpenVINO backend converts the model once per machine (cached on disk); that one-off cost is
paid before timing and printed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BBC = ROOT.parent / "shared/eval/bbc-news/bbc_news.jsonl"
SQUAD = ROOT / "bench/data/squad-v1.1/articles"
# route -> RAG_EMBED_BACKEND for our pipeline (None: the tutorial baseline)
ROUTES: dict[str, str | None] = {"ours": "auto", "ours-fp32": "fp32", "baseline": None}


@dataclass
class Run:
    seconds: float
    rss_mb: float
    cpu_seconds: float  # user + system CPU of the child: less sensitive to other load than wall


@dataclass
class Row:
    dataset: str
    route: str
    articles: int = 0
    chunks: int = 0
    tokens: int = 0
    runs: list[Run] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)

    @property
    def rss(self) -> float:
        return max(r.rss_mb for r in self.runs)


def _env(backend: str | None) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if backend is not None:
        env["RAG_EMBED_BACKEND"] = backend
    return env


def timed_child(cmd: list[str], env: dict[str, str]) -> tuple[Run, str]:
    """Run ``cmd`` to completion; its wall time, its own peak RSS and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        if proc.returncode != 0:
            tail = err.read().decode("utf-8", "replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, usage.ru_maxrss / 1024, cpu), stdout  # ru_maxrss is in KiB on Linux


def ours_cmd(articles: Path, index: Path) -> list[str]:
    return [PYTHON, "-m", "rag", "--index", str(index), "ingest", str(articles), "--json"]


def baseline_cmd(articles: Path) -> list[str]:
    return [PYTHON, str(Path(__file__).resolve()), "--child-baseline", str(articles)]


def child_baseline(articles: Path) -> int:
    """The tutorial recipe end to end in this process: imports, model load, split, embed, FAISS."""
    sys.path.insert(0, str(ROOT / "bench"))
    from baseline_tutorial import build_baseline

    index = build_baseline(articles)
    print(json.dumps({"articles": index.n_articles, "chunks": index.n_chunks}))
    return 0


# --- counting (untimed, in this process) -----------------------------------------------------


def _tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    from embeddings import default_model_path

    tok = Tokenizer.from_file(str(default_model_path() / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.no_padding()
    return tok


def count_tokens(texts: list[str]) -> int:
    tok = _tokenizer()
    return sum(len(e.ids) for e in tok.encode_batch([t.strip() for t in texts]))


def our_texts(index: Path) -> list[str]:
    """Embedding texts of every distinct passage in a committed index (what was embedded)."""
    from rag.ingest.pipeline import embedding_text

    db = sqlite3.connect(f"file:{index / 'rows.sqlite'}?mode=ro", uri=True)
    try:
        articles = {
            r[0]: (r[1] or "", r[2]) for r in db.execute("SELECT id, title, text FROM articles")
        }
        texts: dict[str, str] = {}
        for article_id, start, end, h in db.execute(
            'SELECT article_id, start, "end", embed_hash FROM chunks'
        ):
            title, text = articles[article_id]
            texts.setdefault(h, embedding_text(title, text[start:end]))
    finally:
        db.close()
    return list(texts.values())


def baseline_texts(articles: Path) -> list[str]:
    """The tutorial's chunks of ``articles``, split exactly as build_baseline splits them."""
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    sys.path.insert(0, str(ROOT / "bench"))
    from baseline_tutorial import CHUNK_OVERLAP, CHUNK_SIZE

    docs = [
        Document(page_content=f.read_text(encoding="utf-8"))
        for f in sorted(articles.rglob("*.txt"))
    ]
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    return [d.page_content for d in splitter.split_documents(docs)]


# --- main ------------------------------------------------------------------------------------


def write_bbc(jsonl: Path, folder: Path, limit: int | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with jsonl.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle):
            if limit is not None and n >= limit:
                break
            rec = json.loads(line)
            name = str(rec["id"]).replace("/", "_") + ".txt"
            (folder / name).write_text(f"{rec['title']}\n\n{rec['text']}\n", encoding="utf-8")
    return folder


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(datasets: dict[str, Path], routes: list[str], repeats: int, work: Path) -> list[Row]:
    rows = {(d, r): Row(d, r) for d in datasets for r in routes}
    for rep in range(1, repeats + 1):
        for dataset, folder in datasets.items():
            for route in routes:
                row = rows[(dataset, route)]
                backend = ROUTES[route]
                if backend is None:
                    run, out = timed_child(baseline_cmd(folder), _env(None))
                    info = json.loads(out.strip().splitlines()[-1])
                    row.articles, row.chunks = info["articles"], info["chunks"]
                else:
                    index = work / f"index-{dataset}-{route}"
                    shutil.rmtree(index, ignore_errors=True)
                    run, out = timed_child(ours_cmd(folder, index), _env(backend))
                    report = json.loads(out)
                    row.articles = len(report["added"]) + len(report["renamed"])
                    row.chunks = report["chunks_embedded"]
                    if not row.tokens:
                        row.tokens = count_tokens(our_texts(index))
                row.runs.append(run)
                print(
                    f"  run {rep}/{repeats} {dataset:<6} {route:<10} {run.seconds:7.1f} s "
                    f"(cpu {run.cpu_seconds:7.1f} s) "
                    f"{run.rss_mb:6.0f} MiB  (load {loadavg()})",
                    flush=True,
                )
    for (dataset, route), row in rows.items():
        if ROUTES[route] is None:
            row.tokens = count_tokens(baseline_texts(datasets[dataset]))
    return list(rows.values())


def table(rows: list[Row]) -> str:
    head = (
        f"{'dataset':<7} {'route':<10} {'articles':>8} {'chunks':>7} {'tokens':>9} "
        f"{'wall s':>7} {'min-max':>13} {'art/s':>7} {'chunks/s':>8} {'tokens/s':>8} "
        f"{'RSS MiB':>7} {'cpu s':>7} {'speed-up':>8} {'cpu-ratio':>9}"
    )
    lines = [head, "-" * len(head)]
    base = {r.dataset: r.wall for r in rows if ROUTES[r.route] is None}
    base_cpu = {r.dataset: r.cpu for r in rows if ROUTES[r.route] is None}
    for r in rows:
        times = [x.seconds for x in r.runs]
        speed = f"{base[r.dataset] / r.wall:7.2f}x" if r.dataset in base else "-"
        cpu_speed = f"{base_cpu[r.dataset] / r.cpu:8.2f}x" if r.dataset in base else "-"
        lines.append(
            f"{r.dataset:<7} {r.route:<10} {r.articles:>8} {r.chunks:>7} {r.tokens:>9} "
            f"{r.wall:>7.1f} {min(times):>6.1f}-{max(times):<6.1f} {r.articles / r.wall:>7.1f} "
            f"{r.chunks / r.wall:>8.1f} {r.tokens / r.wall:>8.0f} {r.rss:>7.0f} {r.cpu:>7.1f} "
            f"{speed:>8} {cpu_speed:>9}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per route (median shown)")
    parser.add_argument("--datasets", default="bbc,squad", help="comma list of: bbc, squad")
    parser.add_argument(
        "--routes", default="ours,baseline", help=f"comma list of: {', '.join(ROUTES)}"
    )
    parser.add_argument("--bbc", type=Path, default=BBC, help="BBC News JSONL")
    parser.add_argument("--squad", type=Path, default=SQUAD, help="folder of SQuAD article .txt")
    parser.add_argument("--limit", type=int, help="only the first N articles of each dataset")
    parser.add_argument("--child-baseline", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_baseline is not None:
        return child_baseline(args.child_baseline)
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if args.repeats < 1 or not routes or any(r not in ROUTES for r in routes):
        parser.error(f"--repeats must be positive and --routes a list of {', '.join(ROUTES)}")
    if any(n not in ("bbc", "squad") for n in names):
        parser.error("--datasets is a comma list of bbc, squad")

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        datasets: dict[str, Path] = {}
        if "bbc" in names:
            datasets["bbc"] = write_bbc(args.bbc, work / "bbc", args.limit)
        if "squad" in names:
            datasets["squad"] = args.squad
            if args.limit is not None:
                datasets["squad"] = work / "squad"
                datasets["squad"].mkdir()
                for f in sorted(args.squad.glob("*.txt"))[: args.limit]:
                    shutil.copy(f, datasets["squad"] / f.name)
        print(f"cores {os.cpu_count()}, load average {loadavg()} at start", flush=True)
        if any(ROUTES[r] == "auto" for r in routes):
            # One-off per machine: the OpenVINO conversion (a no-op when already cached).
            probe = [
                PYTHON,
                "-c",
                "from embeddings import LocalEmbeddings as E; "
                "e = E(); print(e.backend, e.dimension)",
            ]
            run, out = timed_child(probe, _env(None))
            print(
                f"auto backend: {out.split()[0]}; first use (load, or convert+cache once): "
                f"{run.seconds:.1f} s",
                flush=True,
            )
        rows = measure(datasets, routes, args.repeats, work)
        print(
            f"\nload average at end {loadavg()}; medians of {args.repeats} interleaved runs; "
            "wall = child process start to exit (imports + model load included); speed-up = "
            "baseline wall / route wall; cpu-ratio = baseline CPU s / route CPU s"
        )
        print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
