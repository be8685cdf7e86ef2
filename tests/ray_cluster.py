"""A real multi-node Ray cluster on this machine, for the Ray ingest tests and ``bench/bench_ray.py``.

Each node is its own ``ray start ... --block`` process (the head first, then the workers joining
it), bound to loopback, with token authentication (a fresh token shared through the environment)
and a private temp folder. Stopping sends SIGTERM to exactly those processes, which take their
Ray daemons down with them; ``ray stop`` is never used, as it would stop every cluster of the
machine's user.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

RAY = Path(sys.executable).with_name("ray")
_START_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


class RayCluster:
    """``nodes`` Ray nodes of ``cpus`` CPUs each; ``env`` is what a driver process needs."""

    def __init__(self, nodes: int = 2, cpus: int = 1, object_store_mb: int = 200) -> None:
        self.nodes, self.cpus, self.object_store_mb = nodes, cpus, object_store_mb
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # A short path: Ray's unix sockets live under it and must stay within 107 bytes.
        self.temp = Path(tempfile.mkdtemp(prefix="rayt", dir="/tmp"))
        self.env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        self.env.pop("RAY_ADDRESS", None)
        self.procs: list[subprocess.Popen[bytes]] = []

    def _node(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.temp / f"{name}.log").open("wb")
        common = [
            f"--num-cpus={self.cpus}",
            f"--object-store-memory={self.object_store_mb * 1024 * 1024}",
            "--node-ip-address=127.0.0.1",
            "--block",
        ]
        proc = subprocess.Popen(
            [str(RAY), "start", *args, *common], stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        log.close()
        self.procs.append(proc)
        return proc

    def _wait_log(self, name: str, text: str, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + _START_SECONDS
        path = self.temp / f"{name}.log"
        while time.monotonic() < deadline:
            if text in path.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"ray node {name} did not start:\n{path.read_text(errors='replace')}")

    def start(self) -> RayCluster:
        head = self._node(
            "head",
            [
                "--head",
                f"--port={self.port}",
                "--include-dashboard=false",
                f"--temp-dir={self.temp}",
            ],
        )
        deadline = time.monotonic() + _START_SECONDS
        while not port_open(self.port):  # the head's GCS answers before anyone joins
            if head.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError((self.temp / "head.log").read_text(errors="replace"))
            time.sleep(0.3)
        try:
            self._wait_log("head", "Ray runtime started", head)
            for i in range(1, self.nodes):
                name = f"node{i}"
                self._wait_log(
                    name, "Ray runtime started", self._node(name, [f"--address={self.address}"])
                )
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM to each node process this cluster started (workers first), then wait."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs = []
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> RayCluster:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
