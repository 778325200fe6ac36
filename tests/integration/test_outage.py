"""With Neo4j stopped the API answers 503 within 2 s, and it recovers once Neo4j is back.

Uses a second, private Neo4j server (its own home and port) so that stopping it does not
disturb the shared test server that other tests use at the same time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from core.settings import Settings
from graph.driver import make_driver
from graph.schema import bootstrap_schema
from graph.server import LocalNeo4j
from graph.writer import entity_row, write_entities

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_PORT = int(os.environ.get("KGR_TEST_OUTAGE_BOLT_PORT", "7698"))
KEY = "outage-reader"


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNeo4j]:
    home: Path = tmp_path_factory.mktemp("outage-home")
    cfg = Settings(home=home, bolt_port=OUTAGE_PORT, neo4j_heap="512m", neo4j_pagecache="128m",
                   api_keys=f"reader:{KEY}")
    server = LocalNeo4j(cfg)
    server.start()
    yield server
    server.stop()


def test_dead_database_gives_503_fast_then_recovers(private_server: LocalNeo4j) -> None:
    cfg = private_server.settings
    driver = make_driver(cfg)
    bootstrap_schema(driver, cfg.neo4j_database)
    write_entities(driver, cfg.neo4j_database,
                   [entity_row("outage:1", "Survivor", "outage", ["Thing"])])
    headers = {"X-API-Key": KEY}
    with TestClient(create_app(cfg, driver)) as client:
        assert client.get("/v1/entities/outage:1", headers=headers).status_code == 200

        private_server.stop()
        for path in ["/v1/entities/outage:1", "/readyz", "/v1/entities?q=survivor"]:
            started = time.monotonic()
            response = client.get(path, headers=headers)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.text)
            assert elapsed < 2.0, f"{path} took {elapsed:.2f}s"
            assert response.headers["Retry-After"]
            assert response.json()["error"]["code"] == "database_unavailable"
        assert client.get("/healthz").status_code == 200  # the process itself is fine

        private_server.start()
        deadline = time.monotonic() + 30
        while True:
            response = client.get("/v1/entities/outage:1", headers=headers)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "Survivor"  # data survived stop and start
        assert client.get("/readyz").status_code == 200
    driver.close()


def test_start_is_idempotent_and_status_reports(private_server: LocalNeo4j) -> None:
    first = private_server.start()
    again = private_server.start()
    assert first.running and again.running and first.pid == again.pid
    password_file = private_server.password_file
    assert password_file.stat().st_mode & 0o077 == 0  # the generated password is private
    assert len(password_file.read_text().strip()) >= 24
