"""/v1/migrations against the real Neo4j: list, upload a triples domain (files or archive),
validation errors as 422 with file and line, size limits as 413, admin only."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver

from api.deps import get_runner
from api.main import create_app
from core.settings import Settings
from graph.migrate.runner import MigrationRunner
from tests.conftest import CLEANUP_NAMESPACE_QUERY

pytestmark = pytest.mark.integration

ADMIN_KEY = "admin-" + uuid.uuid4().hex
READER_KEY = "reader-" + uuid.uuid4().hex
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def client(settings: Settings, driver: Driver, tmp_path: Path) -> Iterator[TestClient]:
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    app_settings = settings.model_copy(update={
        "api_keys": f"admin:{ADMIN_KEY},reader:{READER_KEY}", "max_upload_bytes": 20_000})
    app = create_app(app_settings, driver)
    (tmp_path / "migrations").mkdir()
    runner = MigrationRunner(driver, app_settings, locations=[tmp_path / "migrations"],
                             upload_dir=tmp_path / "uploads", namespace=namespace)
    app.dependency_overrides[get_runner] = lambda: runner
    with TestClient(app) as test_client:
        yield test_client
    driver.execute_query(CLEANUP_NAMESPACE_QUERY, {"namespace": namespace},
                         database_=settings.neo4j_database)


TRIPLES = (
    "acme\tcompetes_with\tglobex\n"
    "acme\theadquartered_in\tparis\n"
    "globex\theadquartered_in\tberlin\n"
)
ENTITIES = "id\tname\ttype\nacme\tAcme Corp\tCompany\nglobex\tGlobex\tCompany\nparis\tParis\tCity\n"


def manifest(domain: str) -> str:
    return (f"domain: {domain}\ndefault_type: Place\nnodes:\n  - file: entities.tsv\n"
            "triples:\n  - file: triples.tsv\n")


def test_upload_triples_domain_then_list(client: TestClient, domain: str) -> None:
    response = client.post("/v1/migrations", headers=ADMIN, files=[
        ("files", ("manifest.yaml", manifest(domain), "text/yaml")),
        ("files", ("triples.tsv", TRIPLES, "text/tab-separated-values")),
        ("files", ("entities.tsv", ENTITIES, "text/tab-separated-values")),
    ])
    assert response.status_code == 201, response.text
    [applied] = response.json()["applied"]
    assert (applied["version"], applied["nodes_created"], applied["relationships_created"]) == (
        1, 4, 3)
    assert applied["description"] == f"load {domain}"

    # The domain is readable through the foundation API.
    entity = client.get(f"/v1/entities/{domain}:acme", headers=ADMIN)
    assert entity.status_code == 200 and entity.json()["name"] == "Acme Corp"
    berlin = client.get(f"/v1/entities/{domain}:berlin", headers=ADMIN).json()
    assert berlin["types"] == ["Place"]

    listing = client.get("/v1/migrations", headers=ADMIN)
    assert listing.status_code == 200
    [row] = listing.json()["migrations"]
    assert row["state"] == "applied" and row["applied"]["relationships_created"] == 3
    assert listing.json()["lock"] is None

    # Readers may not list or upload.
    assert client.get("/v1/migrations", headers={"X-API-Key": READER_KEY}).status_code == 403
    assert client.get("/v1/migrations").status_code == 401


def test_upload_zip_archive(client: TestClient, domain: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pkg/manifest.yaml", manifest(domain))
        archive.writestr("pkg/triples.tsv", TRIPLES)
        archive.writestr("pkg/entities.tsv", ENTITIES)
    response = client.post("/v1/migrations", headers=ADMIN, data={"slug": "companies"},
                           files=[("files", ("pkg.zip", buffer.getvalue(), "application/zip"))])
    assert response.status_code == 201, response.text
    [applied] = response.json()["applied"]
    assert (applied["script"], applied["label"], applied["source"]) == (
        "U1__companies", "U1", "upload")


def test_invalid_package_is_422_with_lines_and_writes_nothing(client: TestClient,
                                                              domain: str) -> None:
    bad_triples = TRIPLES + "acme\tpart\\of\tglobex\n" + "lonely\n"
    response = client.post("/v1/migrations", headers=ADMIN, files=[
        ("files", ("manifest.yaml", manifest(domain), "text/yaml")),
        ("files", ("triples.tsv", bad_triples, "text/plain")),
        ("files", ("entities.tsv", ENTITIES + "acme\tAcme again\tCompany\n", "text/plain")),
    ])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    problems = {(Path(p["file"]).name, p["line"]) for p in error["details"]}
    assert {("triples.tsv", 4), ("triples.tsv", 5), ("entities.tsv", 5)} <= problems
    assert client.get(f"/v1/entities/{domain}:acme", headers=ADMIN).status_code == 404
    assert client.get("/v1/migrations", headers=ADMIN).json()["migrations"] == []

    # A package without a manifest, and one over the size limit.
    response = client.post("/v1/migrations", headers=ADMIN,
                           files=[("files", ("triples.tsv", TRIPLES, "text/plain"))])
    assert response.status_code == 422 and "manifest" in response.json()["error"]["message"]
    response = client.post("/v1/migrations", headers=ADMIN, files=[
        ("files", ("manifest.yaml", manifest(domain), "text/yaml")),
        ("files", ("triples.tsv", "a\tr\tb\n" * 5000, "text/plain"))])
    assert response.status_code == 413
    assert client.get("/v1/migrations", headers=ADMIN).json()["migrations"] == []


def test_ask_sees_an_uploaded_migration_at_once(client: TestClient, domain: str) -> None:
    def upload(slug: str, triples: str, entities: str) -> None:
        response = client.post("/v1/migrations", headers=ADMIN, data={"slug": slug}, files=[
            ("files", ("manifest.yaml", manifest(domain), "text/yaml")),
            ("files", ("triples.tsv", triples, "text/tab-separated-values")),
            ("files", ("entities.tsv", entities, "text/tab-separated-values"))])
        assert response.status_code == 201, response.text

    def answers() -> set[str]:
        response = client.post("/v1/ask", headers=ADMIN, json={
            "question": "Which companies does Acme Corp compete with?", "domain": domain,
            "mode": "zero-shot", "max_hops": 1})
        assert response.status_code == 200, response.text
        return {a["name"] for a in response.json()["answers"]}

    upload("first", TRIPLES, ENTITIES)
    assert answers() == {"Globex"}  # read once, and cached by the service
    # a second load of the domain adds another "Acme Corp" (a load only creates entities)
    upload("second", "acme2\tcompetes_with\tinitech\n",
           "id\tname\ttype\nacme2\tAcme Corp\tCompany\ninitech\tInitech\tCompany\n")
    assert answers() == {"Globex", "Initech"}
