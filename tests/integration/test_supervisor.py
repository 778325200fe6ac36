"""The local Neo4j supervised: a SIGKILLed server is seen as dead at once (never as a zombie
that runs), brought back by the supervisor, and a driver made before the kill works again.

Uses a private server (its own home and port) so that killing it disturbs no other test.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from core.settings import Settings
from graph.driver import make_driver
from graph.server import LocalNeo4j, Neo4jSupervisor, proc_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUPERVISED_PORT = int(os.environ.get("KGR_TEST_SUPERVISED_BOLT_PORT", "7733"))
KEY = "supervised-reader"


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNeo4j]:
    home: Path = tmp_path_factory.mktemp("supervised-home")
    cfg = Settings(home=home, bolt_port=SUPERVISED_PORT, neo4j_heap="512m",
                   neo4j_pagecache="128m", api_keys=f"reader:{KEY}", audit_enabled=False)
    server = LocalNeo4j(cfg)
    server.start()
    yield server
    server.stop()


def _wait(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_killed_server_is_dead_then_supervisor_brings_it_back(
        private_server: LocalNeo4j) -> None:
    cfg = private_server.settings
    driver = make_driver(cfg)
    with TestClient(create_app(cfg, driver)) as client:
        assert client.get("/readyz").status_code == 200
        first = private_server.pid()
        assert first is not None

        os.kill(first, signal.SIGKILL)  # the Java process, a child of this test process
        assert _wait(lambda: proc_state(first) in ("Z", None), 10)
        status = private_server.status()
        assert not status.running and status.pid is None  # never a zombie that "runs"
        assert client.get("/readyz").status_code == 503

        with Neo4jSupervisor(private_server, interval_s=0.5) as supervisor:
            # restarts counts a revive once the new server answers with our credentials
            assert _wait(lambda: supervisor.restarts == 1, 120), private_server.log_tail()
            assert private_server.status().running
        second = private_server.pid()
        assert second is not None and second != first
        # the API recovers by itself: same app, same driver
        assert _wait(lambda: client.get("/readyz").status_code == 200, 30)
        records, _, _ = driver.execute_query("RETURN 41 + 1 AS answer",
                                             database_=cfg.neo4j_database)
        assert records[0]["answer"] == 42
    driver.close()


def test_a_server_stopped_on_purpose_stays_stopped(private_server: LocalNeo4j) -> None:
    private_server.start()
    with Neo4jSupervisor(private_server, interval_s=0.3) as supervisor:
        assert private_server.stop()
        time.sleep(1.5)
        assert supervisor.restarts == 0
        assert not private_server.status().running
    private_server.start()
