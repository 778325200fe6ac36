"""Migration history in the graph: ``_Migration`` nodes (applied) and ``_MigrationAttempt``
nodes (a migration being applied; one left behind means a run died and must be rolled back).

Every record has a ``namespace`` ("kgr" for the real history; tests use their own), so that
separate histories share one database without touching each other. Uploaded domain packages
are a chain of their own (U1, U2...) in the namespace ``<namespace>/upload``, their records
marked ``source: "upload"``; built-in ones (V1, V2...) are ``source: "builtin"``.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from neo4j import Driver, RoutingControl
from neo4j.exceptions import Neo4jError

from core.errors import KgrError
from graph.driver import translate_errors

MIGRATE_SCHEMA_QUERIES: tuple[str, ...] = (
    "CREATE CONSTRAINT migration_version IF NOT EXISTS FOR (m:_Migration) "
    "REQUIRE (m.namespace, m.version) IS UNIQUE",
    "CREATE CONSTRAINT migration_lock_namespace IF NOT EXISTS FOR (l:_MigrationLock) "
    "REQUIRE l.namespace IS UNIQUE",
    "CREATE CONSTRAINT migration_attempt_tag IF NOT EXISTS FOR (a:_MigrationAttempt) "
    "REQUIRE a.tag IS UNIQUE",
    "CREATE INDEX entity_migration_tag IF NOT EXISTS FOR (n:Entity) ON (n._mig)",
    # a load's batch markers (graph.migrate.loader): one per written batch
    "CREATE CONSTRAINT load_batch_key IF NOT EXISTS FOR (b:_LoadBatch) REQUIRE b.key IS UNIQUE",
)

HISTORY_QUERY = """
MATCH (m:_Migration {namespace: $namespace})
RETURN m {.*} AS m
ORDER BY m.version
"""
START_ATTEMPT_QUERY = """
CREATE (a:_MigrationAttempt {tag: $tag, namespace: $namespace, version: $version,
                             script: $script, pid: $pid, host: $host, started_at: datetime()})
"""
ATTEMPTS_QUERY = """
MATCH (a:_MigrationAttempt {namespace: $namespace})
RETURN a {.*, started_at: toString(a.started_at)} AS a
ORDER BY a.version
"""
END_ATTEMPT_QUERY = "MATCH (a:_MigrationAttempt {tag: $tag}) DELETE a"
RECORD_APPLIED_QUERY = """
OPTIONAL MATCH (a:_MigrationAttempt {tag: $tag})
DELETE a
CREATE (m:_Migration)
SET m = $props, m.applied_at = datetime($props.applied_at)
"""


@dataclass(frozen=True)
class AppliedMigration:
    """One history record: what was applied, when, how long it took and what it created."""

    namespace: str
    version: int
    description: str
    script: str
    kind: str
    checksum: str
    applied_at: str
    duration_s: float
    nodes_created: int
    relationships_created: int
    installed_by: str = ""
    source: str = "builtin"  # or "upload": which chain (V... or U...)

    @property
    def label(self) -> str:
        return f"{'U' if self.source == 'upload' else 'V'}{self.version}"

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> AppliedMigration:
        applied_at: Any = data.get("applied_at")
        return cls(
            namespace=data["namespace"], version=int(data["version"]),
            description=data.get("description", ""), script=data.get("script", ""),
            kind=data.get("kind", ""), checksum=data.get("checksum", ""),
            applied_at=applied_at.iso_format() if hasattr(applied_at, "iso_format")
            else str(applied_at),
            duration_s=float(data.get("duration_s", 0.0)),
            nodes_created=int(data.get("nodes_created", 0)),
            relationships_created=int(data.get("relationships_created", 0)),
            installed_by=data.get("installed_by", ""),
            source=data.get("source", "builtin"),
        )


@dataclass(frozen=True)
class Attempt:
    """A migration that started and neither finished nor was rolled back (its run died)."""

    tag: str
    version: int
    script: str
    pid: int
    host: str
    started_at: str


def ensure_schema(driver: Driver, database: str, attempts: int = 3) -> None:
    """Create the history constraints and the ``_mig`` index (idempotent; two processes doing
    it at once can collide, so a failure is retried)."""
    for attempt in range(attempts):
        try:
            with translate_errors():
                for query in MIGRATE_SCHEMA_QUERIES:
                    driver.execute_query(query, database_=database)
            return
        except (KgrError, Neo4jError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def read_history(driver: Driver, database: str, namespace: str) -> list[AppliedMigration]:
    with translate_errors():
        records, _, _ = driver.execute_query(HISTORY_QUERY, {"namespace": namespace},
                                             database_=database, routing_=RoutingControl.READ)
    return [AppliedMigration.from_record(r["m"]) for r in records]


def read_attempts(driver: Driver, database: str, namespace: str) -> list[Attempt]:
    with translate_errors():
        records, _, _ = driver.execute_query(ATTEMPTS_QUERY, {"namespace": namespace},
                                             database_=database, routing_=RoutingControl.READ)
    return [Attempt(tag=r["a"]["tag"], version=r["a"]["version"], script=r["a"]["script"],
                    pid=r["a"]["pid"], host=r["a"]["host"], started_at=r["a"]["started_at"])
            for r in records]


def start_attempt(driver: Driver, database: str, namespace: str, tag: str, version: int,
                  script: str) -> None:
    with translate_errors():
        driver.execute_query(START_ATTEMPT_QUERY, {
            "tag": tag, "namespace": namespace, "version": version, "script": script,
            "pid": os.getpid(), "host": socket.gethostname()}, database_=database)


def end_attempt(driver: Driver, database: str, tag: str) -> None:
    with translate_errors():
        driver.execute_query(END_ATTEMPT_QUERY, {"tag": tag}, database_=database)


def record_applied(driver: Driver, database: str, tag: str, applied: AppliedMigration) -> None:
    """Write the history record and close the attempt in one transaction."""
    with translate_errors():
        driver.execute_query(RECORD_APPLIED_QUERY, {"tag": tag, "props": applied.__dict__},
                             database_=database)
