"""The real page in headless Chromium: ask, click a citation chip, see the highlighted quote."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path

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
    assert (tmp_path / "chat.png").stat().st_size > 10_000
