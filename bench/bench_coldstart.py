"""Cold start: ``rag ask`` from invocation to answer, and the page from load to first cited answer.

    python bench/bench_coldstart.py --index INDEX_DIR [--runs 5] [--page-runs 3]

(1) ``python -m rag --index INDEX ask QUESTION`` as a subprocess: wall time from spawn to exit
    (imports, model load, index open, one question, printed answer). Median and range of --runs.
(2) The Streamlit page: for each of --page-runs, a fresh ``streamlit run app.py`` on a free
    loopback port (RAG_INDEX_DIR=INDEX), headless Chromium already running; times: server start
    to healthy, then from ``driver.get(url)`` to the chat input, to the first ``a.cite-chip`` of
    the answer to a typed question (the cold model and index load happen in this window), and a
    second question on the same page (warm). Uses scripts/screenshot.py's serve/chrome helpers.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scale_data import loadavg

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("rag_screenshot", ROOT / "scripts" / "screenshot.py")
assert _spec is not None and _spec.loader is not None
shot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shot)

QUESTIONS = (
    "How much did Time Warner's quarterly profits rise?",
    "Who won the Australian Open men's singles title?",
)


def summary(xs: list[float]) -> str:
    return (
        f"median {statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"
    )


def cli_runs(index: Path, runs: int) -> list[float]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = []
    for i in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "rag", "--index", str(index), "ask", QUESTIONS[i % 2]],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        out.append(time.perf_counter() - t0)
    return out


def _chat_box(driver, wait):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=stChatInputTextArea]"))
    wait.until(lambda d: box.is_enabled())
    return box


def _one_page_run(driver, url: str, times: dict[str, list[float]]) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 300, poll_frequency=0.05)
    t1 = time.perf_counter()
    driver.get(url)
    box = _chat_box(driver, wait)
    times["input"].append(time.perf_counter() - t1)
    box.send_keys(QUESTIONS[0] + Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "a.cite-chip"))
    times["first"].append(time.perf_counter() - t1)
    before = len(driver.find_elements(By.CSS_SELECTOR, "a.cite-chip"))
    box = _chat_box(driver, wait)
    t2 = time.perf_counter()
    box.send_keys(QUESTIONS[1] + Keys.ENTER)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "a.cite-chip")) > before)
    times["second"].append(time.perf_counter() - t2)


def page_runs(index: Path, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"server": [], "input": [], "first": [], "second": []}
    with tempfile.TemporaryDirectory() as tmp, shot.chrome(Path(tmp) / "chrome") as driver:
        for r in range(runs):
            t0 = time.perf_counter()
            with shot.serve(index, Path(tmp) / f"streamlit{r}.log") as url:
                times["server"].append(time.perf_counter() - t0)
                _one_page_run(driver, url, times)
            driver.get("about:blank")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--page-runs", type=int, default=3)
    args = ap.parse_args()
    print(f"index {args.index}; load {loadavg()}")
    print(f"rag ask (spawn to exit):            {summary(cli_runs(args.index, args.runs))}")
    print(f"  load {loadavg()}", flush=True)
    if args.page_runs:
        t = page_runs(args.index, args.page_runs)
        print(f"streamlit start to healthy:         {summary(t['server'])}")
        print(f"page load to chat input:            {summary(t['input'])}")
        print(f"page load to first citation chip:   {summary(t['first'])}")
        print(f"second question to its chip (warm): {summary(t['second'])}")
        print(f"  load {loadavg()}")


if __name__ == "__main__":
    main()
