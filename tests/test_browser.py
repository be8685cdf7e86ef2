"""The real page in headless Chromium: ask, click a citation chip, see the highlighted quote."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from rag.system import System

pytestmark = pytest.mark.browser

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "screenshot.py"
_spec = importlib.util.spec_from_file_location("rag_screenshot", SCRIPT)
assert _spec is not None and _spec.loader is not None
shot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shot)


@pytest.fixture(scope="module")
def browser_ready(browser: None, processes: None) -> None:
    if not (Path(shot.CHROMIUM).exists() and Path(shot.CHROMEDRIVER).exists()):
        if os.environ.get("CI") == "true":  # CI installs them: missing there is a failure
            pytest.fail(
                "Chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
            )
        pytest.skip("Chromium or chromedriver is not installed")
    pytest.importorskip("selenium")


def test_chip_opens_the_source_card_at_the_quote(
    browser_ready: None, built_index: System, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    index_dir = tmp_path / "index"  # a copy: the server process must not share the session index
    shutil.copytree(built_index.settings.index_dir, index_dir)
    with (
        shot.serve(index_dir, tmp_path / "streamlit.log") as url,
        shot.chrome(tmp_path / "chrome") as driver,
    ):
        chip = shot.ask(driver, url, "Who led the repair crew of the Harbor Bridge?")
        target = chip.get_attribute("href").split("#", 1)[1]
        # The source cards are the answer's next element: they can reach the page just after it.
        mark = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, target))
        assert mark.tag_name == "mark"
        assert not mark.is_displayed()  # the card starts folded
        chip.click()
        WebDriverWait(driver, 10).until(lambda _: mark.is_displayed())
        card = mark.find_element(By.XPATH, "ancestor::details[contains(@class,'source-card')]")
        assert card.get_attribute("open") is not None
        assert mark.text.strip()
        # Every chip opens a mark holding exactly its citation's quote, never a neighbour.
        check_chips(driver, built_index, shot.QUESTION, 1)
        # No article markup got through: the page has no element the articles could have injected.
        assert not driver.find_elements(By.CSS_SELECTOR, ".source-card script, .answer script")

        # "show whole article" opens the full text scrolled to the same quote.
        card.find_element(By.CSS_SELECTOR, "a.whole-link").click()
        full = driver.find_element(By.ID, f"{target}-full")
        WebDriverWait(driver, 10).until(lambda _: full.is_displayed())
        assert full.text == mark.text
        in_view = (
            "const m = arguments[0], box = m.closest('.article-text').getBoundingClientRect(),"
            " r = m.getBoundingClientRect(); return r.top >= box.top - 1 && r.top < box.bottom;"
        )
        assert driver.execute_script(in_view, full)
        time.sleep(0.3)
        driver.save_screenshot(str(tmp_path / "chat.png"))

        # Two quotes of one article from different passages (the hit's, and the paragraph that
        # names the person in full): each chip still opens exactly its own quote.
        box = driver.find_element(By.CSS_SELECTOR, "[data-testid=stChatInputTextArea]")
        box.send_keys(TWO_PASSAGES + "\n")
        WebDriverWait(driver, 120).until(
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, ".answer")) == 2
                and d.find_elements(By.CSS_SELECTOR, ".answer")[1].find_elements(
                    By.CSS_SELECTOR, "a.cite-chip"
                )
            )
        )
        time.sleep(1.0)  # the cards come just after the answer
        check_chips(driver, built_index, TWO_PASSAGES, 2)
    assert (tmp_path / "chat.png").stat().st_size > 10_000


TWO_PASSAGES = "Who chairs the Meridian Fruit Cooperative?"


def check_chips(driver: Any, system: System, question: str, nth: int) -> None:
    """Every chip of the ``nth`` answer opens a mark whose text is exactly its quote."""
    from selenium.webdriver.common.by import By

    expected = system.ask(question)
    if nth > 1:
        passages = {(c.article_id, c.passage_start, len(c.passage)) for c in expected.citations}
        assert len(passages) >= 2 and len({c.article_id for c in expected.citations}) == 1
    quotes = {c.n: " ".join(c.quote.split()) for c in expected.citations}
    answer = driver.find_elements(By.CSS_SELECTOR, ".answer")[nth - 1]
    chips = answer.find_elements(By.CSS_SELECTOR, "a.cite-chip")
    assert {int(c.text) for c in chips} == set(quotes)
    for c in chips:
        opened = driver.find_element(By.ID, c.get_attribute("href").split("#", 1)[1])
        assert opened.tag_name == "mark"
        assert " ".join(opened.get_attribute("textContent").split()) == quotes[int(c.text)]


# The effective colours of an element: its text over the backgrounds of it and its ancestors
# composited from the page down (translucent tints included), with their opacity.
CONTRAST_JS = """
const el = arguments[0];
const rgba = s => { const m = s.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
const chain = []; for (let e = el; e; e = e.parentElement) chain.push(e);
let bg = [255, 255, 255], opacity = 1;
for (const e of chain.reverse()) {
  const style = getComputedStyle(e), b = rgba(style.backgroundColor);
  bg = bg.map((v, i) => v * (1 - b[3]) + b[i] * b[3]);
  opacity *= Number(style.opacity);
}
const fg = rgba(getComputedStyle(el).color), a = fg[3] * opacity;
const text = bg.map((v, i) => v * (1 - a) + fg[i] * a);
const lum = c => c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
  .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
const [l1, l2] = [lum(text), lum(bg)];
return [(Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05), lum(bg)];
"""
READ = [
    ".answer",
    ".answer a.cite-chip",
    "details.source-card[open] .title",
    "details.source-card[open] .src",
    "details.source-card[open] .score",
    "details.source-card[open] .card-n",
    "details.source-card[open] .passage",
    "details.source-card[open] mark.quote",
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_colours_follow_the_theme(
    browser_ready: None, built_index: System, tmp_path: Path, scheme: str
) -> None:
    """With the default "System" theme, a dark OS gets dark cards: every piece of text the answer
    and an open source card show keeps WCAG AA contrast (4.5:1) against what is behind it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    index_dir = tmp_path / "index"
    shutil.copytree(built_index.settings.index_dir, index_dir)
    with (
        shot.serve(index_dir, tmp_path / "streamlit.log") as url,
        shot.chrome(tmp_path / "chrome", color_scheme=scheme) as driver,
    ):
        chip = shot.ask(driver, url, "Who led the repair crew of the Harbor Bridge?")
        mark = WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.ID, chip.get_attribute("href").split("#", 1)[1])
        )
        chip.click()
        WebDriverWait(driver, 10).until(lambda _: mark.is_displayed())
        time.sleep(0.3)
        driver.save_screenshot(str(tmp_path / f"chat-{scheme}.png"))
        page_bg = driver.execute_script(
            CONTRAST_JS, driver.find_element(By.CSS_SELECTOR, ".answer")
        )[1]
        assert (page_bg < 0.2) if scheme == "dark" else (page_bg > 0.8)  # the theme took effect
        for css in READ:
            for el in driver.find_elements(By.CSS_SELECTOR, css)[:3]:
                ratio, _ = driver.execute_script(CONTRAST_JS, el)
                assert ratio >= 4.5, f"{css} in the {scheme} theme: contrast {ratio:.2f}"
    assert (tmp_path / f"chat-{scheme}.png").stat().st_size > 10_000


def test_polish_toolbar_focus_and_phone_modes(
    browser_ready: None, built_index: System, tmp_path: Path
) -> None:
    """No developer menu or Deploy button, the chat box focused on load, and at phone width the
    modes reachable in the page without opening the sidebar."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    index_dir = tmp_path / "index"
    shutil.copytree(built_index.settings.index_dir, index_dir)
    box_css = "[data-testid=stChatInputTextArea]"
    with shot.serve(index_dir, tmp_path / "streamlit.log") as url:
        with shot.chrome(tmp_path / "chrome") as driver:
            driver.get(url)
            wait = WebDriverWait(driver, 120)
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, box_css).is_enabled())
            wait.until(
                lambda d: (
                    d.execute_script(
                        "return document.activeElement && "
                        "document.activeElement.getAttribute('data-testid')"
                    )
                    == "stChatInputTextArea"
                )
            )
            assert not [e for e in driver.find_elements(By.XPATH, "//*[text()='Deploy']")
                        if e.is_displayed()]  # fmt: skip
            assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid=stMainMenu]")
            phone = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".st-key-phone-modes"))
            assert not phone.is_displayed()  # the sidebar has the modes on a wide screen
        with shot.chrome(tmp_path / "phone", width=390, height=844) as driver:
            driver.get(url)
            wait = WebDriverWait(driver, 120)
            phone = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".st-key-phone-modes"))
            wait.until(lambda _: phone.is_displayed())
            sidebar = driver.find_element(By.CSS_SELECTOR, "[data-testid=stSidebar]")
            folded = (
                "const r = arguments[0].getBoundingClientRect();"
                " return r.right <= 1 || r.width === 0 || r.left >= window.innerWidth;"
            )
            assert driver.execute_script(folded, sidebar)  # the sidebar starts folded away
            # The container can show before its radio options are drawn: wait for the option.
            option = wait.until(
                lambda d: d.find_element(
                    By.XPATH,
                    "//*[contains(@class, 'st-key-phone-modes')]"
                    "//label[.//p[normalize-space()='Search']]",
                )
            )
            wait.until(lambda _: option.is_displayed())
            option.click()
            search = wait.until(
                lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Search the articles']")
            )
            assert search.is_displayed()
            assert driver.execute_script(folded, sidebar)  # reached without opening it
            driver.save_screenshot(str(tmp_path / "phone.png"))


def test_a_streaming_llm_answer_can_be_stopped(
    browser_ready: None, built_index: System, tmp_path: Path
) -> None:
    from openai_server import OpenAIServer, Slow
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    index_dir = tmp_path / "index"
    shutil.copytree(built_index.settings.index_dir, index_dir)
    long = "Chief engineer Maria Lindqvist led the repair crew [1]. " * 40
    with (
        OpenAIServer() as server,
        shot.serve(
            index_dir,
            tmp_path / "streamlit.log",
            RAG_LLM="openai:scripted-model",
            RAG_LLM_BASE_URL=server.base_url,
        ) as url,
        shot.chrome(tmp_path / "chrome") as driver,
    ):
        server.enqueue(Slow(long, chunk_delay=0.1))  # about a minute of tokens
        driver.get(url)
        wait = WebDriverWait(driver, 120)
        box = wait.until(
            lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=stChatInputTextArea]")
        )
        wait.until(lambda _: box.is_enabled())
        box.send_keys(shot.QUESTION)
        box.send_keys(Keys.ENTER)
        stop = wait.until(lambda d: d.find_element(By.XPATH, "//button[.//p[contains(., 'Stop')]]"))
        wait.until(lambda d: "▌" in d.find_element(By.CSS_SELECTOR, ".answer").text)  # streaming
        started = time.monotonic()
        stop.click()
        wait.until(lambda d: "You stopped this answer" in d.page_source)
        assert time.monotonic() - started < 20  # long before the stream would have ended
        assert not driver.find_elements(By.CSS_SELECTOR, "a.cite-chip")
        assert not driver.find_elements(By.XPATH, "//button[.//p[contains(., 'Stop')]]")
        box = driver.find_element(By.CSS_SELECTOR, "[data-testid=stChatInputTextArea]")
        assert box.is_enabled()
