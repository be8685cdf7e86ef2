"""Per-passage costs for the sizing table in docs/scaling.md: disk and serving memory of the
local store and of a Milvus Lite file, at two sizes, so a slope and a fixed part come out.

    python bench/bench_sizing.py --sizes 3000,12000

Each size is a folder of generated news-like articles (tests/synthetic.py), ingested into a
fresh local index and a fresh Milvus Lite file, each in a child process, with a 384-dimension
bag-of-words embedder (the real model's dimension, not its cost: embedding time is not what is
sized here). A second child opens the store, answers 30 searches and reports its resident memory
(VmRSS after the searches, VmHWM the peak) without the model; the model's own memory is measured
in docs/storage.md. Disk is ``du`` of the index folder or the .db folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from rag import Settings, System
from tests.conftest import HashEmbedder
from tests.synthetic import questions
mode, store, index, folder = sys.argv[2:6]
settings = Settings(index_dir=Path(index), store=store)  # Milvus: milvus.db in the folder
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
embedder = HashEmbedder(384, "hash-384")
base = status("VmRSS")
started = time.perf_counter()
system = System(settings, embedder=embedder)
if mode == "ingest":
    report = system.ingest([Path(folder)])
    out = {"seconds": time.perf_counter() - started, "added": len(report.added)}
else:
    passages = system.reader().counts()[1]
    opened = status("VmRSS")
    for q in questions(1, 30):
        system.search(q)
    out = {"passages": passages, "base": base, "opened": opened, "after": status("VmRSS"),
           "peak": status("VmHWM")}
out["peak_all"] = status("VmHWM")
print(json.dumps(out))
"""


def child(mode: str, store: str, index: Path, folder: Path) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT), mode, store, str(index), str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if r.returncode != 0:
        raise SystemExit(f"{mode} {store} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", default="3000,12000", help="articles per size (about 1.1 passages each)"
    )
    ap.add_argument("--stores", default="local,milvus")
    args = ap.parse_args()
    from tests.synthetic import write_articles

    work = Path(tempfile.mkdtemp(prefix="bench_sizing_"))
    rows = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            folder = work / f"articles-{n}"
            write_articles(folder, n, seed=11)
            chars = sum(p.stat().st_size for p in folder.iterdir())
            for store in args.stores.split(","):
                index = work / f"{store}-{n}"
                t = time.perf_counter()
                ing = child("ingest", store, index, folder)
                wall = time.perf_counter() - t
                srv = child("serve", store, index, folder)
                disk = du(index)
                p = srv["passages"]
                rows.append((store, n, p, disk, srv, ing, wall))
                print(
                    f"{store:<7} {n:>6} articles {p:>7} passages ({chars / p:.0f} chars each): "
                    f"disk {disk / 2**20:7.1f} MiB ({disk / p / 1024:.2f} KiB/passage); serving "
                    f"RSS opened {srv['opened']:.0f}, after 30 searches {srv['after']:.0f}, peak "
                    f"{srv['peak']:.0f} MiB (process before opening {srv['base']:.0f}); ingest "
                    f"{wall:.0f} s, peak {ing['peak_all']:.0f} MiB",
                    flush=True,
                )
        print("\nslope between the two sizes (per passage) and fixed part (at 0 passages):")
        for store in args.stores.split(","):
            mine = [r for r in rows if r[0] == store]
            (_, _, p1, d1, s1, _, _), (_, _, p2, d2, s2, _, _) = mine[0], mine[-1]
            for key in ("after", "peak"):
                slope = (s2[key] - s1[key]) / (p2 - p1)
                print(
                    f"{store:<7} {key:<5} {slope * 1024:.2f} KiB/passage + "
                    f"{s1[key] - slope * p1:.0f} MiB"
                )
            print(f"{store:<7} disk  {(d2 - d1) / (p2 - p1) / 1024:.2f} KiB/passage")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
