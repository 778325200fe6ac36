"""No half-loaded domain is visible: what a running migration wrote is hidden until it is
recorded as applied; a load's batches are written once even when run again; and a server
killed in the middle of a load comes back with the domain absent, then complete after
``kgr migrate``'s recovery.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import Driver

from bench.kill_load import one_run, private_server, write_package
from core.errors import NotFoundError
from core.settings import Settings
from graph.migrate.history import AppliedMigration, record_applied, start_attempt
from graph.migrate.loader import MigrationContext, entity
from graph.server import LocalNeo4j
from graph.store import GraphStore

pytestmark = pytest.mark.integration

KILL_PORT = int(os.environ.get("KGR_TEST_KILL_BOLT_PORT", "7734"))


def test_a_running_migrations_writes_are_hidden_until_it_is_applied(
        driver: Driver, settings: Settings, domain: str, namespace: str) -> None:
    db = settings.neo4j_database
    store = GraphStore(driver, db)
    tag = f"{namespace}:1"
    start_attempt(driver, db, namespace, tag, 1, "V1__x.yaml")
    ctx = MigrationContext(driver, db, settings, tag, 1, "V1__x.yaml", batch_size=2)
    ctx.create_entities(entity(f"{domain}:n{i}", f"Hidden{i}", domain, ["Thing"])
                        for i in range(5))
    ctx.create_relations("LINKS", [{"s": f"{domain}:n0", "t": f"{domain}:n{i}"}
                                   for i in range(1, 5)])
    # committed batches, but the migration is not recorded: readers see nothing of it
    assert domain not in store.domains()
    with pytest.raises(NotFoundError):
        store.check_domain(domain)
    with pytest.raises(NotFoundError):
        store.get_entity(f"{domain}:n0")
    assert store.search_entities(None, domain=domain).items == []
    assert all(d.domain != domain for d in store.schema_summary().domains)

    record_applied(driver, db, tag, AppliedMigration(
        namespace=namespace, version=1, description="x", script="V1__x.yaml", kind="manifest",
        checksum="0", applied_at="2026-01-01T00:00:00+00:00", duration_s=0.0, nodes_created=5,
        relationships_created=4))
    assert domain in store.domains()
    store.check_domain(domain)
    assert len(store.neighbors(f"{domain}:n0", direction="out")) == 4
    [summary] = [d for d in store.schema_summary().domains if d.domain == domain]
    assert summary.node_count == 5 and summary.relationship_count == 4


def test_a_batch_run_again_is_written_once(driver: Driver, settings: Settings, domain: str,
                                           namespace: str) -> None:
    db = settings.neo4j_database
    tag = f"{namespace}:1"
    ctx = MigrationContext(driver, db, settings, tag, 1, "V1__x.yaml")
    ctx.create_entities(entity(f"{domain}:n{i}", f"N{i}", domain, ["Thing"]) for i in range(3))
    statements = ctx._relation_statements(
        "LINKS", [{"s": f"{domain}:n0", "t": f"{domain}:n1"},
                  {"s": f"{domain}:n0", "t": f"{domain}:n2"}], set())
    key = f"{tag}/test-batch"
    # as when the driver runs the transaction again after its commit's answer was lost
    assert ctx._write_all(statements, key) == 2
    assert ctx._write_all(statements, key) == 2
    records, _, _ = driver.execute_query(
        "MATCH (:Entity {uid: $uid})-[r:LINKS]->() RETURN count(r) AS n",
        {"uid": f"{domain}:n0"}, database_=db)
    assert records[0]["n"] == 2
    ctx.clear_batch_marks()
    records, _, _ = driver.execute_query(
        "MATCH (b:_LoadBatch) WHERE b._mig = $tag RETURN count(b) AS n", {"tag": tag},
        database_=db)
    assert records[0]["n"] == 0


@pytest.fixture(scope="module")
def kill_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNeo4j]:
    server = private_server(tmp_path_factory.mktemp("kill-home"), KILL_PORT)
    yield server
    server.stop()


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_load_leaves_it_absent_then_complete(
        kill_server: LocalNeo4j, tmp_path: Path) -> None:
    package = write_package(tmp_path / f"package-{uuid.uuid4().hex[:6]}", 60_000)
    result = one_run(kill_server, package, kill_after_nodes=package.entities // 2)
    assert result.killed_at_nodes >= package.entities // 2  # it was killed mid-load
    assert result.views_during_load > 0
    assert result.partial_during_load == 0
    assert result.after_restart == 0 and not result.partial_after_restart  # absent
    assert result.complete_after_recovery, result
    assert result.markers_left == 0
