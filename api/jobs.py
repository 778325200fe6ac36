"""Background jobs (training, evaluation, loads): run in threads of the process that accepted
them, recorded as ``_Job`` nodes in Neo4j so that every API process and host sees them.

One job per (kind, domain) at a time (and none beside an ``EXCLUSIVE`` kind), and at most
``settings.max_training_jobs`` training jobs over all processes: the check and the new record
are one write transaction that first locks the single ``_JobLock`` node, so two processes
cannot both pass the check. The owner (pid, host) writes a heartbeat while a job runs; at
startup (``recover``) a live record whose owner is gone (a dead pid on this host, or no
heartbeat for ``job_stale_minutes`` from another host) is marked ``interrupted``, and finished
records older than ``job_retention_days`` are deleted.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from neo4j import Driver, ManagedTransaction, RoutingControl
from pydantic import BaseModel, Field

from core.errors import ConflictError, KgrError, NotFoundError, TooManyJobsError
from fusion.serve import threads
from graph.driver import translate_errors
from graph.lock import ModelLock

log = logging.getLogger("kgr.api")

JobStatus = Literal["queued", "running", "succeeded", "failed", "interrupted"]
LIVE_STATUSES = ["queued", "running"]
ProgressFn = Callable[[float, str], None]
JobFn = Callable[[ProgressFn], dict[str, Any]]

TRAIN_ENCODER = "train-encoder"
TRAIN_QA = "train-qa"
EVAL_QA = "eval-qa"
ACTIVATE_ENCODER = "activate-encoder"
ACTIVATE_QA = "activate-qa"
# the kinds that count against ``max_training_jobs`` (they take every core while they run)
TRAINING_KINDS = [TRAIN_ENCODER, TRAIN_QA]
# the kinds that may not run beside each other for one domain, besides two of one kind: a
# training job and an activation of that model kind both write the served version (and, for
# the encoder, the same embedding slot in Neo4j)
EXCLUSIVE: dict[str, frozenset[str]] = {
    TRAIN_ENCODER: frozenset({ACTIVATE_ENCODER}),
    ACTIVATE_ENCODER: frozenset({TRAIN_ENCODER}),
    TRAIN_QA: frozenset({ACTIVATE_QA}),
    ACTIVATE_QA: frozenset({TRAIN_QA}),
}
# how often a running job's owner writes its heartbeat (seconds)
HEARTBEAT_S = 30.0
LIST_LIMIT = 500

# Taking the write lock on the one lock node serialises every submission (across processes)
# until the transaction ends: the checks below and the CREATE see each other's jobs.
LOCK_JOBS_QUERY = "MERGE (l:_JobLock {id: 'jobs'}) SET l.locked_at = $now"
BLOCKING_JOB_QUERY = """
MATCH (j:_Job {domain: $domain})
WHERE j.status IN $live AND j.kind IN $kinds
RETURN j.id AS id, j.kind AS kind
LIMIT 1
"""
LIVE_TRAINING_COUNT_QUERY = """
MATCH (j:_Job) WHERE j.status IN $live AND j.kind IN $kinds
RETURN count(j) AS running
"""
CREATE_JOB_QUERY = """
CREATE (j:_Job {id: $id, kind: $kind, domain: $domain, status: 'queued', progress: 0.0,
                message: '', created_at: $now, heartbeat_at: $now, owner_pid: $pid,
                owner_host: $host})
"""
UPDATE_JOB_QUERY = "MATCH (j:_Job {id: $id}) SET j += $changes, j.heartbeat_at = $now"
HEARTBEAT_QUERY = """
MATCH (j:_Job) WHERE j.id IN $ids AND j.status IN $live
SET j.heartbeat_at = $now
"""
GET_JOB_QUERY = "MATCH (j:_Job {id: $id}) RETURN properties(j) AS job"
LIST_JOBS_QUERY = """
MATCH (j:_Job) RETURN properties(j) AS job ORDER BY j.created_at DESC LIMIT $limit
"""
LIVE_JOBS_QUERY = """
MATCH (j:_Job) WHERE j.status IN $live
RETURN j.id AS id, j.owner_pid AS pid, j.owner_host AS host, j.heartbeat_at AS heartbeat
"""
INTERRUPT_JOBS_QUERY = """
MATCH (j:_Job) WHERE j.id IN $ids AND j.status IN $live
SET j.status = 'interrupted', j.finished_at = $now,
    j.error = 'the API process that ran this job stopped before it ended'
RETURN count(j) AS interrupted
"""
PRUNE_JOBS_QUERY = """
MATCH (j:_Job) WHERE NOT j.status IN $live AND j.created_at < $before
DETACH DELETE j
RETURN count(*) AS pruned
"""


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
    owner_pid: int | None = None
    owner_host: str | None = None


def _native(value: Any) -> Any:
    """A Neo4j temporal value as a Python datetime (other values unchanged)."""
    return value.to_native() if hasattr(value, "to_native") else value


def job_from_properties(props: dict[str, Any]) -> Job:
    data = {key: _native(value) for key, value in props.items() if key != "heartbeat_at"}
    if isinstance(data.get("result"), str):  # stored as JSON text (a map of any depth)
        data["result"] = json.loads(data["result"])
    return Job.model_validate(data)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


class JobManager:
    """Runs job functions in daemon threads of this process; their records live in Neo4j."""

    def __init__(self, driver: Driver, database: str = "neo4j", *, max_training_jobs: int = 1,
                 stale_after: timedelta = timedelta(minutes=10),
                 retention: timedelta = timedelta(days=7),
                 heartbeat_s: float = HEARTBEAT_S) -> None:
        self.driver = driver
        self.database = database
        self.max_training_jobs = max_training_jobs
        self.stale_after = stale_after
        self.retention = retention
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self._own: set[str] = set()  # this manager's live jobs (for the heartbeat)
        self._lock = threading.Lock()
        self._heartbeat_s = heartbeat_s
        self._heartbeat: threading.Thread | None = None

    # ---------------------------------------------------------------- submit
    def submit(self, kind: str, domain: str, fn: JobFn,
               precheck: Callable[[], None] | None = None) -> Job:
        """Record the job and start ``fn`` in a thread. ``ConflictError`` while a job of
        ``kind`` (or an ``EXCLUSIVE`` one) is live for ``domain`` in any process;
        ``TooManyJobsError`` beyond ``max_training_jobs``; ``precheck`` may refuse it too, e.g.
        while another process (a CLI run) holds the model's lock."""
        if precheck is not None:
            precheck()
        job_id = uuid.uuid4().hex[:12]
        now = datetime.now(UTC)
        with translate_errors(), self.driver.session(database=self.database) as session:
            session.execute_write(self._create, job_id, kind, domain, now)
        with self._lock:
            self._own.add(job_id)
        self._start_heartbeat()
        thread = threading.Thread(target=self._run, args=(job_id, fn), daemon=True,
                                  name=f"kgr-job-{job_id}")
        thread.start()
        return Job(id=job_id, kind=kind, domain=domain, created_at=now, owner_pid=self.pid,
                   owner_host=self.host)

    def submit_for_model(self, kind: str, model: str, domain: str, fn: JobFn) -> Job:
        """``submit`` a job that writes the served ``model`` of ``domain`` (training or
        activation): refused at once while another process holds that model's lock."""
        lock = ModelLock(self.driver, self.database, model, domain)
        return self.submit(kind, domain, fn, precheck=lock.check_free)

    def _create(self, tx: ManagedTransaction, job_id: str, kind: str, domain: str,
                now: datetime) -> None:
        tx.run(LOCK_JOBS_QUERY, now=now).consume()
        blocking = sorted(EXCLUSIVE.get(kind, frozenset()) | {kind})
        busy = tx.run(BLOCKING_JOB_QUERY, domain=domain, live=LIVE_STATUSES,
                      kinds=blocking).single()
        if busy is not None:
            raise ConflictError(f"a {busy['kind']} job for domain {domain!r} is already running "
                                f"(job {busy['id']})")
        if kind in TRAINING_KINDS:
            record = tx.run(LIVE_TRAINING_COUNT_QUERY, live=LIVE_STATUSES,
                            kinds=TRAINING_KINDS).single()
            running = record["running"] if record is not None else 0
            if running >= self.max_training_jobs:
                raise TooManyJobsError(
                    f"{running} training job(s) already running, the limit is "
                    f"{self.max_training_jobs} (KGR_MAX_TRAINING_JOBS); try again when one "
                    "has finished")
        tx.run(CREATE_JOB_QUERY, id=job_id, kind=kind, domain=domain, now=now, pid=self.pid,
               host=self.host).consume()

    # ------------------------------------------------------------------- run
    def _write(self, query: str, **params: Any) -> list[Any]:
        with translate_errors():
            records, _, _ = self.driver.execute_query(query, params, database_=self.database)
        return records

    def _update(self, job_id: str, **changes: Any) -> None:
        if "result" in changes and changes["result"] is not None:
            changes["result"] = json.dumps(changes["result"], default=str)
        try:
            self._write(UPDATE_JOB_QUERY, id=job_id, changes=changes, now=datetime.now(UTC))
        except KgrError as exc:  # Neo4j away for a moment: the job goes on, the record lags
            log.warning("job %s: its record was not updated: %s", job_id, exc.message)

    def _run(self, job_id: str, fn: JobFn) -> None:
        self._update(job_id, status="running", started_at=datetime.now(UTC))

        def progress(fraction: float, message: str = "") -> None:
            self._update(job_id, progress=max(0.0, min(1.0, fraction)), message=message)

        try:
            with threads.training():  # every core for its tensors, not the serving level
                result = fn(progress)
        except KgrError as exc:
            self._update(job_id, status="failed", error=exc.message,
                         finished_at=datetime.now(UTC))
        except Exception as exc:  # a job must never take the server down; keep the trace
            self._update(
                job_id, status="failed", finished_at=datetime.now(UTC),
                error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
            )
        else:
            self._update(job_id, status="succeeded", progress=1.0, result=result,
                         finished_at=datetime.now(UTC))
        finally:
            with self._lock:
                self._own.discard(job_id)

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._heartbeat is not None and self._heartbeat.is_alive():
                return
            self._heartbeat = threading.Thread(target=self._beat, daemon=True,
                                               name="kgr-job-heartbeat")
            self._heartbeat.start()

    def _beat(self) -> None:
        """While this manager has live jobs, write their heartbeat (a job that reports no
        progress for a long epoch must not look abandoned to other hosts)."""
        stop = threading.Event()
        while True:
            stop.wait(self._heartbeat_s)
            with self._lock:
                ids = sorted(self._own)
                if not ids:
                    self._heartbeat = None
                    return
            try:
                self._write(HEARTBEAT_QUERY, ids=ids, live=LIVE_STATUSES, now=datetime.now(UTC))
            except KgrError as exc:
                log.warning("job heartbeat not written: %s", exc.message)

    # ------------------------------------------------------------- startup
    def recover(self, now: datetime | None = None) -> tuple[int, int]:
        """Mark the live jobs whose owner is gone as interrupted and delete the finished
        records past the retention; returns (interrupted, pruned)."""
        now = now or datetime.now(UTC)
        with translate_errors():
            records, _, _ = self.driver.execute_query(
                LIVE_JOBS_QUERY, {"live": LIVE_STATUSES}, database_=self.database,
                routing_=RoutingControl.READ)
        gone = [r["id"] for r in records if self._abandoned(r, now)]
        interrupted = 0
        if gone:
            rows = self._write(INTERRUPT_JOBS_QUERY, ids=gone, live=LIVE_STATUSES, now=now)
            interrupted = rows[0]["interrupted"] if rows else 0
        rows = self._write(PRUNE_JOBS_QUERY, live=LIVE_STATUSES, before=now - self.retention)
        pruned = rows[0]["pruned"] if rows else 0
        if interrupted or pruned:
            log.info("jobs: %d interrupted (their process stopped), %d old records deleted",
                     interrupted, pruned)
        return interrupted, pruned

    def _abandoned(self, record: Any, now: datetime) -> bool:
        pid, host = record["pid"], record["host"]
        if host == self.host and isinstance(pid, int):
            return not pid_alive(pid)
        heartbeat = _native(record["heartbeat"])
        return heartbeat is None or now - heartbeat > self.stale_after

    # ------------------------------------------------------------------ read
    def get(self, job_id: str) -> Job:
        with translate_errors():
            records, _, _ = self.driver.execute_query(
                GET_JOB_QUERY, {"id": job_id}, database_=self.database,
                routing_=RoutingControl.READ)
        if not records:
            raise NotFoundError(f"no job {job_id!r}")
        return job_from_properties(records[0]["job"])

    def list(self, limit: int = LIST_LIMIT) -> list[Job]:
        """The newest jobs of every process, newest first."""
        with translate_errors():
            records, _, _ = self.driver.execute_query(
                LIST_JOBS_QUERY, {"limit": limit}, database_=self.database,
                routing_=RoutingControl.READ)
        return [job_from_properties(r["job"]) for r in records]
