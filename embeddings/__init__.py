"""Text -> vectors with a local sentence-transformers model (knows nothing of retrieval)."""

from embeddings.backends import cpu_supports_bf16
from embeddings.errors import EmbeddingModelError
from embeddings.local import LocalEmbeddings
from embeddings.locate import default_model_path

__all__ = [
    "EmbeddingModelError",
    "LocalEmbeddings",
    "cpu_supports_bf16",
    "default_model_path",
]
