"""Background screen jobs: a bounded pool of worker threads and a bounded store of jobs.

A job runs ``runner(request, progress)`` on a worker thread, never on the event loop.
``progress(fraction)`` records how far it is and raises :class:`JobCancelled` once the job was
cancelled, so a runner that reports progress stops early; a runner that does not is left to
finish and its result is dropped. A runner that raises marks its job ``failed`` with the
message; the server goes on. The store keeps at most ``max_jobs`` jobs: finished ones are
forgotten oldest first, and when every kept job is still queued or running a new one is refused.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["JOB_STATES", "Job", "JobCancelled", "JobManager", "JobsFull", "Runner"]

logger = logging.getLogger(__name__)

#: Every state of a job; the last three are final.
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
_FINAL = frozenset({"done", "failed", "cancelled"})

#: ``runner(request, progress) -> ranked table``.
Runner = Callable[[Any, Callable[[float], None]], pd.DataFrame]


class JobCancelled(Exception):
    """Raised by ``progress`` inside a runner whose job was cancelled."""


class JobsFull(Exception):
    """Every kept job is unfinished: no room for another."""


@dataclass
class Job:
    """One screen job (read it through :meth:`JobManager.snapshot`)."""

    id: str
    request: Any
    status: str = "queued"
    progress: float = 0.0
    message: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: pd.DataFrame | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[None] | None = None


class JobManager:
    """Run jobs on ``workers`` threads; keep at most ``max_jobs`` of them."""

    def __init__(self, runner: Runner, *, workers: int = 2, max_jobs: int = 100) -> None:
        self.runner = runner
        self.max_jobs = max_jobs
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="celltwin-job")

    def submit(self, request: Any) -> Job:
        """Queue a job. Raises :class:`JobsFull` when no finished job can make room."""
        job = Job(id=uuid.uuid4().hex, request=request)
        with self._lock:
            while len(self._jobs) >= self.max_jobs:
                done = next((k for k, j in self._jobs.items() if j.status in _FINAL), None)
                if done is None:
                    raise JobsFull(
                        f"{len(self._jobs)} jobs are queued or running (at most {self.max_jobs} "
                        "kept). Fix: wait for one to finish or cancel one (DELETE /jobs/{id})"
                    )
                del self._jobs[done]
            self._jobs[job.id] = job
        job.future = self._pool.submit(self._run, job)
        return job

    def snapshot(self, job_id: str) -> dict[str, Any] | None:
        """The job's public state (a copy), or None when no such job is kept."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return {
                "job_id": job.id,
                "status": job.status,
                "progress": job.progress,
                "message": job.message,
                "created": job.created,
                "started": job.started,
                "finished": job.finished,
                "result": job.result,
                "request": job.request,
            }

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job (a finished one is left as it is); False if unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            if job.status not in _FINAL:
                job.cancel.set()
                job.status, job.finished = "cancelled", time.time()
                job.message = "cancelled on request"
        if job.future is not None:
            job.future.cancel()
        return True

    def shutdown(self) -> None:
        """Cancel every unfinished job and stop the workers (without waiting for them)."""
        with self._lock:
            ids = [k for k, j in self._jobs.items() if j.status not in _FINAL]
        for job_id in ids:
            self.cancel(job_id)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _progress(self, job: Job) -> Callable[[float], None]:
        def report(fraction: float) -> None:
            if job.cancel.is_set():
                raise JobCancelled(job.id)
            with self._lock:
                job.progress = min(max(float(fraction), 0.0), 1.0)

        return report

    def _run(self, job: Job) -> None:
        with self._lock:
            if job.status != "queued":
                return
            job.status, job.started = "running", time.time()
        try:
            table = self.runner(job.request, self._progress(job))
        except JobCancelled:
            return
        except Exception as err:  # a failing job must never take the server down
            logger.exception("screen job %s failed", job.id)
            self._finish(job, "failed", f"{type(err).__name__}: {err}", None)
            return
        self._finish(job, "done", "", table)

    def _finish(self, job: Job, status: str, message: str, table: pd.DataFrame | None) -> None:
        with self._lock:
            if job.status == "cancelled":
                return  # cancelled while running: the result is dropped
            job.status, job.message, job.result = status, message, table
            job.finished = time.time()
            if status == "done":
                job.progress = 1.0
