"""Files to ingest: finding them under the given paths, and loading and cleaning them on a
background thread ahead of the ingest loop."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from rag.errors import InputError, RagError, SkipFile
from rag.ingest.loaders import SUPPORTED_SUFFIXES, parse_file, read_file_bytes
from rag.settings import Settings
from rag.types import Document

_READ_AHEAD = 512  # files read and cleaned ahead of the ingest loop (a batch is ~400 BBC files)
_READ_AHEAD_BYTES = 256 << 20  # and at most this much of them on disk


def discover(paths: Iterable[Path | str]) -> list[tuple[Path, str | None]]:
    """Files to ingest, each with the folder it was found under (None for a file named directly)."""
    found: list[tuple[Path, str | None]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise InputError(f"no such file or folder: {raw}")
        path = path.resolve()
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                # Not only regular files: a broken link or a pipe named like an article is
                # reported as skipped (and never opened: reading a pipe would wait forever).
                if (
                    f.suffix.lower() in SUPPORTED_SUFFIXES
                    and not _hidden(f, path)
                    and not f.is_dir()
                ):
                    found.append((f, str(path)))
        elif path.is_file():
            found.append((path, None))
        else:
            raise InputError(f"not a regular file or folder: {raw}")
    return found


def _hidden(f: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in f.relative_to(root).parts)


def _read(path: Path, settings: Settings) -> list[Document] | SkipFile:
    data = read_raw(path, settings)
    return data if isinstance(data, SkipFile) else parse_raw(path, data, settings)


def read_raw(path: Path, settings: Settings) -> bytes | SkipFile:
    """The file's bytes, or why it is skipped (the file-system half of reading a file)."""
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return SkipFile(f"unsupported file type {path.suffix or '(none)'}")
    if not path.is_file():
        what = "a broken link" if path.is_symlink() and not path.exists() else "a pipe or device"
        return SkipFile(f"not a regular file ({what})")
    try:
        return read_file_bytes(path, settings)
    except SkipFile as e:
        return e
    except (OSError, RagError) as e:
        return SkipFile(f"cannot read: {e}")


def parse_raw(path: Path, data: bytes, settings: Settings) -> list[Document] | SkipFile:
    """The articles in a file's bytes, or why it is skipped (decoding, parsing, cleaning)."""
    try:
        return parse_file(path, data, settings)
    except SkipFile as e:
        return e
    except (OSError, RagError) as e:
        return SkipFile(f"cannot read: {e}")


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the reader reports the problem


def prefetch(
    files: Sequence[tuple[Path, str | None]], settings: Settings
) -> Generator[tuple[Path, str | None, list[Document] | SkipFile], None, None]:
    """Load and clean files in a background thread, ahead of the caller by at most _READ_AHEAD
    files and _READ_AHEAD_BYTES bytes on disk (a larger file alone is read once it is next).

    The window bounds the texts held in memory on a large folder; when the caller stops
    early, files not yet started are dropped rather than read.
    """
    queue: deque[tuple[Path, str | None, int, Future[list[Document] | SkipFile]]] = deque()
    queued_bytes = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-read") as pool:
        try:
            for p, root in files:
                size = _file_size(p)
                queue.append((p, root, size, pool.submit(_read, p, settings)))
                queued_bytes += size
                while queue and (len(queue) >= _READ_AHEAD or queued_bytes > _READ_AHEAD_BYTES):
                    done_path, done_root, done_size, fut = queue.popleft()
                    queued_bytes -= done_size
                    yield done_path, done_root, fut.result()
            while queue:
                done_path, done_root, _, fut = queue.popleft()
                yield done_path, done_root, fut.result()
        finally:
            for *_, fut in queue:
                fut.cancel()
