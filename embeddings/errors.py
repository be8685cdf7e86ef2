"""The one error this package raises on its own (bad arguments raise ``ValueError``)."""

from __future__ import annotations


class EmbeddingModelError(RuntimeError):
    """The embedding model is missing or cannot be loaded; the message says what to do."""
