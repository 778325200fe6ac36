"""Background jobs recorded in Neo4j: seen by every app instance, recovered after a crash,
pruned, capped."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver

from api.jobs import JobManager, ProgressFn
from api.main import create_app
from core.errors import ConflictError, NotFoundError, TooManyJobsError
from core.settings import Settings

pytestmark = pytest.mark.integration

ADMIN_KEY = "test-jobs-admin-key"
ADMIN = {"X-API-Key": ADMIN_KEY}
DELETE_DOMAIN_JOBS_QUERY = "MATCH (j:_Job) WHERE j.domain STARTS WITH $domain DETACH DELETE j"
# a record as another process (or host) would have left it
PLANT_JOB_QUERY = """
CREATE (:_Job {id: $id, kind: 'train-qa', domain: $domain, status: $status, progress: 0.3,
               message: '', created_at: $created, heartbeat_at: $heartbeat, owner_pid: $pid,
               owner_host: $host})
"""
STATUS_QUERY = "MATCH (j:_Job {id: $id}) RETURN j.status AS status"


@pytest.fixture
def job_domain(driver: Driver, settings: Settings, domain: str) -> Iterator[str]:
    """The test's domain; its job records are deleted afterwards."""
    yield domain
    driver.execute_query(DELETE_DOMAIN_JOBS_QUERY, {"domain": domain},
                         database_=settings.neo4j_database)


def wait_for(jobs: JobManager, job_id: str, done: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + 10
    status = jobs.get(job_id).status
    while not done(status) and time.monotonic() < deadline:
        time.sleep(0.02)
        status = jobs.get(job_id).status
    return status


def test_jobs_run_report_and_refuse_duplicates(driver: Driver, settings: Settings,
                                               job_domain: str) -> None:
    jobs = JobManager(driver, settings.neo4j_database, max_training_jobs=8)
    release = threading.Event()

    def work(progress: ProgressFn) -> dict[str, Any]:
        progress(0.5, "half")
        release.wait(5)
        return {"answer": 42, "nested": {"list": [1, 2]}}

    job = jobs.submit("train-qa", job_domain, work)
    try:
        with pytest.raises(ConflictError, match=job.id):
            jobs.submit("train-qa", job_domain, work)
        with pytest.raises(ConflictError):  # exclusive with training of that kind
            jobs.submit("activate-qa", job_domain, work)
        other = jobs.submit("eval-qa", job_domain, lambda p: {"ok": True})
        assert wait_for(jobs, job.id, lambda s: jobs.get(job.id).message == "half")
    finally:
        release.set()
    assert wait_for(jobs, job.id, lambda s: s == "succeeded") == "succeeded"
    done = jobs.get(job.id)
    assert done.result == {"answer": 42, "nested": {"list": [1, 2]}} and done.progress == 1.0
    assert done.started_at is not None and done.finished_at is not None
    assert done.owner_host and done.owner_pid is not None
    def broken(progress: ProgressFn) -> dict[str, Any]:
        return {"never": 1 / 0}

    failing = jobs.submit("train-qa", job_domain + "x", broken)
    assert wait_for(jobs, failing.id, lambda s: s == "failed") == "failed"
    assert "ZeroDivisionError" in (jobs.get(failing.id).error or "")
    listed = [j.id for j in jobs.list()]
    assert {job.id, other.id, failing.id} <= set(listed)
    assert listed.index(failing.id) < listed.index(job.id)  # newest first
    with pytest.raises(NotFoundError):
        jobs.get("nope")


def test_a_job_of_one_app_is_seen_by_another(driver: Driver, settings: Settings,
                                            job_domain: str) -> None:
    app_settings = settings.model_copy(update={"api_keys": f"admin:{ADMIN_KEY}",
                                               "audit_enabled": False})
    release = threading.Event()
    first_app, second_app = create_app(app_settings, driver), create_app(app_settings, driver)
    second_jobs: JobManager = second_app.state.jobs
    with TestClient(first_app), TestClient(second_app) as second:
        job = first_app.state.jobs.submit("train-encoder", job_domain,
                                          lambda progress: {"released": release.wait(10)})
        try:
            seen = second.get(f"/v1/jobs/{job.id}", headers=ADMIN)
            assert seen.status_code == 200, seen.text
            assert seen.json()["domain"] == job_domain
            assert seen.json()["status"] in ("queued", "running")
            assert job.id in [j["id"] for j in second.get("/v1/jobs", headers=ADMIN).json()]
            # the second instance refuses a duplicate of the first one's job
            with pytest.raises(ConflictError):
                second_jobs.submit("train-encoder", job_domain, lambda p: {})
        finally:
            release.set()
        assert wait_for(second_jobs, job.id, lambda s: s == "succeeded") \
            == "succeeded"
        assert second.get(f"/v1/jobs/{job.id}", headers=ADMIN).json()["result"] == {
            "released": True}


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_jobs_of_a_dead_process_are_interrupted_at_startup(driver: Driver, settings: Settings,
                                                           job_domain: str) -> None:
    database = settings.neo4j_database
    jobs = JobManager(driver, database, stale_after=timedelta(minutes=10))
    now = datetime.now(UTC)
    plants = {
        "dead-here": (jobs.host, dead_pid(), now, "running"),
        "alive-here": (jobs.host, jobs.pid, now, "running"),
        "stale-elsewhere": ("another-host", 1, now - timedelta(minutes=30), "running"),
        "fresh-elsewhere": ("another-host", 1, now - timedelta(minutes=1), "queued"),
        "done-dead": (jobs.host, dead_pid(), now, "succeeded"),
    }
    ids = {name: f"{job_domain}-{name}" for name in plants}
    for name, (host, pid, heartbeat, status) in plants.items():
        driver.execute_query(PLANT_JOB_QUERY, {
            "id": ids[name], "domain": job_domain, "status": status, "created": now,
            "heartbeat": heartbeat, "pid": pid, "host": host}, database_=database)
    app_settings = settings.model_copy(update={"api_keys": f"admin:{ADMIN_KEY}",
                                               "audit_enabled": False})
    with TestClient(create_app(app_settings, driver)) as client:  # startup recovers
        statuses = {name: client.get(f"/v1/jobs/{ids[name]}", headers=ADMIN).json()
                    for name in plants}
    assert {name: s["status"] for name, s in statuses.items()} == {
        "dead-here": "interrupted", "alive-here": "running",
        "stale-elsewhere": "interrupted", "fresh-elsewhere": "queued",
        "done-dead": "succeeded"}
    assert "stopped" in statuses["dead-here"]["error"]
    assert statuses["dead-here"]["finished_at"] is not None


def test_old_finished_records_are_pruned(driver: Driver, settings: Settings,
                                         job_domain: str) -> None:
    database = settings.neo4j_database
    jobs = JobManager(driver, database, retention=timedelta(days=7))
    now = datetime.now(UTC)
    for name, age, status in (("old", 8, "failed"), ("recent", 6, "succeeded"),
                              ("old-live", 8, "running")):
        driver.execute_query(PLANT_JOB_QUERY, {
            "id": f"{job_domain}-{name}", "domain": job_domain, "status": status,
            "created": now - timedelta(days=age), "heartbeat": now, "pid": jobs.pid,
            "host": jobs.host}, database_=database)
    jobs.recover(now)
    left = {name: driver.execute_query(STATUS_QUERY, {"id": f"{job_domain}-{name}"},
                                       database_=database).records
            for name in ("old", "recent", "old-live")}
    assert not left["old"] and left["recent"] and left["old-live"]


def test_training_jobs_are_capped_across_instances(driver: Driver, settings: Settings,
                                                   job_domain: str) -> None:
    first = JobManager(driver, settings.neo4j_database, max_training_jobs=1)
    second = JobManager(driver, settings.neo4j_database, max_training_jobs=1)
    release = threading.Event()
    job = first.submit("train-qa", job_domain + "a", lambda p: {"ok": release.wait(10)})
    try:
        with pytest.raises(TooManyJobsError, match="limit is 1"):
            second.submit("train-encoder", job_domain + "b", lambda p: {})
        evaluation = second.submit("eval-qa", job_domain + "b", lambda p: {})  # not training
    finally:
        release.set()
    assert wait_for(first, job.id, lambda s: s == "succeeded") == "succeeded"
    assert wait_for(second, evaluation.id, lambda s: s == "succeeded") == "succeeded"
    later = second.submit("train-encoder", job_domain + "b", lambda p: {})
    assert wait_for(second, later.id, lambda s: s == "succeeded") == "succeeded"


def test_the_cap_is_a_429_with_a_message(driver: Driver, settings: Settings,
                                         job_domain: str) -> None:
    from api.errors import kgr_error_response

    response = kgr_error_response(TooManyJobsError("2 training job(s) already running"))
    assert response.status_code == 429 and b"too_many_jobs" in response.body


@pytest.mark.slow
def test_kgr_serve_with_two_workers_shares_the_jobs(driver: Driver, settings: Settings,
                                                    job_domain: str, tmp_path: Path) -> None:
    """``kgr serve --workers 2``: every request, whichever worker answers it, sees a job
    record written outside both."""
    import socket

    import httpx

    now = datetime.now(UTC)
    driver.execute_query(PLANT_JOB_QUERY, {
        "id": f"{job_domain}-w", "domain": job_domain, "status": "succeeded", "created": now,
        "heartbeat": now, "pid": 1, "host": "another-host"}, database_=settings.neo4j_database)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = dict(os.environ, KGR_API_KEYS=f"admin:{ADMIN_KEY}", KGR_HOME=str(settings.home),
               KGR_BOLT_PORT=str(settings.bolt_port), KGR_AUDIT_ENABLED="false",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--workers", "2", "--no-warm-up",
         "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("kgr serve --workers 2 did not start")
        with httpx.Client(base_url=url, headers=ADMIN, timeout=10) as client:
            answers = [client.get(f"/v1/jobs/{job_domain}-w") for _ in range(20)]
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["status"] for a in answers} == {"succeeded"}
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    # two worker processes started (uvicorn logs one "Started server process" per worker)
    assert output.count("Started server process") >= 2, output
