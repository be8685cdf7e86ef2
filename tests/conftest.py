"""Shared fixtures: a readable fake embedder for unit tests, the real bundled model and fixture articles.

Test tiers: a test is slow when it needs one of the fixtures in ``SLOW_FIXTURES`` (directly, through
another fixture, or with ``pytest.mark.usefixtures``): ``real_model`` (loads the bundled embedding
model), ``processes`` (spawns or kills processes) or ``browser`` (drives Chromium). The mark is
added at collection from those fixtures, and a fast test that loads the model or starts a process
anyway fails and says which fixture to request, so the tiers cannot drift.
``python -m pytest -m "not slow"`` is the development loop; CI runs everything.
"""

from __future__ import annotations

import hashlib
import multiprocessing.process
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hypothesis
import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus"

# Property tests run the same examples every time, so a suite that passed passes again (CI
# included); HYPOTHESIS_PROFILE=explore draws new ones each run to hunt for fresh failures.
hypothesis.settings.register_profile("repeatable", derandomize=True)
hypothesis.settings.register_profile("explore", derandomize=False)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


SLOW_FIXTURES = frozenset({"real_model", "processes", "browser"})
_SLOW_PROGRAMS = frozenset({"rag", "streamlit", "chromium", "chromedriver", "ray", "uvicorn"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def real_model() -> None:
    """Needed by every test that loads the real embedding model: puts it in the slow tier."""


@pytest.fixture(scope="session")
def processes() -> None:
    """Needed by every test that spawns or kills processes (the CLI, writers, servers): slow tier."""


@pytest.fixture(scope="session")
def browser() -> None:
    """Needed by every test that drives a real browser: slow tier."""


@pytest.fixture(autouse=True)
def _tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the fast tier, loading the real model or starting a process fails the test at once."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(what: str, fixture: str) -> None:
        pytest.fail(
            f"this test {what}: request the {fixture!r} fixture (it puts the test in the "
            "slow tier)",
            pytrace=False,
        )

    import embeddings.local

    monkeypatch.setattr(
        embeddings.local,
        "_load_model",
        lambda *a, **k: refuse("loads the real model", "real_model"),
    )
    real_popen = subprocess.Popen.__init__

    def popen(self: subprocess.Popen[bytes], args: Any, *a: Any, **k: Any) -> None:
        argv = [str(x) for x in args] if isinstance(args, (list, tuple)) else str(args).split()
        program = Path(argv[0]).name if argv else ""
        # Python children (the CLI, writers, servers) and browsers are slow; tiny system tools
        # a library runs (``uname -p``) and the linter are not.
        if (program.startswith("python") or program in _SLOW_PROGRAMS) and "ruff" not in argv:
            refuse(f"starts a process ({' '.join(argv)[:80]})", "processes")
        real_popen(self, args, *a, **k)

    monkeypatch.setattr(subprocess.Popen, "__init__", popen)
    monkeypatch.setattr(
        multiprocessing.process.BaseProcess,
        "start",
        lambda self: refuse("starts a process", "processes"),
    )


@pytest.fixture(autouse=True, scope="session")
def _offline() -> None:
    """Tests never reach a model hub: the bundled model loads from its package folder."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


class HashEmbedder:
    """A bag-of-words fake: each lowercased word adds a fixed pseudo-random vector (seeded by its hash).

    Texts that share words get similar vectors, so retrieval logic can be tested without a model.
    """

    def __init__(self, dimension: int = 64, model_id: str = "hash-64") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.calls: list[int] = []  # batch sizes seen, to check what was (not) embedded

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self._dimension)

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i] += self._word(w)
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
        if progress and len(texts):
            progress(len(texts))
        return out


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def real_embedder(real_model: None):  # type: ignore[no-untyped-def]
    from rag.embedder import CheckedEmbeddings
    from rag.settings import Settings

    return CheckedEmbeddings(Settings())


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A fresh copy of the fixture articles (tests may edit, rename and delete them)."""
    dest = tmp_path / "articles"
    shutil.copytree(CORPUS, dest)
    return dest


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory, real_embedder):  # type: ignore[no-untyped-def]
    """The fixture corpus ingested once with the real model into a session-wide index."""
    from rag.settings import Settings
    from rag.system import System

    root = tmp_path_factory.mktemp("built")
    articles = root / "articles"
    shutil.copytree(CORPUS, articles)
    settings = Settings(index_dir=root / "index")
    system = System(settings, embedder=real_embedder)
    system.ingest([articles])
    return system


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))
