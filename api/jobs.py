"""Background jobs (training, evaluation, loads) in threads; one per (kind, domain) at a time."""

from __future__ import annotations

import threading
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from fusion import threads
from graph.exceptions import ConflictError, KgrError, NotFoundError

JobStatus = Literal["queued", "running", "succeeded", "failed"]
ProgressFn = Callable[[float, str], None]
JobFn = Callable[[ProgressFn], dict[str, Any]]

TRAIN_ENCODER = "train-encoder"
TRAIN_QA = "train-qa"
EVAL_QA = "eval-qa"
ACTIVATE_ENCODER = "activate-encoder"
ACTIVATE_QA = "activate-qa"
# the kinds that may not run beside each other for one domain, besides two of one kind: a
# training job and an activation of that model kind both write the served version (and, for
# the encoder, the same embedding slot in Neo4j)
EXCLUSIVE: dict[str, frozenset[str]] = {
    TRAIN_ENCODER: frozenset({ACTIVATE_ENCODER}),
    ACTIVATE_ENCODER: frozenset({TRAIN_ENCODER}),
    TRAIN_QA: frozenset({ACTIVATE_QA}),
    ACTIVATE_QA: frozenset({TRAIN_QA}),
}


class Job(BaseModel):
    """A background job's state, as the API shows it."""

    id: str
    kind: str
    domain: str
    status: JobStatus = "queued"
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    message: str = ""
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class JobManager:
    """Runs job functions in daemon threads; refuses a second live job of the same kind (or an
    ``EXCLUSIVE`` one) for a domain."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, domain: str, fn: JobFn,
               precheck: Callable[[], None] | None = None) -> Job:
        """Start ``fn`` in a thread; ``precheck`` (after this process's own jobs are checked)
        may refuse it, e.g. while another process holds the model's lock."""
        with self._lock:
            self._check_idle(kind, domain)
            if precheck is not None:
                precheck()
            job = Job(id=uuid.uuid4().hex[:12], kind=kind, domain=domain,
                      created_at=datetime.now(UTC))
            self._jobs[job.id] = job
        thread = threading.Thread(target=self._run, args=(job.id, fn), daemon=True,
                                  name=f"kgr-job-{job.id}")
        thread.start()
        return job.model_copy()

    def _check_idle(self, kind: str, domain: str) -> None:
        """``ConflictError`` while a job of ``kind``, or one ``EXCLUSIVE`` with it, is queued or
        running for ``domain``."""
        blocking = EXCLUSIVE.get(kind, frozenset()) | {kind}
        for job in self._jobs.values():
            live = job.status in ("queued", "running")
            if live and job.kind in blocking and job.domain == domain:
                raise ConflictError(f"a {job.kind} job for domain {domain!r} is already running "
                                    f"(job {job.id})")

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            job = self._jobs[job_id]
            self._jobs[job_id] = job.model_copy(update=changes)

    def _run(self, job_id: str, fn: JobFn) -> None:
        self._update(job_id, status="running", started_at=datetime.now(UTC))

        def progress(fraction: float, message: str = "") -> None:
            self._update(job_id, progress=max(0.0, min(1.0, fraction)), message=message)

        try:
            with threads.training():  # every core for its tensors, not the serving level
                result = fn(progress)
        except KgrError as exc:
            self._update(job_id, status="failed", error=exc.message, finished_at=datetime.now(UTC))
        except Exception as exc:  # a job must never take the server down; keep the trace
            self._update(
                job_id, status="failed", finished_at=datetime.now(UTC),
                error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
            )
        else:
            self._update(job_id, status="succeeded", progress=1.0, result=result,
                         finished_at=datetime.now(UTC))

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        return job.model_copy()

    def list(self) -> list[Job]:
        with self._lock:
            return sorted((j.model_copy() for j in self._jobs.values()),
                          key=lambda j: j.created_at, reverse=True)
