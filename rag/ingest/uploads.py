"""The upload folder: files sent by the page or the API are copied under the index folder, then indexed.

The client chooses an upload's name, so a file is only ever written where :func:`safe_upload_name`
puts it inside the folder. Deleting an article deletes its uploaded copy too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = ["remove_uploads", "safe_upload_name", "save_upload", "upload_dir"]

_COPY_BYTES = 1 << 20


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
    return (Path(index_dir) / "uploads").resolve()


def save_upload(folder: Path, name: str, data: bytes | BinaryIO) -> Path:
    """Write one upload under ``folder`` with a sanitised name (never anywhere the client chose),
    atomically: a reader sees the old file or the whole new one. Returns where it went."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / safe_upload_name(name)).resolve()
    if target.parent != folder:  # defence in depth: the name is already a bare file name
        raise ValueError(f"refused the upload name {name!r}")
    tmp = target.with_name(f".{target.name}.part")
    with open(tmp, "wb") as out:
        if isinstance(data, bytes | bytearray):
            out.write(data)
        else:
            while block := data.read(_COPY_BYTES):
                out.write(block)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(target)
    return target


def remove_uploads(paths: Iterable[str], folder: Path) -> None:
    """Delete the uploaded copies among ``paths``, so they cannot come back on the next upload run.

    A record of a JSON collection (source ``file.json#id``) takes its file with it only when the
    file holds that one record (as the API's text uploads do); a collection's other records stay.
    """
    folder = folder.resolve()
    for p in paths:
        file, hash_, _ = p.partition("#")
        path = Path(file)
        if path.parent.resolve() != folder or not path.is_file():
            continue
        if hash_ and not _one_record(path):
            continue
        path.unlink()


def _one_record(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".jsonl":
            return sum(1 for line in text.splitlines() if line.strip()) == 1
        value = json.loads(text)
    except (OSError, ValueError):
        return False
    if isinstance(value, dict):  # one record, unless it wraps a list of them ({"articles": [...]})
        return not any(isinstance(v, list) and len(v) > 1 for v in value.values())
    return isinstance(value, list) and len(value) == 1
