"""Errors a user can act on. Only ``cli.py`` and the page (``app.py``, ``ui/``) turn them into exit codes or page messages."""

from __future__ import annotations


class RagError(Exception):
    """Base class: the message is one line, written for the person using the tool."""


class InputError(RagError):
    """Bad input from the user: a missing path, an empty question, an unreadable file."""


class SkipFile(RagError):
    """A file that cannot be ingested; the message is the reason shown in the summary."""


class IndexMissing(RagError):
    """No index exists at the given folder yet."""


class CorruptIndex(RagError):
    """The index on disk is damaged or was not written by this tool."""


class ModelMismatch(RagError):
    """The index was built with another embedding model than the one configured."""


class IndexBusy(RagError):
    """Another process is writing to the index."""


class ModelUnavailable(RagError):
    """The embedding model cannot be loaded (not installed, or not a model folder)."""


class LLMError(RagError):
    """The configured chat model could not be reached or answered badly."""
