"""Relationship types with any name Neo4j stores: a Freebase-style triples package
("__people__person__nationality", "/people/person/nationality", a 70-character name, a
backtick) loads through /v1/migrations, and neighbours, paths and the QA retrieval queries
(backtick-quoted types) read it back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver

from api.deps import get_runner
from api.main import create_app
from core.settings import Settings
from fusion.serve.retrieval import action_queries
from graph.migrate.runner import MigrationRunner
from tests.conftest import CLEANUP_NAMESPACE_QUERY

pytestmark = pytest.mark.integration

ADMIN_KEY = "admin-" + uuid.uuid4().hex
ADMIN = {"X-API-Key": ADMIN_KEY}
NATIONALITY = "/people/person/nationality"
SPOUSE = "__people__person__spouse_s"
LONG = "/film/film/" + "x" * 59  # 70 characters
TICK = "it`s_complicated"
TRIPLES = (f"m.alice\t{NATIONALITY}\tm.france\n"
           f"m.alice\t{SPOUSE}\tm.bob\n"
           f"m.bob\t{LONG}\tm.film\n"
           f"m.bob\t{TICK}\tm.carol\n")


@pytest.fixture
def client(settings: Settings, driver: Driver, tmp_path: Path) -> Iterator[TestClient]:
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    app_settings = settings.model_copy(update={"api_keys": f"admin:{ADMIN_KEY}"})
    app = create_app(app_settings, driver)
    runner = MigrationRunner(driver, app_settings, locations=[],
                             upload_dir=tmp_path / "uploads", namespace=namespace)
    app.dependency_overrides[get_runner] = lambda: runner
    with TestClient(app) as test_client:
        yield test_client
    driver.execute_query(CLEANUP_NAMESPACE_QUERY, {"namespace": namespace},
                         database_=settings.neo4j_database)


def test_freebase_style_types_load_and_read_back(client: TestClient, driver: Driver,
                                                 settings: Settings, domain: str) -> None:
    assert len(LONG) == 70
    response = client.post("/v1/migrations", headers=ADMIN, files=[
        ("files", ("manifest.yaml", f"domain: {domain}\ntriples:\n  - file: triples.tsv\n"
                                    "    uppercase: false\n", "text/yaml")),
        ("files", ("triples.tsv", TRIPLES, "text/tab-separated-values"))])
    assert response.status_code == 201, response.text
    assert response.json()["applied"][0]["relationships_created"] == 4

    alice, bob = f"{domain}:m.alice", f"{domain}:m.bob"
    neighbours = client.get(f"/v1/entities/{alice}/neighbors", headers=ADMIN,
                            params={"relation_type": NATIONALITY})
    assert neighbours.status_code == 200, neighbours.text
    assert [(n["relation"]["type"], n["entity"]["uid"]) for n in neighbours.json()] == [
        (NATIONALITY, f"{domain}:m.france")]
    everything = client.get(f"/v1/entities/{bob}/neighbors", headers=ADMIN).json()
    assert {n["relation"]["type"] for n in everything} == {SPOUSE, LONG, TICK}

    paths = client.get("/v1/paths", headers=ADMIN, params={
        "source": f"{domain}:m.france", "target": f"{domain}:m.carol", "max_hops": 4,
        "relation_type": [NATIONALITY, SPOUSE, TICK]})
    assert paths.status_code == 200, paths.text
    [path] = paths.json()
    assert [r["type"] for r in path["relations"]] == [NATIONALITY, SPOUSE, TICK]
    # an unknown type is still refused against the live schema, with its name
    unknown = client.get(f"/v1/entities/{alice}/neighbors", headers=ADMIN,
                         params={"relation_type": "/people/person/nope"})
    assert unknown.status_code == 422 and "/people/person/nope" in unknown.text

    # the QA retrieval's Cypher quotes every type (backtick doubled) and counts them right
    queries = action_queries([NATIONALITY, SPOUSE, LONG, TICK])
    records, _, _ = driver.execute_query(queries.degrees, {"uids": [alice, bob]},
                                         database_=settings.neo4j_database)
    degrees = {r["uid"]: dict(zip(queries.actions, r["degrees"], strict=True)) for r in records}
    assert degrees[alice][(NATIONALITY, "out")] == 1 and degrees[alice][(SPOUSE, "out")] == 1
    assert degrees[bob][(SPOUSE, "in")] == 1 and degrees[bob][(TICK, "out")] == 1
    assert degrees[bob][(LONG, "out")] == 1


def test_unstorable_type_names_are_422_with_the_line(client: TestClient, domain: str) -> None:
    triples = "a\tfine\tb\na\tbad\\u0060name\tb\na\t\tb\na\t" + "y" * 513 + "\tb\n"
    response = client.post("/v1/migrations", headers=ADMIN, files=[
        ("files", ("manifest.yaml", f"domain: {domain}\ntriples:\n  - file: triples.tsv\n",
                   "text/yaml")),
        ("files", ("triples.tsv", triples, "text/tab-separated-values"))])
    assert response.status_code == 422, response.text
    lines = {p["line"] for p in response.json()["error"]["details"]}
    assert lines == {2, 3, 4}
    assert client.get(f"/v1/entities/{domain}:a", headers=ADMIN).status_code == 404
