"""What the system needs of an embedding model, and the bundled model behind that interface.

``Embedder`` is the small protocol the ingest pipeline, the retriever and the answerers use (tests
pass a hash-seeded fake); ``CheckedEmbeddings`` is the real model from ``embeddings/`` with its
load errors turned into :class:`rag.errors.ModelUnavailable`. The model itself loads on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from embeddings import EmbeddingModelError, LocalEmbeddings
from rag.errors import ModelUnavailable
from rag.settings import Settings

__all__ = ["CheckedEmbeddings", "Embedder"]


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...
    @property
    def dimension(self) -> int: ...
    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


class CheckedEmbeddings:
    """The embedding model, with its load errors turned into ModelUnavailable."""

    def __init__(self, settings: Settings) -> None:
        try:
            self._inner = LocalEmbeddings(
                settings.model, settings.embed_backend, settings.embed_batch_size
            )
        except (ValueError, EmbeddingModelError) as e:
            raise ModelUnavailable(str(e)) from e

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except EmbeddingModelError as e:
            raise ModelUnavailable(str(e)) from e

    @property
    def model_id(self) -> str:
        return str(self._call(lambda: self._inner.model_id))

    @property
    def dimension(self) -> int:
        return int(self._call(lambda: self._inner.dimension))

    @property
    def backend(self) -> str:
        return str(self._call(lambda: self._inner.backend))

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        return np.asarray(self._call(lambda: self._inner.embed(texts, progress=progress)))

    @property
    def langchain(self) -> LocalEmbeddings:
        return self._inner
