"""The page's upload folder: uploaded files are copied under the index folder, then indexed.

The client chooses an upload's name, so a file is only ever written where :func:`safe_upload_name`
puts it inside the folder. Deleting an article deletes its uploaded copy too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def safe_upload_name(name: str) -> str:
    """A plain file name for an upload: no folders, no leading dots, only safe characters.

    The client chooses the name, so ``../../etc/x``, ``/abs/x``, ``..\\x`` and ``C:\\x`` all become ``x``;
    the extension is kept (it picks the loader). Empty or all-dots names become ``upload``.
    """
    base = (name or "").replace("\\", "/").split("/")[-1]
    base = re.sub(r"[^\w.\- ]", "_", base, flags=re.ASCII)
    base = base.strip(" .")
    if len(base) > 120:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 120 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else base[:120]
    return base or "upload"


def upload_dir(index_dir: Path) -> Path:
    """Where uploads are kept: ``uploads/`` inside the index folder."""
    return (index_dir / "uploads").resolve()


def save_uploads(files: list[Any], folder: Path) -> tuple[list[Path], list[str]]:
    """Write uploads under ``folder`` with sanitised names; never anywhere the client chose."""
    folder.mkdir(parents=True, exist_ok=True)
    saved, refused = [], []
    for f in files:
        target = (folder / safe_upload_name(f.name)).resolve()
        if target.parent != folder:  # defence in depth: the name is already a bare file name
            refused.append(f.name)
            continue
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(f.getvalue())
        tmp.replace(target)
        saved.append(target)
    return saved, refused


def remove_uploads(paths: Iterable[str], folder: Path) -> None:
    """Delete the uploaded copies among ``paths``, so they cannot come back on the next upload run."""
    for p in paths:
        path = Path(p)
        if path.parent.resolve() == folder and path.is_file():
            path.unlink()
