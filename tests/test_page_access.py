"""The page's access control: bound to localhost as shipped; exposed, its write actions need the
admin token (the page driven headlessly with AppTest, over a copy of the real-model index)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.system import System
from tests.test_app import page

pytestmark = pytest.mark.usefixtures("real_model")  # the page loads its own model

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_binds_the_page_to_this_machine() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "localhost"


def library(at: AppTest) -> AppTest:
    at.radio(key="mode").set_value("Library").run()
    assert not at.exception
    return at


def all_rows(at: AppTest) -> int:
    """Rows of the library's table of articles."""
    return "".join(m.value for m in at.markdown).count('<tr class="article-row">')


def writes_shown(at: AppTest) -> bool:
    uploaders = len(at.get("file_uploader"))
    deletes = [b for b in at.button if b.key == "delete"]
    folder = [t for t in at.text_input if t.key == "folder"]
    assert (uploaders > 0) == bool(deletes) == bool(folder)  # all three or none
    return bool(deletes)


@pytest.fixture
def index_copy(tmp_path: Path, built_index: System) -> Path:
    dest = tmp_path / "index"
    shutil.copytree(built_index.settings.index_dir, dest)
    return dest


def test_local_page_needs_no_token(monkeypatch: pytest.MonkeyPatch, index_copy: Path) -> None:
    at = library(page(monkeypatch, index_copy))
    assert writes_shown(at)
    assert not [t for t in at.text_input if t.key == "admin_token"]


def test_exposed_page_without_a_token_is_read_only(
    monkeypatch: pytest.MonkeyPatch, index_copy: Path
) -> None:
    at = library(page(monkeypatch, index_copy, RAG_PAGE_EXPOSED="1"))
    assert not writes_shown(at)
    assert any("no admin token is set" in i.value for i in at.info)
    assert all_rows(at) == 5  # reading stays open


def test_exposed_page_asks_for_the_admin_token(
    monkeypatch: pytest.MonkeyPatch, index_copy: Path
) -> None:
    at = library(
        page(monkeypatch, index_copy, RAG_PAGE_EXPOSED="1", RAG_PAGE_ADMIN_TOKEN="s3cret-token")
    )
    assert not writes_shown(at)
    at.text_input(key="admin_token").set_value("guess").run()
    assert not writes_shown(at) and any("not the admin token" in e.value for e in at.error)

    at.text_input(key="admin_token").set_value("s3cret-token").run()
    assert writes_shown(at) and not at.error
    at.radio(key="mode").set_value("Search").run()
    library(at)
    assert writes_shown(at)  # the session stays unlocked across modes

    orchard = next(i for i in at.multiselect(key="to_delete").options if "frost" in i.lower())
    at.multiselect(key="to_delete").select(orchard).run()
    at.button(key="delete").click().run()
    at.button(key="delete_confirmed").click().run()
    assert any("Deleted 1 article" in s.value for s in at.success)
    assert all_rows(at) == 4
