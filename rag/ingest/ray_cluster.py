"""Joining or starting the Ray cluster of a Ray ingest, with every failure as one line.

Ray is an optional package (the ``scale`` extra) and is imported here, on first use only. The
address is the one given to ``rag ingest --ray ADDRESS`` or ``RAG_RAY_ADDRESS``: empty starts a Ray
instance on this machine for the run, ``auto`` joins the cluster started on this machine with
``ray start``, ``HOST:PORT`` or ``ray://HOST:PORT`` joins that one. A named address is checked with
a plain TCP connect first, so an unreachable cluster is reported in seconds rather than after
Ray's own retries.
"""

from __future__ import annotations

import logging
import socket
from types import ModuleType
from typing import Any

from rag.errors import ClusterUnavailable, ExtraMissing, InputError, RagError

__all__ = ["connect", "import_ray", "parse_address", "ray_failure"]

_CONNECT_TIMEOUT = 5.0  # seconds for the TCP check of a named head node
# Workers never reach a model hub: the model comes from an installed package or folder.
_WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise ExtraMissing(
            "Ray is not installed: pip install -e '.[scale]' to ingest with --ray"
        ) from None
    return ray


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of a named cluster; None for ``""`` (start one here) and ``auto``."""
    address = address.strip()
    if address in ("", "local", "auto"):
        return None
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(
            f"not a Ray address: {address!r} (give HOST:PORT, ray://HOST:PORT or auto)"
        )
    return host.strip("[]"), int(port)


def _reachable(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT):
            return
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ClusterUnavailable(
            f"cannot reach the Ray cluster at {host}:{port}: {reason}"
        ) from None


def connect(address: str) -> tuple[ModuleType, bool]:
    """Ray, initialised for this process; and whether this call did it (then the caller shuts
    it down). A process that has already called ``ray.init`` keeps its connection."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    named = parse_address(address)
    if named is not None:
        _reachable(*named)
    kwargs: dict[str, Any] = {
        "runtime_env": {"env_vars": dict(_WORKER_ENV)},
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "configure_logging": True,
    }
    target = address.strip() or "local"
    if target == "local":
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=target, **kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as e:
        where = "on this machine" if target == "auto" else f"at {target}"
        if target == "local":
            raise ClusterUnavailable(
                f"could not start Ray on this machine: {_first_line(e)}"
            ) from None
        raise ClusterUnavailable(f"no Ray cluster {where}: {_first_line(e)}") from None
    return ray, True


def ray_failure(error: BaseException) -> RagError | None:
    """What a Ray exception means to the user: the RagError a task raised, a one-line
    ClusterUnavailable for a cluster that failed (a node or an actor lost for good), None
    for anything else (a bug, whose traceback is what a report needs)."""
    try:
        from ray import exceptions as rex
    except ImportError:
        return None
    if isinstance(error, rex.RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, RagError):
            return cause
        return None
    if isinstance(error, (rex.RayError, rex.GetTimeoutError)):
        return ClusterUnavailable(f"the Ray cluster failed during the ingest: {_first_line(error)}")
    return None


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]
