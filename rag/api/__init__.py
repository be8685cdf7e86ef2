"""The HTTP API (``rag serve``): search, answers, articles and an OpenAI-compatible chat endpoint.

``create_app(system)`` builds the FastAPI application over one :class:`rag.system.System`;
``rag.api.server.serve`` runs it with uvicorn after the binding checks. Access control
(``rag.api.keys``, ``rag.api.ratelimit``) needs no web framework, so ``rag keys`` works without the
``[serve]`` extra. FastAPI loads only when an application is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(system: Any, **kwargs: Any) -> FastAPI:
    """The API over ``system`` (see :func:`rag.api.app.create_app`)."""
    from rag.api.app import create_app as make

    return make(system, **kwargs)
