"""Managed, scoped API keys against the real Neo4j: revocation reaches a running API, and a
key limited to one domain cannot reach another through any route."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver
from typer.testing import CliRunner

from api.deps import get_runner
from api.main import create_app
from api.security import create_key
from cli.main import app as cli_app
from core.settings import Settings, get_settings
from graph.writer import delete_domain, entity_row, relation_row, write_entities, write_relations
from tests.conftest import load_toy_graph

pytestmark = pytest.mark.integration

# domain B: names of its own, so that a question naming them can only be about B
B_ENTITIES = [("X1", "Quokka fever", "Disease"), ("X2", "WOMB1", "Gene")]


@dataclass
class TwoDomains:
    a: str
    b: str
    a_uids: dict[str, str]
    b_uids: dict[str, str]


@pytest.fixture
def two_domains(driver: Driver, settings: Settings) -> Iterator[TwoDomains]:
    """Domain A (the toy medical graph) and domain B, linked so that the shortest path from
    A's FBN1 to A's COL5A1 runs through B (3 hops) and the one inside A has 4."""
    database = settings.neo4j_database
    a, b = f"ta{uuid.uuid4().hex[:8]}", f"tb{uuid.uuid4().hex[:8]}"
    a_uids = load_toy_graph(driver, database, a)
    b_uids = {sid: f"{b}:{sid}" for sid, *_ in B_ENTITIES}
    write_entities(driver, database, [entity_row(b_uids[sid], name, b, [etype])
                                      for sid, name, etype in B_ENTITIES])
    write_relations(driver, database, [
        relation_row(b_uids["X2"], "ASSOCIATED_WITH", b_uids["X1"], source="toy"),
        relation_row(a_uids["NCBIGene:2200"], "LINKED_TO", b_uids["X2"], source="toy"),
        relation_row(b_uids["X1"], "LINKED_TO", a_uids["NCBIGene:1289"], source="toy"),
    ])
    yield TwoDomains(a, b, a_uids, b_uids)
    delete_domain(driver, database, a)
    delete_domain(driver, database, b)


@pytest.fixture
def app_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"api_keys_file": tmp_path / "api_keys.json",
                                       "api_keys": None, "home": tmp_path})


@pytest.fixture
def client(app_settings: Settings, driver: Driver) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings, driver)) as test_client:
        yield test_client


def test_revoked_key_is_refused_by_a_running_api(
    app_settings: Settings, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = create_key(app_settings, "reader", "soon-revoked")
    other = create_key(app_settings, "reader", "stays")
    headers = {"X-API-Key": made.key}
    assert client.get("/v1/schema", headers=headers).status_code == 200

    monkeypatch.setenv("KGR_API_KEYS_FILE", str(app_settings.keys_file))
    monkeypatch.delenv("KGR_API_KEYS", raising=False)
    get_settings.cache_clear()
    try:
        listed = CliRunner().invoke(cli_app, ["keys", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        rows = {row["id"]: row for row in json.loads(listed.output)}
        assert rows[made.key_id]["role"] == "reader" and rows[made.key_id]["revoked"] == ""
        assert made.key not in listed.output
        result = CliRunner().invoke(cli_app, ["keys", "revoke", made.key_id])
        assert result.exit_code == 0, result.output
        revoked_at = time.monotonic()
        missing = CliRunner().invoke(cli_app, ["keys", "revoke", "key_nope"])
        assert missing.exit_code != 0 and "no API key" in missing.output
    finally:
        get_settings.cache_clear()

    status = 200
    while status == 200 and time.monotonic() - revoked_at < 2.0:
        status = client.get("/v1/schema", headers=headers).status_code
        time.sleep(0.1)
    assert status == 401, "a revoked key still worked 2 s after `kgr keys revoke`"
    assert client.get("/v1/schema", headers={"X-API-Key": other.key}).status_code == 200


def test_a_key_for_domain_a_never_reaches_domain_b(
    app_settings: Settings, client: TestClient, two_domains: TwoDomains
) -> None:
    d = two_domains
    everything = {"X-API-Key": create_key(app_settings, "reader", "all").key}
    only_a = {"X-API-Key": create_key(app_settings, "reader", "a", domains=[d.a]).key}
    fbn1, col5a1 = d.a_uids["NCBIGene:2200"], d.a_uids["NCBIGene:1289"]
    quokka = d.b_uids["X1"]

    # the unscoped key sees the shortcut through B; the scoped one the longer path inside A
    path = {"source": fbn1, "target": col5a1, "max_hops": 4}
    wide = client.get("/v1/paths", params=path, headers=everything).json()
    assert {n["domain"] for p in wide for n in p["nodes"]} == {d.a, d.b}
    narrow = client.get("/v1/paths", params=path, headers=only_a)
    assert narrow.status_code == 200 and narrow.json()
    assert all(len(p["relations"]) == 4 for p in narrow.json())
    assert {n["domain"] for p in narrow.json() for n in p["nodes"]} == {d.a}

    # an entity of B: 404, exactly as an unknown uid
    for url in (f"/v1/entities/{quokka}", f"/v1/entities/{quokka}/neighbors",
                f"/v1/entities/{quokka}/similar"):
        response = client.get(url, headers=only_a)
        assert response.status_code == 404, url
        assert response.json()["error"]["message"] == f"no entity with uid {quokka!r}"
        assert client.get(url.replace(quokka, f"{d.a}:nope"), headers=only_a).status_code == 404
    assert client.get(f"/v1/entities/{quokka}", headers=everything).status_code == 200
    assert client.get("/v1/predict", params={"head": quokka, "relation": "ASSOCIATED_WITH"},
                      headers=only_a).status_code == 404
    assert client.get("/v1/paths", params={"source": fbn1, "target": quokka},
                      headers=only_a).status_code == 404

    neighbours = client.get(f"/v1/entities/{fbn1}/neighbors", headers=only_a).json()
    assert neighbours and {n["entity"]["domain"] for n in neighbours} == {d.a}
    assert d.b in {n["entity"]["domain"] for n in client.get(
        f"/v1/entities/{fbn1}/neighbors", headers=everything).json()}

    # search: B's names find nothing; naming B's domain is an unknown domain
    assert client.get("/v1/entities", params={"q": "quokka"}, headers=only_a).json()[
        "items"] == []
    assert client.get("/v1/entities", params={"q": "quokka"}, headers=everything).json()[
        "items"][0]["uid"] == quokka
    assert client.get("/v1/entities", params={"domain": d.b},
                      headers=only_a).status_code == 404
    listing = client.get("/v1/entities", params={"limit": 500}, headers=only_a).json()
    assert {e["domain"] for e in listing["items"]} == {d.a}

    # subgraph: never expands into B; a B seed is unknown
    sub = client.post("/v1/subgraph", json={"seeds": [fbn1], "hops": 3, "max_nodes": 500},
                      headers=only_a).json()
    assert {n["domain"] for n in sub["nodes"]} == {d.a}
    assert all(r["source"].startswith(d.a) and r["target"].startswith(d.a)
               for r in sub["relations"])
    assert client.post("/v1/subgraph", json={"seeds": [quokka]},
                       headers=only_a).status_code == 404

    # schema: only A, and only A's types
    schema = client.get("/v1/schema", headers=only_a).json()
    assert [x["domain"] for x in schema["domains"]] == [d.a]
    assert "LINKED_TO" in schema["relation_types"]  # A's FBN1 -LINKED_TO-> B
    assert set(schema["entity_types"]) == {"Disease", "Gene", "Phenotype"}

    # models, encoder status and phrasings of B: unknown
    for url in (f"/v1/embeddings/{d.b}", f"/v1/models/qa/{d.b}"):
        assert client.get(url, headers=only_a).status_code == 404, url
    assert client.get("/v1/ask/phrasings", params={"domain": d.b},
                      headers=only_a).status_code == 404


def test_ask_considers_only_the_keys_domains(
    app_settings: Settings, client: TestClient, two_domains: TwoDomains
) -> None:
    d = two_domains
    everything = {"X-API-Key": create_key(app_settings, "reader", "all").key}
    only_a = {"X-API-Key": create_key(app_settings, "reader", "a", domains=[d.a]).key}
    question = {"question": "Which genes are associated with Quokka fever?",
                "mode": "zero-shot"}

    assert client.post("/v1/ask", json={**question, "domain": d.b},
                       headers=only_a).status_code == 404
    scoped = client.post("/v1/ask", json=question, headers=only_a)
    assert scoped.status_code == 200, scoped.text
    body = scoped.json()
    assert body["domain"] != d.b and body["answers"] == []
    assert d.b not in scoped.text
    batch = client.post("/v1/ask/batch", json={"questions": [question["question"]],
                                               "mode": "zero-shot"}, headers=only_a).json()
    assert d.b not in str(batch)

    wide = client.post("/v1/ask", json={**question, "domain": d.b}, headers=everything).json()
    assert wide["domain"] == d.b
    assert [a["uid"] for a in wide["answers"]][:1] == [d.b_uids["X2"]]


def test_scoped_admin_may_not_touch_other_domains(
    app_settings: Settings, client: TestClient, two_domains: TwoDomains
) -> None:
    d = two_domains
    admin_a = {"X-API-Key": create_key(app_settings, "admin", "admin-a", domains=[d.a]).key}
    assert client.post("/v1/train/encoder", json={"domain": d.b},
                       headers=admin_a).status_code == 404
    assert client.get("/v1/migrations", headers=admin_a).status_code == 403
    manifest = f"domain: {d.b}\nnodes: []\n".encode()
    upload = client.post("/v1/migrations", headers=admin_a,
                         files=[("files", ("manifest.yaml", manifest))])
    assert upload.status_code == 403, upload.text
    assert client.delete(f"/v1/models/qa/{d.b}/v1", headers=admin_a).status_code == 404


PATIENTS = ("id\tname\ttype\tmrn\tdob\tward\n"
            "p1\tPatient Alpha\tPatient\tMRN-777001\t1961-02-03\teast\n"
            "p2\tPatient Beta\tPatient\tMRN-777002\t1975-06-07\twest\n"
            "w1\tCardiology ward\tWard\t\t\t\n")
STAYS = "p1\tstays_in\tw1\np2\tstays_in\tw1\n"
SECRETS = ("MRN-777001", "MRN-777002", "1961-02-03", "1975-06-07")


def patients_manifest(domain: str) -> str:
    return (f"domain: {domain}\nnodes:\n  - file: patients.tsv\n"
            "    properties: {mrn: str, dob: str, ward: str}\n"
            "triples:\n  - file: stays.tsv\nsensitive: [mrn, dob]\n")


@pytest.fixture
def patients(app_settings: Settings, client: TestClient, driver: Driver, settings: Settings,
             tmp_path: Path) -> Iterator[str]:
    """A domain loaded by an uploaded migration that declares mrn and dob sensitive."""
    from graph.migrate.runner import MigrationRunner
    from tests.conftest import CLEANUP_NAMESPACE_QUERY

    domain, namespace = f"tp{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex[:10]}"
    (tmp_path / "migrations").mkdir()
    runner = MigrationRunner(driver, app_settings, locations=[tmp_path / "migrations"],
                             upload_dir=tmp_path / "uploads", namespace=namespace)
    client.app.dependency_overrides[get_runner] = lambda: runner  # type: ignore[attr-defined]
    admin = {"X-API-Key": create_key(app_settings, "admin", "loader").key}
    response = client.post("/v1/migrations", headers=admin, files=[
        ("files", ("manifest.yaml", patients_manifest(domain))),
        ("files", ("patients.tsv", PATIENTS)), ("files", ("stays.tsv", STAYS))])
    assert response.status_code == 201, response.text
    yield domain
    delete_domain(driver, settings.neo4j_database, domain)
    driver.execute_query(CLEANUP_NAMESPACE_QUERY, {"namespace": namespace},
                         database_=settings.neo4j_database)


def test_sensitive_properties_only_for_keys_with_the_scope(
    app_settings: Settings, client: TestClient, patients: str
) -> None:
    plain = {"X-API-Key": create_key(app_settings, "reader", "plain").key}
    admin = {"X-API-Key": create_key(app_settings, "admin", "admin-plain").key}
    cleared = {"X-API-Key": create_key(app_settings, "reader", "cleared", sensitive=True).key}
    alpha, beta, ward = (f"{patients}:{x}" for x in ("p1", "p2", "w1"))

    def calls(headers: dict[str, str]) -> list[str]:
        responses = [
            client.get(f"/v1/entities/{alpha}", headers=headers),
            client.get("/v1/entities", params={"domain": patients}, headers=headers),
            client.get("/v1/entities", params={"q": "patient alpha"}, headers=headers),
            client.get(f"/v1/entities/{ward}/neighbors", headers=headers),
            client.get("/v1/paths", params={"source": alpha, "target": beta},
                       headers=headers),
            client.post("/v1/subgraph", json={"seeds": [ward]}, headers=headers),
            client.post("/v1/ask", json={"question": "Which ward does Patient Alpha stay in?",
                                         "domain": patients, "mode": "zero-shot"},
                        headers=headers),
        ]
        for response in responses:
            assert response.status_code == 200, (response.url, response.text)
        return [r.text for r in responses]

    for headers in (plain, admin):  # the admin role alone does not give the scope
        texts = calls(headers)
        assert all(secret not in text for text in texts for secret in SECRETS)
        assert all('"mrn"' not in text and '"dob"' not in text for text in texts)
        assert '"ward":"east"' in texts[0]  # the other declared properties are shown
    seen = client.get(f"/v1/entities/{alpha}", headers=cleared).json()["properties"]
    assert seen["mrn"] == "MRN-777001" and seen["dob"] == "1961-02-03"
    assert any("MRN-777002" in text for text in calls(cleared))
    # full-text search covers names and aliases only: a sensitive value finds nothing
    for headers in (plain, cleared):
        assert client.get("/v1/entities", params={"q": "MRN-777001"},
                          headers=headers).json()["items"] == []


def test_audit_trail_has_one_line_per_request(
    app_settings: Settings, client: TestClient, two_domains: TwoDomains,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.audit import audit_path

    d = two_domains
    made = create_key(app_settings, "reader", "audited", domains=[d.a])
    headers = {"X-API-Key": made.key}
    fbn1 = d.a_uids["NCBIGene:2200"]
    path = audit_path(app_settings)
    before = path.read_text().count("\n") if path.exists() else 0
    client.get(f"/v1/entities/{fbn1}", headers=headers)
    neighbours = client.get(f"/v1/entities/{fbn1}/neighbors", headers=headers).json()
    client.get(f"/v1/entities/{d.b_uids['X1']}", headers=headers)  # 404
    client.get("/v1/schema", headers={"X-API-Key": "wrong"})  # 401
    client.get("/healthz")  # probes are not audited
    lines = [json.loads(line) for line in path.read_text().splitlines()[before:]]
    assert [(r["route"], r["status"]) for r in lines] == [
        ("/v1/entities/{uid}", 200), ("/v1/entities/{uid}/neighbors", 200),
        ("/v1/entities/{uid}", 404), ("/v1/schema", 401)]
    assert [r["key_id"] for r in lines] == [made.key_id] * 3 + [None]
    assert lines[0]["uids"] == [fbn1] and lines[0]["domains"] == [d.a]
    assert set(lines[1]["uids"]) == {n["entity"]["uid"] for n in neighbours}
    assert lines[1]["uids_total"] == len(lines[1]["uids"])
    assert lines[2]["uids"] == [] and lines[2]["domains"] == []
    assert made.key not in path.read_text()

    global_admin = {"X-API-Key": create_key(app_settings, "admin", "auditor").key}
    mine = client.get("/v1/audit", params={"key_id": made.key_id},
                      headers=global_admin).json()
    assert [r["status"] for r in mine] == [200, 200, 404]
    assert client.get("/v1/audit", headers=headers).status_code == 403

    monkeypatch.setenv("KGR_HOME", str(app_settings.home))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["audit", "--key", made.key_id, "--json",
                                              "--since", lines[0]["time"]])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    # the refused look at /v1/audit is in the trail too
    assert [(r["route"], r["status"]) for r in records][2:] == [
        ("/v1/entities/{uid}", 404), ("/v1/audit", 403)]
    assert len(records) == 4
