"""The Ray ingest's failures before any cluster is involved: each a one-line error (fast tier)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rag.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAIL,
    ClusterUnavailable,
    ExtraMissing,
    InputError,
    outcome,
)
from rag.ingest.ray_cluster import connect, parse_address
from rag.settings import Settings
from rag.system import System
from tests.conftest import CORPUS, HashEmbedder
from tests.ray_cluster import free_port


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("", None),
        ("auto", None),
        ("127.0.0.1:6379", ("127.0.0.1", 6379)),
        ("ray://head.example:10001", ("head.example", 10001)),
        ("[::1]:6379", ("::1", 6379)),
    ],
)
def test_addresses(address: str, parsed: tuple[str, int] | None) -> None:
    assert parse_address(address) == parsed


@pytest.mark.parametrize("address", ["head", "head:", ":6379", "head:port", "head:70000"])
def test_bad_addresses_are_input_errors(address: str) -> None:
    with pytest.raises(InputError, match="not a Ray address"):
        parse_address(address)


def test_unreachable_cluster_fails_fast(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    system = System(Settings(index_dir=tmp_path / "index"), embedder=HashEmbedder())
    with pytest.raises(
        ClusterUnavailable, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"
    ) as e:
        system.ingest([CORPUS], ray=f"127.0.0.1:{port}")
    o = outcome(e.value)
    assert o.expected and o.exit_code == EXIT_FAIL and "\n" not in o.message
    assert not system.has_index()


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ExtraMissing, match=r"pip install -e '\.\[scale\]'") as e:
        connect("")
    o = outcome(e.value)
    assert o.exit_code == EXIT_FAIL and "\n" not in o.message
    assert outcome(InputError("x")).exit_code == EXIT_BAD_INPUT
