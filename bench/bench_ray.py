"""BBC ingest: local against Ray on one node and Ray on two nodes of this machine.

    python bench/bench_ray.py --bbc ../shared/eval/bbc-news/bbc_news.jsonl --limit 800 --repeats 3

Each run is a fresh ``rag ingest`` child process into a fresh index, timed from start to exit
(interpreter start, imports, model loads and, for Ray, joining the cluster and starting the
actors are all in the wall time). The routes run interleaved in every repeat, so machine load
hits each alike; a Ray route's cluster is started before its run (not timed: a Ray user's
cluster is already running) and stopped after it, so no idle cluster runs beside another route:

- ``local``: ``rag ingest FOLDER``;
- ``ray-1node``: ``--ray ADDRESS`` on one Ray node with all of this machine's CPUs;
- ``ray-2nodes``: ``--ray ADDRESS`` on two Ray nodes of half the CPUs each (``ray start`` twice,
  as the tests do); on both Ray routes the default actors, one per node with the node's CPUs;
- ``ray-start`` (optional): ``--ray`` with no address, starting and stopping Ray in the run;
- ``ray-1node-server`` and ``ray-1node-server-driver`` (optional): ``ray-1node`` into a Milvus
  server (``milvus-lite server``, started before the run and stopped after it), the workers
  writing the passages themselves, or (``RAG_RAY_WORKER_WRITES=false``) through the driver.

Every Ray index is compared with the local index of the same repeat (passage ids and offsets,
sources, duplicate groups, vectors within cosine 0.9999). The table shows medians, the range, and
the median of the per-repeat ratios to the local wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_ingest import BBC, loadavg, write_bbc  # noqa: E402

from rag.settings import Settings  # noqa: E402
from tests.index_compare import IndexPrint, differences, index_print  # noqa: E402
from tests.milvus_server import MilvusServer  # noqa: E402
from tests.ray_cluster import RayCluster  # noqa: E402

ROUTES = (
    "local",
    "ray-1node",
    "ray-2nodes",
    "ray-start",
    "ray-1node-server",
    "ray-1node-server-driver",
)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return seconds


def run_route(route: str, folder: Path, index: Path, cpus: int) -> tuple[float, IndexPrint]:
    """The route's wall time, and the index it made."""
    cmd = [sys.executable, "-m", "rag", "ingest", str(folder)]
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX_DIR": str(index)}
    if route == "local":
        return timed(cmd, base), index_print(index)
    if route == "ray-start":
        env = {**base, "RAY_USAGE_STATS_ENABLED": "0"}
        return timed([*cmd, "--ray"], env), index_print(index)
    nodes = 2 if route == "ray-2nodes" else 1
    with RayCluster(nodes=nodes, cpus=max(1, cpus // nodes)) as cluster:
        env = {**cluster.env, "RAG_INDEX_DIR": str(index)}  # the default: an actor per node
        if "server" not in route:
            return timed([*cmd, "--ray", cluster.address], env), index_print(index)
        with MilvusServer(index.with_suffix(".milvus")) as uri:
            env.update(RAG_STORE="milvus", RAG_MILVUS_URI=uri)
            if route.endswith("-driver"):
                env["RAG_RAY_WORKER_WRITES"] = "false"
            seconds = timed([*cmd, "--ray", cluster.address], env)
            return seconds, index_print(Settings(store="milvus", milvus_uri=uri, index_dir=index))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bbc", type=Path, default=BBC, help="BBC News JSONL")
    parser.add_argument("--limit", type=int, default=800, help="first N articles (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--routes", default="local,ray-1node,ray-2nodes", help=f"of {ROUTES}")
    parser.add_argument(
        "--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the Ray nodes in all"
    )
    args = parser.parse_args()
    routes = args.routes.split(",")
    if routes[0] != "local" or any(r not in ROUTES for r in routes):
        parser.error(f"--routes: a comma list of {ROUTES}, starting with local")

    work = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    try:
        folder = write_bbc(args.bbc, work / "bbc", args.limit or None)
        files = len(list(folder.iterdir()))
        walls: dict[str, list[float]] = {r: [] for r in routes}
        ratios: dict[str, list[float]] = {r: [] for r in routes}
        passages = 0
        same: dict[str, list[bool]] = {r: [] for r in routes}
        for rep in range(1, args.repeats + 1):
            local_print = None
            for route in routes:
                index = work / f"index-{route}-{rep}"
                seconds, fp = run_route(route, folder, index, args.cpus)
                walls[route].append(seconds)
                ratios[route].append(seconds / walls["local"][-1])
                if route == "local":
                    local_print, passages = fp, len(fp.passages)
                else:
                    assert local_print is not None
                    diff = differences(local_print, fp)
                    same[route].append(not diff)
                    if diff:
                        print(f"  {route} repeat {rep}: NOT the local index: {diff}", flush=True)
                print(f"repeat {rep} {route:<10} {seconds:7.1f} s  load {loadavg()}", flush=True)
                shutil.rmtree(index, ignore_errors=True)
                shutil.rmtree(index.with_suffix(".milvus"), ignore_errors=True)
        print(
            f"\nBBC, first {files} articles, {passages} passages; {args.repeats} repeats, "
            f"{os.cpu_count()} CPUs; medians (range)\n"
        )
        print("| route | wall s | passages/s | wall vs local | same index as local |")
        print("| --- | --- | --- | --- | --- |")
        for route in routes:
            w = walls[route]
            med = statistics.median(w)
            ident = "(reference)" if route == "local" else f"{sum(same[route])}/{len(same[route])}"
            print(
                f"| {route} | {med:.1f} ({min(w):.1f}-{max(w):.1f}) | {passages / med:.0f} | "
                f"{statistics.median(ratios[route]):.2f}x | {ident} |"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
