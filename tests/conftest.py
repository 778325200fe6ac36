"""Shared fixtures. Integration tests talk to a real Neo4j server that the test run starts.

Without ``NEO4J_URI`` the run starts (or reuses) a local server in ``.kgr-test/`` on
``KGR_TEST_BOLT_PORT`` (default 7697) and leaves it running for the next run; ``.ci/run`` stops
it at the end. Each test that writes works in its own fresh domain, removed afterwards.

Tests that read a data set from the shared data folder (``Settings().data_dir``, ``KGR_DATA_DIR``,
by default ``../shared/data``) ask for it through the ``shared_data`` fixture, which skips them
with the reason where it is absent. In CI (``CI`` set) a skip is a failure, but for ``gpu`` tests
on a machine without CUDA: a skipped test there would hide a missing data set or server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from core.settings import PROJECT_ROOT, Settings
from graph.driver import make_driver
from graph.schema import bootstrap_schema
from graph.server import LocalNeo4j
from graph.store import GraphStore
from graph.writer import delete_domain, entity_row, relation_row, write_entities, write_relations

# a test's own migration history namespace (``namespace`` fixture), removed afterwards
CLEANUP_NAMESPACE_QUERY = """
MATCH (m) WHERE (m:_Migration OR m:_MigrationAttempt OR m:_MigrationLock)
  AND (m.namespace = $namespace OR m.namespace STARTS WITH $namespace + '/')
DELETE m
"""
TEST_HOME = PROJECT_ROOT / ".kgr-test"
TEST_BOLT_PORT = int(os.environ.get("KGR_TEST_BOLT_PORT", "7697"))
# the only tests CI may skip: GPU tests on a machine without CUDA
CI_MAY_SKIP_MARKERS = {"gpu"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                               call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """In CI, a skipped test (other than a ``gpu`` one) fails, with the reason it skipped."""
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    if any(item.get_closest_marker(name) for name in CI_MAY_SKIP_MARKERS):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped in CI (CI={os.environ['CI']}), which must run every test: {reason}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that talks to Neo4j (the ``driver`` fixture, or ``settings``, which starts the
    server) must carry ``integration``, so that ``-m "not integration"`` runs without one."""
    unmarked = [item.nodeid for item in items
                if {"driver", "settings"} & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("integration") is None]
    if unmarked:
        raise pytest.UsageError("tests that use Neo4j lack the integration marker: "
                                + ", ".join(unmarked))


def shared_data_folder(name: str) -> Path:
    """The data set ``name`` in the shared data folder; skips the test where it is absent."""
    folder = Settings().data_dir / name
    if not folder.is_dir():
        pytest.skip(f"needs the data set {name!r}: {folder} is absent (set KGR_DATA_DIR to the "
                    "folder that holds it, by default ../shared/data beside the repository)")
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Callable[[str], Path]:
    """``shared_data("findkg")``: that data set's folder, or the test skips with the reason."""
    return shared_data_folder


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of the test run: its own home, port and a small server."""
    if os.environ.get("NEO4J_URI"):
        test_settings = Settings(home=TEST_HOME)
    else:
        test_settings = Settings(
            home=TEST_HOME, bolt_port=TEST_BOLT_PORT, neo4j_heap="1g", neo4j_pagecache="512m",
            retry_time_s=5.0, connect_timeout_s=5.0,
        )
        LocalNeo4j(test_settings).start()
    return test_settings


@pytest.fixture(scope="session")
def driver(settings: Settings) -> Iterator[Driver]:
    neo4j_driver = make_driver(settings)
    bootstrap_schema(neo4j_driver, settings.neo4j_database)
    yield neo4j_driver
    neo4j_driver.close()


@pytest.fixture
def store(driver: Driver, settings: Settings) -> GraphStore:
    return GraphStore(driver, settings.neo4j_database)


@pytest.fixture
def domain(driver: Driver, settings: Settings) -> Iterator[str]:
    """A fresh, unique domain name; everything in it is deleted after the test."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    delete_domain(driver, settings.neo4j_database, name)


@pytest.fixture
def namespace(driver: Driver, settings: Settings) -> Iterator[str]:
    """A migration history namespace of its own; its history is deleted after the test."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    driver.execute_query(CLEANUP_NAMESPACE_QUERY, {"namespace": name},
                         database_=settings.neo4j_database)


TOY_ENTITIES: list[tuple[str, str, str, dict[str, Any]]] = [
    # (source id, name, type, extra properties)
    ("OMIM:154700", "Marfan syndrome", "Disease", {"aliases": ["MFS", "Marfan's syndrome"]}),
    ("OMIM:130000", "Ehlers-Danlos syndrome", "Disease", {"aliases": ["EDS"]}),
    ("HP:0001166", "Arachnodactyly", "Phenotype", {"aliases": ["Long slender fingers"]}),
    ("HP:0000098", "Tall stature", "Phenotype", {"aliases": ["Increased body height"]}),
    ("HP:0001382", "Joint hypermobility", "Phenotype", {}),
    ("HP:0000924", "Abnormality of the skeletal system", "Phenotype", {}),
    ("NCBIGene:2200", "FBN1", "Gene", {"aliases": ["fibrillin 1"]}),
    ("NCBIGene:1289", "COL5A1", "Gene", {}),
]
TOY_RELATIONS: list[tuple[str, str, str]] = [
    ("OMIM:154700", "HAS_PHENOTYPE", "HP:0001166"),
    ("OMIM:154700", "HAS_PHENOTYPE", "HP:0000098"),
    ("OMIM:154700", "HAS_PHENOTYPE", "HP:0001382"),
    ("OMIM:130000", "HAS_PHENOTYPE", "HP:0001382"),
    ("HP:0001166", "IS_A", "HP:0000924"),
    ("HP:0000098", "IS_A", "HP:0000924"),
    ("NCBIGene:2200", "ASSOCIATED_WITH", "OMIM:154700"),
    ("NCBIGene:1289", "ASSOCIATED_WITH", "OMIM:130000"),
    ("NCBIGene:2200", "ASSOCIATED_PHENOTYPE", "HP:0001166"),
]


def load_toy_graph(driver: Driver, database: str, domain: str) -> dict[str, str]:
    """Write the toy medical graph into ``domain``; returns source id -> uid."""
    uids = {source_id: f"{domain}:{source_id}" for source_id, *_ in TOY_ENTITIES}
    write_entities(driver, database, [
        entity_row(uids[sid], name, domain, [etype], **extra)
        for sid, name, etype, extra in TOY_ENTITIES
    ])
    write_relations(driver, database, [
        relation_row(uids[s], rel, uids[t], source="toy") for s, rel, t in TOY_RELATIONS
    ])
    return uids


@pytest.fixture
def toy_graph(driver: Driver, settings: Settings, domain: str) -> dict[str, str]:
    """A small medical graph (2 diseases, 4 phenotypes, 2 genes) in a fresh domain."""
    return load_toy_graph(driver, settings.neo4j_database, domain)
