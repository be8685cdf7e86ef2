"""``rag serve``: checks where the server may listen, then runs the API with uvicorn."""

from __future__ import annotations

import ipaddress
import sys

from rag.api.keys import KeyRing
from rag.errors import InputError
from rag.settings import Settings

__all__ = ["check_bind", "is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, keys: KeyRing) -> None:
    """Without keys, anyone who reaches the port could read, upload and delete: loopback only."""
    if not keys and not is_loopback(host):
        raise InputError(
            f"refusing to listen on {host} without API keys (anyone reaching it could upload and "
            "delete): make one with `rag keys add NAME --role write --keys FILE`, then start with "
            "--keys FILE (or RAG_API_KEYS_FILE)"
        )


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API over one System until interrupted."""
    try:
        import fastapi  # noqa: F401  (checked here so that a missing extra is one line)
        import multipart  # noqa: F401
        import uvicorn
    except ImportError:
        raise InputError(
            "rag serve needs FastAPI and uvicorn: pip install 'rag-articles[serve]'"
        ) from None
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be 0 to 65535, not {port}")
    keys = KeyRing.from_settings(settings)
    check_bind(host, keys)
    from rag.api.app import create_app
    from rag.system import System

    app = create_app(System(settings), keys=keys)
    access = f"{len(keys.keys)} API key(s)" if keys else "no API keys (loopback only)"
    shown = f"[{host}]" if ":" in host else host
    where = f"http://{shown}:{port}" if port else f"{shown}, a free port (uvicorn names it below)"
    print(f"rag serve: {where} (docs at /docs), {access}", file=sys.stderr)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        proxy_headers=False,  # the client address is the peer's, not a header anyone can set
        timeout_graceful_shutdown=10,
    )
