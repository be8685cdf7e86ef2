"""The page's upload folder: the page's files go where the API's go (``rag.ingest.uploads``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.ingest.uploads import remove_uploads, safe_upload_name, save_upload, upload_dir

__all__ = ["remove_uploads", "safe_upload_name", "save_uploads", "upload_dir"]


def save_uploads(files: list[Any], folder: Path) -> tuple[list[Path], list[str]]:
    """Write the page's uploaded files under ``folder`` with sanitised names."""
    saved, refused = [], []
    for f in files:
        try:
            saved.append(save_upload(folder, f.name, f.getvalue()))
        except ValueError:
            refused.append(f.name)
    return saved, refused
