"""Storage that grows: adding to big indexes, a `rag watch` simulation, queries over segments, memory.

    python bench/bench_storage.py --bbc-index BBC_INDEX --work WORK \\
        --old-tree OLD_TREE --old-bbc-index OLD_BBC_INDEX \\
        [--sizes 10000,100000,1000000] [--old-sizes 10000,100000] [--watch 200] \\
        [--watch-sizes 100000,1000000] [--queries 60] [--sections add,watch,query,memory]

BBC_INDEX is ``rag ingest bbc_news.jsonl`` with this code, OLD_BBC_INDEX the same with the
previous release, whose code is unpacked at OLD_TREE (``git archive 3f3323c | tar -x -C
OLD_TREE``). The sized folders are made under WORK from them, once, by bench/scale_data.py of
each tree (each in its own format), and reused. Every measured run is a fresh child process.

add    one 1-passage file and one 100-passage file added to a copy of each sized folder with
       ``System.ingest`` (what ``rag ingest FILE`` does), twice each, by the previous release
       and by this code: seconds after the model is loaded, bytes the process wrote
       (/proc/self/io write_bytes), peak RSS of the process (model included).
watch  a `rag watch` simulation: files of 1-3 passages arriving one at a time into a copy of
       the folder, each followed by an ingest of the watched folder in one long-lived process
       (as `rag watch` runs): seconds per file, segments at the end, bytes written, peak RSS.
query  on the folders the simulation left, and on a copy compacted into one segment: query
       latency (dense search, BM25, the whole Retriever.search) p50/p95 over BBC titles, and
       recall@10 of the dense search against exact search over the original float vectors;
       at 100k also the previous release on its own folder.
memory a serving process on the folder the simulation left (bench/bench_memory.py --serve).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import scale_data
from scale_data import build_scaled_index, loadavg, percentiles, scaled_vectors, titles

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.synthetic import sentence  # noqa: E402

_ADD_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from rag.settings import Settings
from rag.system import System
def written():
    for line in open("/proc/self/io"):
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
s = System(Settings(index_dir=sys.argv[1]))
s.embedder.embed(["warm up"])
w0, t1 = written(), time.perf_counter()
r = s.ingest([sys.argv[2]])
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "seconds": t2 - t1, "written": written() - w0,
                  "added": len(r.added), "passages": r.chunks_embedded, "peak": peak()}))
"""

_OLD_QUERY_CHILD = """
import json, sys, time
import numpy as np
from rag.embedder import CheckedEmbeddings
from rag.retrieval.retriever import Retriever
from rag.settings import Settings
from rag.store.folder import IndexStore
from rag.store.reader import IndexReader
s = Settings()
emb = CheckedEmbeddings(s)
reader = IndexReader(IndexStore(sys.argv[1]))
ret = Retriever(reader, emb, s)
qs = json.loads(sys.argv[2])
out = []
for i, q in enumerate(qs[:3] + qs):
    t = time.perf_counter(); ret.search(q); took = time.perf_counter() - t
    if i >= 3: out.append(took)
print(json.dumps(out))
"""


def env(tree: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def child(args: list[str], tree: Path) -> Any:
    """Run a Python child; its last stdout line, as JSON."""
    proc = subprocess.run([sys.executable, *args], capture_output=True, env=env(tree), cwd=tree)
    if proc.returncode:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def peak_of(args: list[str], tree: Path) -> tuple[dict[str, Any], float]:
    """Like :func:`child`, with the child's peak RSS as it reports it (VmHWM after exec: the
    rusage of a forked child would count this process's pages too)."""
    got = child(args, tree)
    return got, float(got["peak"])


def article(seed: int, paragraphs: int) -> str:
    import random

    rng = random.Random(seed)
    body = "\n\n".join(" ".join(sentence(rng) for _ in range(rng.randint(5, 7)))
                       for _ in range(paragraphs))  # fmt: skip
    return f"Report {seed}: news from the valley\n\n{body}\n"


def folder_for(route: str, n: int, args: argparse.Namespace) -> Path:
    out = args.work / f"{route}-n{n}"
    if route == "new":
        return build_scaled_index(args.bbc_index, n, out, args.exact_max)
    if not (out / "CURRENT").exists():
        code = (
            "import sys; sys.path.insert(0, 'bench'); from pathlib import Path; "
            "from scale_data import build_scaled_index as b; "
            f"b(Path({str(args.old_bbc_index)!r}), {n}, Path({str(out)!r}), {args.exact_max})"
        )
        subprocess.run([sys.executable, "-c", code], check=True, env=env(args.old_tree),
                       cwd=args.old_tree)  # fmt: skip
    return out


def fresh_copy(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def section_add(args: argparse.Namespace) -> None:
    files = args.work / "files"
    files.mkdir(parents=True, exist_ok=True)
    adds = []
    for k, paragraphs in enumerate([1, 195, 1, 195]):  # 1 and about 100 passages
        path = files / f"add-{k}.txt"
        path.write_text(article(10_000 + k, paragraphs), encoding="utf-8")
        adds.append(("1-passage" if paragraphs == 1 else "100-passage", path))
    print(f"\n## incremental add (load {loadavg()})")
    print(f"{'passages':>9} {'route':6} {'file':12} {'s after model load':>19} {'MB written':>11} "
          f"{'peak RSS MiB':>12} {'passages added':>14}")  # fmt: skip
    for n in args.sizes:
        routes = (["old"] if n in args.old_sizes else []) + ["new"]
        for route in routes:
            tree = args.old_tree if route == "old" else ROOT
            trial = fresh_copy(folder_for(route, n, args), args.work / f"trial-{route}-{n}")
            runs: dict[str, list[tuple[dict[str, Any], float]]] = {}
            for kind, path in adds:
                runs.setdefault(kind, []).append(
                    peak_of(["-c", _ADD_CHILD, str(trial), str(path)], tree)
                )
            for kind, got in runs.items():
                secs = " / ".join(f"{r['seconds']:.2f}" for r, _ in got)
                mb = " / ".join(f"{r['written'] / 1e6:.1f}" for r, _ in got)
                print(f"{n:9,} {route:6} {kind:12} {secs:>19} {mb:>11} "
                      f"{max(p for _, p in got):12.0f} {got[0][0]['passages']:14}", flush=True)  # fmt: skip
            shutil.rmtree(trial)
    skipped = [n for n in args.sizes if n not in args.old_sizes]
    if skipped:
        print(f"(previous release not run at {skipped}: its writer copies the whole index per "
              "commit and was killed by the kernel past 24 GiB at 1M passages)")  # fmt: skip


def watch_child(folder: Path, files: Path, count: int) -> None:
    """In this process: a long-lived writer ingesting a watched folder after every new file."""
    from rag.settings import Settings
    from rag.system import System

    def written() -> int:
        io = Path("/proc/self/io").read_text()
        return int(io.split("write_bytes:")[1].split()[0])

    system = System(Settings(index_dir=folder))
    system.embedder.embed(["warm up"])
    files.mkdir(parents=True, exist_ok=True)
    seconds, w0 = [], written()
    for i in range(count):
        (files / f"arrival-{i:04d}.txt").write_text(article(20_000 + i, 1 + i % 3), "utf-8")
        t = time.perf_counter()
        system.ingest([files])
        seconds.append(time.perf_counter() - t)
    status = Path("/proc/self/status").read_text()
    peak = int(status.split("VmHWM:")[1].split()[0]) / 1024  # the writer's, before a reader opens
    reader = system.reader()
    print(json.dumps({"seconds": seconds, "written": written() - w0, "peak": peak,
                      "segments": reader.segments(), "passages": reader.counts()[1]}))  # type: ignore[attr-defined]  # fmt: skip


def section_watch(args: argparse.Namespace) -> None:
    print(f"\n## rag watch simulation: {args.watch} files, one at a time (load {loadavg()})")
    print(f"{'passages':>9} {'s per file p50/p95/max':>24} {'MB written':>11} {'segments':>8} "
          f"{'peak RSS MiB':>12}")  # fmt: skip
    for n in args.watch_sizes:
        folder = fresh_copy(folder_for("new", n, args), args.work / f"watched-{n}")
        files = args.work / f"arrivals-{n}"
        shutil.rmtree(files, ignore_errors=True)
        got, peak = peak_of([str(Path(__file__)), "--watch-child", str(folder), str(files),
                             str(args.watch)], ROOT)  # fmt: skip
        s = got["seconds"]
        p50, p95 = percentiles(s)
        print(f"{n:9,} {p50 / 1000:8.2f} / {p95 / 1000:.2f} / {max(s):.2f} "
              f"{got['written'] / 1e6:11.1f} {len(got['segments']):8} {peak:12.0f}", flush=True)  # fmt: skip
        print("          segments: " + ", ".join(
            f"{g['live']:,} ({g['vectors']})" for g in got["segments"]))  # fmt: skip


def section_query(args: argparse.Namespace) -> None:
    import gc

    import numpy as np

    from rag.embedder import CheckedEmbeddings
    from rag.retrieval.retriever import Retriever
    from rag.settings import Settings
    from rag.store.local import LocalStore

    settings = Settings()
    emb = CheckedEmbeddings(settings)
    qs = titles(args.queries, seed=7)
    emb.embed(qs[:4])
    print(f"\n## queries after the simulation vs one merged segment: {len(qs)} BBC titles, "
          f"p50/p95 ms (load {loadavg()})")  # fmt: skip
    print(f"{'passages':>9} {'index':22} {'segments':>8} {'dense':>11} {'bm25':>11} "
          f"{'retrieve':>11} {'recall@10':>9}")  # fmt: skip
    for n in args.watch_sizes:
        watched = args.work / f"watched-{n}"
        merged = fresh_copy(watched, args.work / f"merged-{n}")
        LocalStore(merged).compact(emb.model_id)
        exact = exact_vectors(args, n, LocalStore(watched).reader())
        # Both indexes open at once, queried in turn question by question (each first half the
        # time): a busy machine then slows both alike.
        sides = []
        for label, folder in (("after simulation", watched), ("one merged segment", merged)):
            reader = LocalStore(folder).reader(emb.model_id)
            sides.append((label, reader, Retriever(reader, emb, settings)))
        lat = {s[0]: {"dense": [], "bm25": [], "retrieve": []} for s in sides}
        hits = dict.fromkeys(lat, 0)
        for i, q in enumerate([*qs[:3], *qs]):
            for label, reader, ret in (
                sides if i % 2 else sides[::-1]
            ):  # each goes first half the time
                qv = ret.embed_query(q)
                t0 = time.perf_counter()
                dense = reader.dense_search(qv, settings.fetch_k)
                t1 = time.perf_counter()
                reader.lexical_search(q, settings.fetch_k)
                t2 = time.perf_counter()
                ret.search(q)  # embeds the question again, as a real query does
                t3 = time.perf_counter()
                if i >= 3:
                    lat[label]["dense"].append(t1 - t0)
                    lat[label]["bm25"].append(t2 - t1)
                    lat[label]["retrieve"].append(t3 - t2)
                    ids, vecs = exact
                    top = ids[np.argsort(-(vecs @ qv))[:10]]
                    hits[label] += len(set(top.tolist()) & {p for p, _ in dense[:10]})
        for label, reader, _ in sides:
            cells = ["{:.1f}/{:.1f}".format(*percentiles(v)) for v in lat[label].values()]
            print(f"{n:9,} {label:22} {len(reader.segments()):8} {cells[0]:>11} {cells[1]:>11} "
                  f"{cells[2]:>11} {hits[label] / (10 * len(qs)):9.3f}", flush=True)  # fmt: skip
        del sides, reader
        gc.collect()
        del exact
        gc.collect()
        shutil.rmtree(merged)
        if n in args.old_sizes:
            old = folder_for("old", n, args)
            got = child(["-c", _OLD_QUERY_CHILD, str(old), json.dumps(qs)], args.old_tree)
            print(
                f"{n:9,} {'previous release':22} {1:8} {'':>11} {'':>11} {{:>11}}".format(
                    "{:.1f}/{:.1f}".format(*percentiles(got))
                ),
                flush=True,
            )


def exact_vectors(args: argparse.Namespace, n: int, reader: Any) -> tuple[Any, Any]:
    """Every live passage's original float vector: the scaled ones (as built, before any
    quantisation) and those of the passages the simulation added (flat segments: exact)."""
    import numpy as np

    base = scaled_vectors(args.bbc_index, n)
    added = [s for s in reader._view.states if s.seg.info.min_id > n]
    ids = [np.arange(1, n + 1, dtype=np.int64)] + [s.seg.ids for s in added]
    vecs = [base] + [reader.vectors_for(s.seg.ids) for s in added]
    return np.concatenate(ids), np.concatenate(vecs)


def section_memory(args: argparse.Namespace) -> None:
    print(f"\n## serving memory on the folders the simulation left (load {loadavg()})")
    for n in args.watch_sizes:
        got = child([str(ROOT / "bench" / "bench_memory.py"), "--serve",
                     str(args.work / f"watched-{n}"), "--bbc", str(scale_data.BBC)], ROOT)  # fmt: skip
        print(f"{n:9,} passages, {got['segments']} segments: model {got['model']:.0f} MiB, "
              f"index open {got['index_open']:.0f}, after 30 queries {got['after_30_queries']:.0f}, "
              f"peak {got['peak']:.0f} MiB", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bbc-index", type=Path)
    ap.add_argument("--bbc", type=Path, help="bbc_news.jsonl (titles are the queries)")
    ap.add_argument("--old-bbc-index", type=Path)
    ap.add_argument("--old-tree", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/rag-storage"))
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--old-sizes", default="10000,100000")
    ap.add_argument("--watch", type=int, default=200)
    ap.add_argument("--watch-sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--exact-max", type=int, default=50_000)
    ap.add_argument("--sections", default="add,watch,query,memory")
    ap.add_argument("--watch-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.watch_child:
        folder, files, count = args.watch_child
        watch_child(Path(folder), Path(files), int(count))
        return
    if args.bbc:
        scale_data.BBC = args.bbc
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    args.old_sizes = [int(x) for x in args.old_sizes.split(",") if x] if args.old_tree else []
    args.watch_sizes = [int(x) for x in args.watch_sizes.split(",") if x]
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"cores {os.cpu_count()}, load {loadavg()}; times are medians or each run shown")
    sections = {"add": section_add, "watch": section_watch, "query": section_query,
                "memory": section_memory}  # fmt: skip
    for name in args.sections.split(","):
        sections[name](args)


if __name__ == "__main__":
    main()
