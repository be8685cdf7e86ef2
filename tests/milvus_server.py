"""A Milvus server on this machine for the tests: ``milvus-lite server`` serving one data folder
on a free loopback port, as far as the store (and a Ray worker) can tell a Milvus server.
Stopping kills exactly that process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from rag.errors import StoreUnavailable
from rag.settings import Settings
from rag.store.base import open_store
from tests.ray_cluster import free_port

_START_SECONDS = 30.0


class MilvusServer:
    """``with MilvusServer(folder) as uri:`` a server answering at ``uri``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.uri = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        port = free_port()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.uri = f"http://127.0.0.1:{port}"
        probe = Settings(store="milvus", milvus_uri=self.uri, index_dir=self.data_dir / "probe")
        deadline = time.monotonic() + _START_SECONDS
        while True:  # up when it answers
            try:
                open_store(probe).exists()
                return self.uri
            except StoreUnavailable:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"milvus-lite server did not start at {self.uri}") from None
                time.sleep(0.2)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=30)
            self._process = None
