"""The house checks run with the tests: ruff on everything, mypy on the packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_ruff_is_clean() -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "rag",
            "embeddings",
            "tests",
            "bench",
            "app.py",
            "ui",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.usefixtures("processes")
def test_mypy_is_clean() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stdout + r.stderr
