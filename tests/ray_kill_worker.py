"""A Ray ingest that SIGKILLs one of its own embedding actors mid-way (a child of
tests/test_ray_ingest.py, which checks the index it leaves).

    python -m tests.ray_kill_worker ADDRESS INDEX_DIR FOLDER [MILVUS_URI COLLECTION]

Runs the driver in this process so it can see its actors' process ids; prints the report as JSON
with the killed pid. Given a Milvus server, the index is there, and the actors write into it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import ray

from rag.embedder import CheckedEmbeddings
from rag.ingest.ray_ingest import RayIngestor
from rag.settings import Settings


def main(address: str, index: Path, folder: Path, uri: str = "", collection: str = "") -> None:
    settings = Settings(index_dir=index, ray_actors=2, embed_batch_size=8)
    if uri:
        settings = settings.model_copy(
            update={"store": "milvus", "milvus_uri": uri, "milvus_collection": collection}
        )
    ingestor = RayIngestor(settings, CheckedEmbeddings(settings), address=address)
    pids: list[int] = []
    killed: list[int] = []

    def progress(stage: str, done: int, total: int) -> None:
        actors = getattr(ingestor.embedder, "actors", [])
        if not pids:  # the first file: the actors are up and idle
            pids.extend(ray.get([a.__ray_call__.remote(lambda _: os.getpid()) for a in actors]))
        if stage == "embed" and done < total and not killed:  # calls in flight on both actors
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    ingestor.progress = progress
    report = ingestor.run([folder])
    print(json.dumps({"report": report.to_dict(), "killed": killed, "pids": pids}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), *sys.argv[4:])
