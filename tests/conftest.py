"""Shared fixtures: a readable fake embedder for unit tests, the real bundled model and fixture articles."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

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
def real_embedder():  # type: ignore[no-untyped-def]
    from rag.settings import Settings
    from rag.system import _CheckedEmbeddings

    return _CheckedEmbeddings(Settings())


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
