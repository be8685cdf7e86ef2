"""Build an index of the fixture articles, open the page in headless Chromium, ask a question, click a
citation chip and save a screenshot (default: docs/screenshot.png, shown in the README).

    python scripts/screenshot.py [--out docs/screenshot.png] [--all]

``--all`` also saves search and library screenshots next to ``--out`` (for checking the page by eye).
The helpers here (``serve``, ``chrome``, ``ask``) are shared with tests/test_browser.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
QUESTION = "Who led the repair crew of the Harbor Bridge?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    index_dir: Path, log_path: Path, timeout: float = 120.0, **settings: str
) -> Iterator[str]:
    """``streamlit run app.py`` on a free local port with RAG_INDEX_DIR (and any other ``RAG_*``
    ``settings``) set; yields the page URL and always stops the server."""
    port = free_port()
    env = dict(
        os.environ,
        RAG_INDEX_DIR=str(index_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        **settings,
    )
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--server.runOnSave", "false",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log_path}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"streamlit not healthy after {timeout:.0f} s; see {log_path}"
                    )
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@contextlib.contextmanager
def chrome(
    user_data_dir: Path, width: int = 1400, height: int = 1000, color_scheme: str | None = None
) -> Iterator[Any]:
    """Headless Chromium through chromedriver; always quits. ``color_scheme`` ("light" or "dark")
    is what the page sees as the system's preference (the page's default theme follows it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ]:
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={user_data_dir}")
    opts.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    if color_scheme is not None:
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": color_scheme}]},
        )
    try:
        yield driver
    finally:
        driver.quit()


def ask(driver: Any, url: str, question: str = QUESTION, timeout: float = 180.0) -> Any:
    """Open the page, send a question in the chat input and return the first citation chip."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, timeout)
    box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=stChatInputTextArea]"))
    wait.until(lambda d: box.is_enabled())
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    return wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "a.cite-chip"))


def switch_mode(driver: Any, mode: str, ready_css: str, timeout: float = 60.0) -> None:
    """Pick a sidebar mode (Chat / Search / Library) and wait for an element of that mode."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    label = driver.find_element(
        By.XPATH, f"//section[@data-testid='stSidebar']//label[.//p[normalize-space()='{mode}']]"
    )
    label.click()
    WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.CSS_SELECTOR, ready_css))


def build_index(root: Path) -> Path:
    """The fixture articles, indexed with the bundled model under ``root``; returns the index dir."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rag.settings import Settings
    from rag.system import System

    articles = root / "articles"
    shutil.copytree(CORPUS, articles)
    index_dir = root / "index"
    System(Settings(index_dir=index_dir)).ingest([articles])
    return index_dir


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    p.add_argument("--all", action="store_true", help="also save search and library screenshots")
    args = p.parse_args()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory(prefix="rag-shot-") as tmp:
        tmp_path = Path(tmp)
        index_dir = build_index(tmp_path)
        with serve(index_dir, tmp_path / "streamlit.log") as url, chrome(tmp_path / "chrome") as d:
            chip = ask(d, url)
            target = chip.get_attribute("href").split("#", 1)[1]
            # The source cards come right after the answer and may reach the page after its chips.
            mark = WebDriverWait(d, 30).until(lambda d: d.find_element(By.ID, target))
            chip.click()
            WebDriverWait(d, 10).until(lambda _: mark.is_displayed())
            d.execute_script("arguments[0].scrollIntoView({block: 'center'});", mark)
            time.sleep(0.5)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            d.save_screenshot(str(args.out))
            print(f"wrote {args.out}")
            if args.all:
                whole = d.find_element(By.CSS_SELECTOR, "details.source-card[open] a.whole-link")
                whole.click()
                time.sleep(0.5)
                d.save_screenshot(str(args.out.with_name(args.out.stem + "-whole.png")))
                switch_mode(d, "Search", "input[aria-label='Search the articles']")
                box = d.find_element(By.CSS_SELECTOR, "input[aria-label='Search the articles']")
                box.send_keys("repair crew cables")
                box.send_keys(Keys.ENTER)
                WebDriverWait(d, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, ".hit-card"))
                time.sleep(0.5)
                d.save_screenshot(str(args.out.with_name(args.out.stem + "-search.png")))
                switch_mode(d, "Library", "[data-testid=stFileUploader]")
                time.sleep(1.0)
                d.save_screenshot(str(args.out.with_name(args.out.stem + "-library.png")))
                print("wrote the search, library and whole-article screenshots too")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
