"""Ingestion as background jobs: uploads are indexed one job at a time on a worker thread.

The API answers an upload at once with a job id; ``GET /v1/jobs/{id}`` then shows its progress and
what happened to each file. Jobs run one after another in this process, and each takes the index's
writer lock like the CLI and the page do; while another process holds it, the job waits (up to
``busy_wait`` seconds) rather than failing.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import IndexBusy, NotFound, outcome

__all__ = ["Job", "JobQueue"]

_KEEP = 200  # finished jobs remembered; older ones are forgotten first


@dataclass
class Job:
    id: str
    uploads: dict[str, str]  # server path -> the name the client gave
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progress: dict[str, Any] = field(default_factory=lambda: {"stage": "queued", "done": 0})
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def __post_init__(self) -> None:
        for path, name in self.uploads.items():
            self.files[path] = {"name": name, "status": "waiting", "reason": None}

    def to_json(self, scrub: Callable[[Any], Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "progress": dict(self.progress),
            "files": [dict(f) for f in self.files.values()],
            "report": scrub(self.report),
            "error": self.error,
        }


class JobQueue:
    """Runs ``ingest(paths, progress)`` for each submitted job, in order, on one daemon thread."""

    def __init__(
        self,
        ingest: Callable[..., Any],
        describe_error: Callable[[BaseException], dict[str, str]],
        busy_wait: float = 600.0,
    ) -> None:
        self._ingest = ingest
        self._describe = describe_error
        self.busy_wait = busy_wait
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, uploads: dict[Path, str]) -> Job:
        job = Job(uuid.uuid4().hex, {str(p): name for p, name in uploads.items()})
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > _KEEP:
                oldest = next(iter(self._jobs.values()))
                if oldest.status in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="rag-jobs", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id[:64]!r} (jobs are kept until the server stops)")
        return job

    def pending(self) -> int:
        with self._lock:
            return sum(j.status in ("queued", "running") for j in self._jobs.values())

    def close(self, timeout: float = 5.0) -> None:
        """Let the running job finish (up to ``timeout``) and stop the worker."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._run(job)

    def _run(self, job: Job) -> None:
        job.status, job.started = "running", time.time()

        def progress(stage: str, done: int, total: int) -> None:
            job.progress = {"stage": stage, "done": done, "total": total}

        deadline = time.monotonic() + self.busy_wait
        try:
            while True:
                try:
                    report = self._ingest([Path(p) for p in job.uploads], progress)
                    break
                except IndexBusy:  # the CLI or the page is writing: wait our turn
                    if time.monotonic() >= deadline:
                        raise
                    job.progress = {"stage": "waiting for the index", "done": 0}
                    time.sleep(0.5)
            self._record(job, report.to_dict())
            job.status = "done"
        except Exception as e:  # noqa: BLE001 - a job's failure is reported in the job
            job.error = self._describe(e)
            job.status = "failed"
            for f in job.files.values():
                if f["status"] == "waiting":
                    f["status"], f["reason"] = "failed", job.error["message"]
            if not outcome(e).expected:
                import logging

                logging.getLogger("rag.api").error("ingest job %s failed", job.id, exc_info=e)
        finally:
            job.finished = time.time()

    def _record(self, job: Job, report: dict[str, Any]) -> None:
        job.report = report
        for status in ("unchanged", "updated", "added"):  # the last one that applies wins
            for source in report[status]:
                f = job.files.get(source.split("#", 1)[0])
                if f is not None:
                    f["status"] = status
        for item in report["skipped"]:
            f = job.files.get(item["source"].split("#", 1)[0])
            if f is not None:
                f["status"], f["reason"] = "skipped", item["reason"]
