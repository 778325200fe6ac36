"""The real built-in migrations (schema, example, medical HPO, finance FinDKG) in the shared test
server, applied once (skipped work when its history says they are there), then the foundation
queries on both domains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from neo4j import Driver

from core.settings import Settings
from graph.migrate.runner import MigrationRunner
from graph.store import GraphStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def builtin(driver: Driver, settings: Settings,
            shared_data: Callable[[str], Path]) -> MigrationRunner:
    shared_data("findkg")  # V4 reads it; the test run does not download it
    runner = MigrationRunner(driver, settings, lock_timeout_s=900)
    runner.migrate()  # applies only what the test server's history lacks
    return runner


def test_builtin_migrations_are_applied_and_rerun_skips(builtin: MigrationRunner) -> None:
    rows = {r.version: r for r in builtin.status() if r.source == "builtin"}
    assert {v: rows[v].state for v in (1, 2, 3, 4)} == {v: "applied" for v in (1, 2, 3, 4)}
    medical, finance = rows[3].applied, rows[4].applied
    assert medical is not None and finance is not None
    assert medical.nodes_created > 30_000 and medical.relationships_created > 500_000
    assert finance.nodes_created == 13_645 and finance.relationships_created > 90_000
    assert builtin.migrate() == []
    assert builtin.validate() == []


def test_marfan_phenotypes(builtin: MigrationRunner, store: GraphStore) -> None:
    marfan = store.get_entity("medical:OMIM:154700")
    assert marfan.name == "Marfan syndrome" and marfan.types == ["Disease"]
    phenotypes = store.neighbors("medical:OMIM:154700", relation_types=["HAS_PHENOTYPE"],
                                 direction="out", limit=1000)
    names = {n.entity.name for n in phenotypes}
    assert {"Arachnodactyly", "Ectopia lentis"} <= names
    arachnodactyly = next(n for n in phenotypes if n.entity.uid == "medical:HP:0001166")
    assert arachnodactyly.relation.properties.get("evidence")
    genes = store.neighbors("medical:OMIM:154700", relation_types=["ASSOCIATED_WITH"],
                            direction="in")
    assert "FBN1" in {n.entity.name for n in genes}
    # Synonyms are searchable aliases.
    hits = store.search_entities("long slender fingers", domain="medical", types=["Phenotype"])
    assert "medical:HP:0001166" in {h.uid for h in hits.items[:5]}


def test_who_controls_tesla(builtin: MigrationRunner, store: GraphStore) -> None:
    hits = store.search_entities("Tesla Inc.", domain="finance", types=["Company"], limit=5)
    tesla = next(h for h in hits.items if h.name == "Tesla Inc.")
    controllers = store.neighbors(tesla.uid, relation_types=["CONTROL"], direction="in",
                                  limit=200)
    musk = next(n for n in controllers if n.entity.name == "Elon Musk")
    assert musk.entity.types == ["Person"]
    props = musk.relation.properties
    assert props["count"] >= 1 and props["first_week"] <= props["last_week"]
    assert props["first_seen"] <= props["last_seen"] and props["first_seen"] >= "2018-01-07"
