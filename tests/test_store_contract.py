"""Every store backend against the contract in tests/store_contract.py.

A new backend adds its name to ``BACKENDS`` and a branch to ``make_store``. The Milvus backend
runs on Milvus Lite: one engine per module (a start costs a moment), each store its own
collection prefix in that file, dropped after the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.settings import Settings
from rag.store.base import Store, open_store
from tests.store_contract import StoreContract

BACKENDS = ["local", "milvus"]
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def milvus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("pymilvus", reason="the scale extra is not installed")
    return tmp_path_factory.mktemp("milvus") / "contract.db"


class TestStoreContract(StoreContract):
    @pytest.fixture(params=BACKENDS)
    def make_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
        made: dict[str, Store] = {}
        prefixes: dict[str, str] = {}

        def make(name: str, **settings: Any) -> Store:
            if request.param == "milvus":
                prefix = prefixes.setdefault(name, f"t{next(_prefixes)}_{name}")
                uri = str(request.getfixturevalue("milvus_file"))
                settings = {"milvus_uri": uri, "milvus_collection": prefix, **settings}
            store = open_store(Settings(store=request.param, index_dir=tmp_path / name, **settings))
            made.setdefault(name, store)
            return store

        yield make
        for store in made.values():
            drop = getattr(store, "drop", None)
            if drop is not None:
                drop()
