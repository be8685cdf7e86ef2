"""Every store backend against the contract in tests/store_contract.py.

A new backend adds its name to ``BACKENDS`` and a branch to ``make_store``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag.settings import Settings
from rag.store.base import Store, open_store
from tests.store_contract import StoreContract

BACKENDS = ["local"]


class TestStoreContract(StoreContract):
    @pytest.fixture(params=BACKENDS)
    def make_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        def make(name: str, **settings: Any) -> Store:
            return open_store(Settings(store=request.param, index_dir=tmp_path / name, **settings))

        return make
