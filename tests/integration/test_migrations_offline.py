"""The offline path of a first load (``graph.migrate.offline``): ``neo4j-admin database import``
into an empty store gives the same graph, the same history and the same status as the online
path, and falls back (writing nothing) where it cannot reproduce a migration exactly.

The import replaces the whole database, so these tests run their own scratch server (a home
under ``tmp_path``, a free port), never the shared test server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from core.settings import Settings
from graph.driver import make_driver
from graph.migrate.offline import migrate_offline
from graph.migrate.runner import BUILTIN_MIGRATIONS_DIR, MigrationRunner
from graph.server import LocalNeo4j

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WIPE_QUERY = "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
NODES_QUERY = "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props"
RELATIONSHIPS_QUERY = """
MATCH (a)-[r]->(b)
RETURN a.uid AS s, type(r) AS type, b.uid AS t, properties(r) AS props
"""
# bookkeeping that differs between any two runs (write stamps, the lock, history timestamps:
# the history is compared field by field instead)
VOLATILE_LABELS = {"_Migration", "_MigrationLock", "_MigrationAttempt", "_GraphStamp"}

MANIFEST = """\
domain: offa
description: values the CSV files must carry exactly
nodes:
  - file: nodes.tsv
    properties: {population: int, area: float, capital: bool, motto: str}
relationships:
  - file: relations.tsv
    properties: {since: int, weight: float, note: str}
phrasings:
  LOCATED_IN:
    forward: ["located in {x}"]
    backward: ["in {x}"]
type_words:
  City: [towns]
sensitive: [population]
"""
NODES = (
    "id\tname\ttype\taliases\tdescription\tpopulation\tarea\tcapital\tmotto\n"
    'FR\tFrance\tCountry\tFrench Republic|La "République"\tA, country\t68000000\t551695.5\t'
    'false\tLiberté, égalité\n'
    'PAR\tParis\tCity\t\t\t2100000\t105.4\ttrue\t"Fluctuat" nec mergitur\n'
    "LYO\tLyon\tCity\tLugdunum\t\t\t47.87\tfalse\t\n"
    "X1\t  spaced  \tThing\t\t;semi;colon;\t-5\t0.1\t\t\n"
)
RELATIONS = (
    "source\ttarget\ttype\tsince\tweight\tnote\n"
    "PAR\tFR\tCAPITAL_OF\t1944\t\t\n"
    'PAR\tFR\tLOCATED_IN\t\t0.25\tsays "hi", then leaves\n'
    "LYO\tFR\tLOCATED_IN\t\t\t\n"
    "X1\tLYO\tnear by/odd type\t7\t1e-05\t\n"
)
# a Python migration whose relationships end on the manifest's nodes (tagged, as online)
PYTHON_MIGRATION = '''\
"""V3: a second domain linked to the first."""

from graph.migrate.loader import MigrationContext, entity


def apply(ctx: MigrationContext) -> None:
    ctx.create_entities([entity("offb:R", "Rhône", "offb", ["River"], length_km=812.0,
                                tags=["long", "fast"], counts=[1, 2, 3],
                                note="two\\nlines, \\"quoted\\"", empty="")])
    ctx.create_relations("FLOWS_THROUGH", [
        {"s": "offb:R", "t": "offa:LYO", "p": {"km": 30, "via": 'a "quoted", bit'}},
        {"s": "offb:R", "t": "offa:FR", "p": {}},
    ])
    ctx.create_relations("UPSTREAM_OF", [{"s": "offa:PAR", "t": "offb:R"}])
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Driver]]:
    """A server of its own (the import replaces its database), stopped afterwards."""
    if os.environ.get("NEO4J_URI"):
        pytest.skip("the offline import needs the local server (NEO4J_URI is set)")
    home = tmp_path_factory.mktemp("offline-home")
    cfg = Settings(home=home, bolt_port=free_port(), neo4j_heap="512m",
                   neo4j_pagecache="128m", retry_time_s=5.0, connect_timeout_s=5.0)
    server = LocalNeo4j(cfg)
    server.start()
    driver = make_driver(cfg)
    try:
        yield cfg, driver
    finally:
        driver.close()
        server.stop()


def wipe(cfg: Settings, driver: Driver) -> None:
    with driver.session(database=cfg.neo4j_database) as session:  # CALL IN TRANSACTIONS
        session.run(WIPE_QUERY).consume()


@pytest.fixture
def empty(scratch: tuple[Settings, Driver]) -> tuple[Settings, Driver]:
    cfg, driver = scratch
    wipe(cfg, driver)
    return cfg, driver


def migrations_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    (folder / "offa").mkdir(parents=True)
    shutil.copy(BUILTIN_MIGRATIONS_DIR / "V1__schema.py", folder / "V1__schema.py")
    (folder / "V2__offa.yaml").write_text(MANIFEST.replace("nodes.tsv", "offa/nodes.tsv")
                                          .replace("relations.tsv", "offa/relations.tsv"))
    (folder / "offa" / "nodes.tsv").write_text(NODES, encoding="utf-8")
    (folder / "offa" / "relations.tsv").write_text(RELATIONS, encoding="utf-8")
    (folder / "V3__offb.py").write_text(PYTHON_MIGRATION, encoding="utf-8")
    return folder


def runner(cfg: Settings, driver: Driver, folder: Path) -> MigrationRunner:
    return MigrationRunner(driver, cfg, locations=[folder], upload_dir=folder.parent / "uploads")


def snapshot(cfg: Settings, driver: Driver, folder: Path) -> dict[str, Any]:
    """Everything a load leaves, in a comparable form."""
    db = cfg.neo4j_database
    nodes, _, _ = driver.execute_query(NODES_QUERY, database_=db)
    rels, _, _ = driver.execute_query(RELATIONSHIPS_QUERY, database_=db)

    def plain(props: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in props.items() if k != "created"}, sort_keys=True)

    kept = [n for n in nodes if not VOLATILE_LABELS & set(n["labels"])]
    one = runner(cfg, driver, folder)
    return {
        "labels": Counter(label for n in kept for label in n["labels"]),
        "types": Counter(r["type"] for r in rels),
        "nodes": sorted((sorted(n["labels"]), plain(n["props"])) for n in kept),
        "relationships": sorted((r["s"], r["type"], r["t"], plain(r["props"])) for r in rels),
        "history": [(a.namespace, a.version, a.description, a.script, a.kind, a.checksum,
                     a.nodes_created, a.relationships_created, a.installed_by, a.source)
                    for a in one.history()],
        "status": [(s.label, s.state, s.checksum) for s in one.status()],
        "problems": one.validate(),
    }


def test_offline_load_matches_the_online_load(empty: tuple[Settings, Driver],
                                              tmp_path: Path) -> None:
    cfg, driver = empty
    folder = migrations_dir(tmp_path)
    result = migrate_offline(runner(cfg, driver, folder), LocalNeo4j(cfg))
    assert result is not None, "the offline path refused a load it can import"
    assert [a.label for a in result.applied] == ["V1", "V2", "V3"]
    assert (result.nodes, result.relationships) == (5, 7)
    offline = snapshot(cfg, driver, folder)

    wipe(cfg, driver)
    online_applied = runner(cfg, driver, folder).migrate()
    online = snapshot(cfg, driver, folder)

    assert [a.label for a in online_applied] == ["V1", "V2", "V3"]
    assert offline["labels"] == online["labels"]
    assert offline["labels"]["Entity"] == 5 and offline["labels"]["_Phrasings"] == 1
    assert offline["types"] == online["types"] == Counter(
        {"LOCATED_IN": 2, "CAPITAL_OF": 1, "near by/odd type": 1, "FLOWS_THROUGH": 2,
         "UPSTREAM_OF": 1})
    assert offline["nodes"] == online["nodes"]
    assert offline["relationships"] == online["relationships"]
    assert offline["history"] == online["history"]
    assert offline["status"] == online["status"]
    assert {state for _, state, _ in offline["status"]} == {"applied"}
    assert offline["problems"] == online["problems"] == []


def test_a_store_that_is_not_empty_loads_online(empty: tuple[Settings, Driver],
                                                tmp_path: Path) -> None:
    cfg, driver = empty
    folder = migrations_dir(tmp_path)
    driver.execute_query("CREATE (:Entity {uid: 'other:1', domain: 'other', name: 'x'})",
                         database_=cfg.neo4j_database)
    assert migrate_offline(runner(cfg, driver, folder), LocalNeo4j(cfg)) is None
    assert runner(cfg, driver, folder).history() == []


def test_a_cypher_data_migration_falls_back_without_writing(empty: tuple[Settings, Driver],
                                                            tmp_path: Path) -> None:
    cfg, driver = empty
    folder = migrations_dir(tmp_path)
    (folder / "V4__cypher.cypher").write_text(
        "CREATE (:Entity {uid: 'offc:1', domain: 'offc', name: 'c', _mig: $tag});\n")
    assert migrate_offline(runner(cfg, driver, folder), LocalNeo4j(cfg)) is None
    records, _, _ = driver.execute_query("MATCH (n) RETURN count(n) AS n",
                                         database_=cfg.neo4j_database)
    assert records[0]["n"] == 0
    assert [a.label for a in runner(cfg, driver, folder).migrate()] == ["V1", "V2", "V3", "V4"]
