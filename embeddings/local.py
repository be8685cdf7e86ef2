"""LocalEmbeddings: a sentence-transformers model on the CPU behind LangChain's Embeddings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from embeddings.backends import (
    BACKENDS,
    OPENVINO_BACKENDS,
    precision,
    resolve_backend,
    torch_dtype,
)
from embeddings.errors import EmbeddingModelError
from embeddings.locate import model_id_for, resolve_model_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class _Located:
    folder: Path
    model_id: str


@dataclass(frozen=True)
class _Loaded:
    run: Callable[[list[str]], np.ndarray]  # one batch of texts -> vectors (not yet renormalised)
    dimension: int
    # Many texts -> vectors in input order, batching them itself (texts, max batch, progress).
    bulk: Callable[[list[str], int, Callable[[int], None] | None], np.ndarray] | None = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _load_model(folder: Path, dtype: str = "float32") -> SentenceTransformer:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingModelError(
            "sentence-transformers is not installed: run 'pip install sentence-transformers'"
        ) from exc
    try:
        # A local folder plus local_files_only: transformers never asks the hub for anything.
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    except Exception as exc:
        raise EmbeddingModelError(
            f"could not load the embedding model in {folder} ({_one_line(exc)}): check that it is "
            "a complete sentence-transformers model folder, or leave the model empty for the "
            "bundled all-MiniLM-L6-v2"
        ) from exc
    model.eval()
    if dtype != "float32":
        import torch

        model.to(getattr(torch, dtype))
    return model


class LocalEmbeddings(Embeddings):
    """Text -> L2-normalised float32 vectors with a local model; nothing is ever downloaded.

    Construction only checks arguments; the model is loaded on first use, once, even when
    several threads ask at the same time.
    """

    def __init__(
        self,
        model: str = "",
        backend: str = "auto",
        batch_size: int = 64,
        cache_dir: Path | str | None = None,
    ) -> None:
        """``cache_dir``: where the OpenVINO backends keep converted models (default
        ~/.cache/rag-articles/openvino); the PyTorch backends never write anything."""
        if not isinstance(model, str):
            raise ValueError(f"model must be a string (folder path or cached name), got {model!r}")
        if model and not model.strip():
            raise ValueError("model must not be blank; use '' for the bundled default")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._model_arg = model.strip()
        self._backend_arg = backend
        self._batch_size = batch_size
        self._cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self._lock = threading.Lock()
        self._located: _Located | None = None
        self._loaded: _Loaded | None = None

    def __repr__(self) -> str:
        return (
            f"LocalEmbeddings(model={self._model_arg!r}, backend={self._backend_arg!r}, "
            f"batch_size={self._batch_size})"
        )

    # --- loading ---------------------------------------------------------------------------
    def _locate(self) -> _Located:
        if self._located is None:
            with self._lock:
                if self._located is None:
                    folder, name = resolve_model_dir(self._model_arg)
                    self._located = _Located(folder, model_id_for(folder, name))
        return self._located

    def _load(self) -> _Loaded:
        if self._loaded is None:
            located = self._locate()
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._load_backend(located)
        return self._loaded

    def _load_backend(self, located: _Located) -> _Loaded:
        backend = self.backend
        if backend in OPENVINO_BACKENDS:
            from embeddings.ov_backend import OpenVINORunner

            runner = OpenVINORunner(
                located.folder,
                located.model_id,
                "bf16" if backend == "openvino-bf16" else "f32",
                self._cache_dir,
            )
            return _Loaded(runner, runner.dimension, runner.embed_many)
        model = _load_model(located.folder, torch_dtype(backend))
        return _Loaded(lambda batch: self._forward(model, batch), self._dimension_of(model))

    def _dimension_of(self, model: SentenceTransformer) -> int:
        # Renamed in sentence-transformers 5: prefer the new name, fall back to the old one.
        getter = getattr(model, "get_embedding_dimension", None)
        if getter is None:
            getter = model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:
            dim = int(self._forward(model, ["dimension probe"]).shape[1])
        return int(dim)

    # --- properties ------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """Stable id of the model (name + hash of its files); equal wherever it is installed."""
        return self._locate().model_id

    @property
    def model_path(self) -> Path:
        """Folder the model is loaded from."""
        return self._locate().folder

    @property
    def dimension(self) -> int:
        """Length of each vector (loads the model)."""
        return self._load().dimension

    @property
    def backend(self) -> str:
        """Backend in use: "fp32", "bf16", "openvino-fp32" or "openvino-bf16"."""
        return resolve_backend(self._backend_arg)

    @property
    def batch_size(self) -> int:
        """Texts per forward pass."""
        return self._batch_size

    # --- embedding -------------------------------------------------------------------------
    def _forward(self, model: SentenceTransformer, batch: list[str]) -> np.ndarray:
        # sentence-transformers 5 renamed tokenize() to preprocess(); support both.
        prepare: Callable[[list[str]], dict[str, Any]] = getattr(model, "preprocess", None) or (
            model.tokenize
        )
        features = prepare(batch)
        with precision(self.backend):
            out = model(features)["sentence_embedding"]
        return out.float().numpy().astype(np.float32, copy=False)

    @staticmethod
    def _unit(vectors: np.ndarray) -> np.ndarray:
        # Renormalise in fp32: the model's own Normalize may have run in bf16 (if at all).
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, np.float32(1e-12))

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape (len(texts), dimension), rows unit-norm.

        Texts are batched longest first (less padding per batch; the OpenVINO backends sort by
        token count and keep every stream busy) and returned in input order;
        ``progress`` gets the number of texts finished after each batch.
        """
        if isinstance(texts, str):
            raise ValueError("texts must be a sequence of strings, not a single string")
        items = list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise ValueError(f"texts[{i}] must be a string, got {type(text).__name__}")
        loaded = self._load()
        if loaded.bulk is not None:
            return self._unit(loaded.bulk(items, self._batch_size, progress))
        out = np.empty((len(items), loaded.dimension), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: len(items[i]), reverse=True)
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            out[idx] = self._unit(loaded.run([items[i] for i in idx]))
            if progress is not None:
                progress(len(idx))
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: one list of floats per text."""
        return self.embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: the vector of one text."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        return self._unit(self._load().run([text]))[0].tolist()
