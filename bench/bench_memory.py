"""Memory and disk of a serving process at scale: RSS by stage, peak RSS, bytes per passage on disk.

    python bench/bench_memory.py --work /tmp/rag-scale [--sizes 100000,1000000]

Uses the index folders bench/bench_query.py made under --work (named n<size>-e<exact_max>). Each
size is measured in a fresh child process that does what a serving process does: load the model,
open the index (vectors and BM25 in memory; SQLite text stays on disk), answer 30 questions with
Retriever.search. RSS from /proc/self/status (VmRSS now, VmHWM peak).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import scale_data
from scale_data import loadavg, titles


def rss_mib() -> tuple[float, float]:
    fields = dict(
        line.split(":", 1)
        for line in Path("/proc/self/status").read_text().splitlines()
        if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def serve(folder: Path) -> None:
    """Child: stage-by-stage RSS of a serving process, printed as JSON."""
    out: dict[str, object] = {"start": rss_mib()[0]}
    from rag.embedder import CheckedEmbeddings
    from rag.retrieval.retriever import Retriever
    from rag.settings import Settings
    from rag.store.local import LocalStore

    settings = Settings(index_dir=folder)
    embedder = CheckedEmbeddings(settings)
    embedder.embed(["warm up"])
    out["model"] = rss_mib()[0]
    reader = LocalStore(folder).reader(embedder.model_id)
    out["index_open"] = rss_mib()[0]
    retriever = Retriever(reader, embedder, settings)
    for q in titles(30, seed=11):
        retriever.search(q)
    out["after_30_queries"], out["peak"] = rss_mib()
    n = reader.counts()[1]
    sizes = {"rows.sqlite": (folder / "rows.sqlite").stat().st_size, "vectors.faiss": 0,
             "lexical/": 0, "ids.npy": 0}  # fmt: skip
    for seg in (folder / "segments").iterdir():
        sizes["vectors.faiss"] += (seg / "vectors.faiss").stat().st_size
        sizes["ids.npy"] += (seg / "ids.npy").stat().st_size
        sizes["lexical/"] += sum(p.stat().st_size for p in (seg / "lexical").iterdir())
    out["segments"] = len(reader.segments())
    out["disk_bytes_per_passage"] = {k: round(v / n, 1) for k, v in sorted(sizes.items())}
    out["passages"] = n
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/rag-scale"))
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument(
        "--exact-max", type=int, help="as given to bench_query.py (default: the setting's default)"
    )
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--bbc", type=Path, help="bbc_news.jsonl (titles are the queries)")
    args = ap.parse_args()
    if args.bbc:
        scale_data.BBC = args.bbc
    if args.serve:
        serve(args.serve)
        return
    if args.exact_max is None:  # imported here: the child measures RSS before importing rag
        from rag.settings import Settings

        args.exact_max = Settings().vector_exact_max
    print(f"load {loadavg()}")
    print(
        f"{'passages':>9} {'start':>6} {'+model':>7} {'+index':>7} {'+30 q':>7} {'peak':>7}  "
        "disk bytes/passage"
    )
    for n in [int(s) for s in args.sizes.split(",")]:
        folder = args.work / f"n{n}-e{args.exact_max}"
        if not folder.is_dir():
            sys.exit(
                f"{folder} does not exist: make it first with bench/bench_query.py --sizes {n}"
            )
        res = subprocess.run(
            [sys.executable, __file__, "--serve", str(folder), "--bbc", str(scale_data.BBC)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        disk = ", ".join(f"{k} {v:g}" for k, v in r["disk_bytes_per_passage"].items())
        print(
            f"{r['passages']:9,} {r['start']:6.0f} {r['model']:7.0f} {r['index_open']:7.0f} "
            f"{r['after_30_queries']:7.0f} {r['peak']:7.0f}  {disk}   (MiB; load {loadavg()})",
            flush=True,
        )


if __name__ == "__main__":
    main()
