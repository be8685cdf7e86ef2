"""The HTTP API under load: 1, 8 and 32 clients asking for 60 s each while another client uploads,
against the in-process ``System.ask`` measured in the same run.

    python bench/bench_api.py [--articles BBC_JSONL] [--work /tmp/rag-bench-api] [--seconds 60]
        [--clients 1,8,32] [--upload-every 2]

The index is the BBC News set (2,225 articles) ingested once into --work. ``rag serve`` runs as its
own process with two API keys (read for the askers, write for the uploader) and no rate limit.
Each asking client is a thread with its own HTTP connection that posts ``/v1/ask`` (extractive
answers, BBC titles as questions) back to back; the uploader posts a new short article as JSON
every --upload-every seconds and follows its job, so the index is committed (and every reader
moves to the new snapshot) throughout. Printed per level: answers, answers per second, p50/p95
latency, errors (any non-200 or failed job), uploads done. Baselines, in this process with its own
System over the same index: ``System.ask`` one at a time (the reference of the target: p50 at 8 clients within 2x) and from the same
number of threads at once (the same work without HTTP), measured right before each level. The
ratio columns are the p50 over those two in-process p50s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import scale_data
from scale_data import BBC, loadavg, percentiles, titles

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rag.settings import Settings  # noqa: E402
from rag.system import System  # noqa: E402
from tests.api_server import RagServe  # noqa: E402  (the tests' process wrapper, reused)


def build_index(articles: Path, index: Path) -> None:
    if (index / "CURRENT").is_file():
        return
    print(f"ingesting {articles} into {index} (once) ...", flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(articles), "--index", str(index)]
    )
    if r.returncode:
        sys.exit("ingest failed")
    print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)


def make_keys(path: Path) -> dict[str, str]:
    path.unlink(missing_ok=True)
    keys = {}
    for role in ("read", "write"):
        out = subprocess.run(
            [sys.executable, "-m", "rag", "keys", "add", f"bench-{role}", "--role", role,
             "--keys", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        keys[role] = out.stdout.strip()
    return keys


def in_process(system: System, questions: list[str], threads: int, seconds: float) -> list[float]:
    """Latencies of System.ask from ``threads`` threads asking back to back for ``seconds``."""
    times: list[float] = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def work(offset: int) -> None:
        i = offset
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            system.ask(questions[i % len(questions)])
            with lock:
                times.append(time.perf_counter() - t0)
            i += threads

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return times


class Uploader(threading.Thread):
    """Posts a new article every ``every`` seconds and waits for its job; counts what failed."""

    def __init__(self, url: str, key: str, every: float, tag: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        )
        self.every, self.tag = every, tag
        self.done = self.errors = 0
        self.job_seconds: list[float] = []  # each upload's ingest, as its job reports it
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            text = (
                f"Bench note {self.tag}-{n}: the harbour master of Port Alder logged {n} "
                f"fishing boats and {n * 3} yachts on the {self.tag} shift. Weather was calm."
            )
            try:
                r = self.client.post(
                    "/v1/articles", json={"title": f"Bench {self.tag} {n}", "text": text}
                )
                job = r.json() if r.status_code == 202 else {"status": "failed"}
                while job["status"] in ("queued", "running"):
                    time.sleep(0.2)
                    job = self.client.get(f"/v1/jobs/{job['id']}").json()
                if job["status"] == "done":
                    self.done += 1
                    self.job_seconds.append(job["report"]["seconds"])
                else:
                    self.errors += 1
            except httpx.HTTPError:
                self.errors += 1
            self.stopping.wait(self.every)


def job_time(uploader: Uploader) -> str:
    if not uploader.job_seconds:
        return ""
    return f", ingest {statistics.median(uploader.job_seconds):.2f} s each (median)"


def over_http(
    url: str, key: str, questions: list[str], clients: int, seconds: float
) -> tuple[list[float], int]:
    times: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work(offset: int) -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300
        ) as c:
            i = offset
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/ask", json={"question": questions[i % len(questions)]})
                    ok = r.status_code == 200 and "answer" in r.json()
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        times.append(time.perf_counter() - t0)
                    else:
                        errors[0] += 1
                i += clients

    pool = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return times, errors[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=Path, default=BBC)
    ap.add_argument("--work", type=Path, default=Path("/tmp/rag-bench-api"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--baseline-seconds", type=float, default=20.0)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument(
        "--upload-every", type=float, default=2.0, help="seconds between uploads (0: none)"
    )
    args = ap.parse_args()
    levels = [int(x) for x in args.clients.split(",")]
    scale_data.BBC = args.articles  # the questions are titles of the same articles
    index = args.work / "index"
    args.work.mkdir(parents=True, exist_ok=True)
    build_index(args.articles, index)
    keys = make_keys(args.work / "keys")
    questions = titles(400, seed=11)
    print(f"cpus {os.cpu_count()}, load {loadavg()}; {len(questions)} BBC titles as questions")

    system = System(Settings(index_dir=index))
    for q in questions[:5]:  # warm: model, snapshot, caches
        system.ask(q)
    rows: list[tuple[Any, ...]] = []
    env = {"RAG_API_RATE_LIMIT": "0", "RAG_LOCK_TIMEOUT": "60"}
    with RagServe("--index", str(index), "--keys", str(args.work / "keys"), env=env) as server:
        server.wait_ready()
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {keys['read']}"}
        ) as c:
            for q in questions[:5]:
                c.post("/v1/ask", json={"question": q}, timeout=300)
        for n in levels:
            # The baselines right before each level, so a change in the machine's load between
            # levels hits both sides alike (the server idles meanwhile).
            seq = in_process(system, questions, 1, args.baseline_seconds)
            base = percentiles(seq)
            rows.append(("in-process, 1 thread", seq, args.baseline_seconds, 0, "", base))
            same = base
            if n > 1:
                par = in_process(system, questions, n, args.baseline_seconds)
                same = percentiles(par)
                rows.append((f"in-process, {n} threads", par, args.baseline_seconds, 0, "", base))
            uploader = Uploader(server.url, keys["write"], args.upload_every, f"c{n}")
            if args.upload_every > 0:
                uploader.start()
            times, errors = over_http(server.url, keys["read"], questions, n, args.seconds)
            uploader.stopping.set()
            if args.upload_every > 0:
                uploader.join(timeout=300)
            extra = f"{uploader.done} uploads{job_time(uploader)}"
            rows.append(
                (f"**HTTP, {n} client(s)**", times, args.seconds, errors + uploader.errors, extra,
                 base, same)
            )  # fmt: skip
            print(f"  {n} client(s) done, load {loadavg()}", flush=True)

    print()
    print(
        "| run | answers | answers/s | p50 ms | p95 ms | x 1-thread in-process p50 "
        "| x same-threads in-process p50 | errors | uploads |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, times, seconds, errs, extra, base, *same in rows:
        p50, p95 = percentiles(times) if times else (float("nan"), float("nan"))
        versus = f"{p50 / same[0][0]:.2f}" if same else ""
        print(
            f"| {name} | {len(times)} | {len(times) / seconds:.1f} | {p50:.0f} | {p95:.0f} "
            f"| {p50 / base[0]:.2f} | {versus} | {errs} | {extra} |"
        )
    print(f"\nload after: {loadavg()}")


if __name__ == "__main__":
    main()
