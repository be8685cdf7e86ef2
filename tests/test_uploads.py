"""Upload names: whatever name the client sends, the file lands as a plain name in the folder."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ui.uploads import safe_upload_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.txt", "report.txt"),
        ("../../etc/x.txt", "x.txt"),
        ("/abs/path.txt", "path.txt"),
        ("..\\x.txt", "x.txt"),
        ("C:\\Users\\me\\notes.md", "notes.md"),
        ("", "upload"),
        ("..", "upload"),
        ("...", "upload"),
        (".bashrc", "bashrc"),
        ("a/b/", "upload"),
        ("my file (1).pdf", "my file _1_.pdf"),
        ("x\0y.txt", "x_y.txt"),
    ],
)
def test_safe_upload_name(name: str, expected: str) -> None:
    assert safe_upload_name(name) == expected


@given(st.text())
def test_safe_upload_name_is_always_a_plain_file_name(name: str) -> None:
    out = safe_upload_name(name)
    assert out and "/" not in out and "\\" not in out and not out.startswith(".")
    assert len(out) <= 120 and re.fullmatch(r"[A-Za-z0-9_.\- ]+", out)


def test_long_upload_name_keeps_its_extension() -> None:
    out = safe_upload_name("a" * 300 + ".docx")
    assert len(out) == 120 and out.endswith(".docx")
