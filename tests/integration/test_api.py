"""The HTTP API against the real Neo4j: every read endpoint, auth, and the error shapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver

from api.main import create_app
from core.settings import Settings
from graph.store import GraphStore

pytestmark = pytest.mark.integration

ADMIN_KEY = "test-admin-key"
READER_KEY = "test-reader-key"
READER = {"X-API-Key": READER_KEY}


@pytest.fixture
def client(settings: Settings, driver: Driver) -> Iterator[TestClient]:
    app_settings = settings.model_copy(
        update={"api_keys": f"admin:{ADMIN_KEY},reader:{READER_KEY}"}
    )
    with TestClient(create_app(app_settings, driver)) as test_client:
        yield test_client


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_missing_or_wrong_key_is_401(client: TestClient, toy_graph: dict[str, str]) -> None:
    uid = toy_graph["OMIM:154700"]
    assert_error(client.get(f"/v1/entities/{uid}"), 401, "unauthenticated")
    assert_error(client.get(f"/v1/entities/{uid}", headers={"X-API-Key": "wrong"}), 401,
                 "unauthenticated")


def test_reader_may_not_use_admin_endpoints(client: TestClient) -> None:
    assert_error(client.get("/v1/jobs", headers=READER), 403, "forbidden")
    assert client.get("/v1/jobs", headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_entity_endpoints(client: TestClient, toy_graph: dict[str, str], domain: str) -> None:
    uid = toy_graph["OMIM:154700"]
    entity = client.get(f"/v1/entities/{uid}", headers=READER).json()
    assert entity["name"] == "Marfan syndrome" and entity["types"] == ["Disease"]

    found = client.get("/v1/entities", params={"q": "marfan", "domain": domain},
                       headers=READER).json()
    assert found["items"][0]["uid"] == uid

    genes = client.get("/v1/entities", params={"type": "Gene", "domain": domain, "limit": 1},
                       headers=READER).json()
    assert len(genes["items"]) == 1 and genes["next_cursor"]
    second = client.get("/v1/entities", params={"type": "Gene", "domain": domain, "limit": 1,
                                                "cursor": genes["next_cursor"]},
                        headers=READER).json()
    assert second["items"][0]["uid"] != genes["items"][0]["uid"]

    neighbours = client.get(f"/v1/entities/{uid}/neighbors",
                            params={"relation_type": "HAS_PHENOTYPE", "direction": "out"},
                            headers=READER).json()
    assert sorted(n["entity"]["name"] for n in neighbours) == [
        "Arachnodactyly", "Joint hypermobility", "Tall stature"]


def test_unknown_uid_is_404(client: TestClient, toy_graph: dict[str, str]) -> None:
    assert_error(client.get("/v1/entities/nope:missing", headers=READER), 404, "not_found")
    assert_error(client.get("/v1/entities/nope:missing/neighbors", headers=READER), 404,
                 "not_found")


@pytest.mark.parametrize("bad", ["X`) DETACH DELETE n //", "HAS_PHENOTYPE`]-() DETACH DELETE n",
                                 "UNKNOWN_TYPE"])
def test_injection_in_relation_type_is_422_and_graph_unchanged(
    client: TestClient, store: GraphStore, toy_graph: dict[str, str], domain: str, bad: str
) -> None:
    before = store.schema_summary().model_dump()
    uid = toy_graph["OMIM:154700"]
    error = assert_error(
        client.get(f"/v1/entities/{uid}/neighbors", params={"relation_type": bad},
                   headers=READER), 422, "invalid_input")
    assert "unknown relationship type" in error["message"]
    assert_error(client.get("/v1/entities", params={"q": "x", "type": bad}, headers=READER),
                 422, "invalid_input")
    assert_error(client.post("/v1/subgraph", json={"seeds": [uid], "relation_types": [bad]},
                             headers=READER), 422, "invalid_input")
    assert store.schema_summary().model_dump() == before


def test_invalid_parameters_are_422_with_the_reason(client: TestClient,
                                                    toy_graph: dict[str, str]) -> None:
    uid = toy_graph["OMIM:154700"]
    error = assert_error(client.get(f"/v1/entities/{uid}/neighbors", params={"limit": 0},
                                    headers=READER), 422, "invalid_request")
    assert "limit" in error["message"]
    error = assert_error(client.get("/v1/paths", params={"source": uid, "target": uid + "x",
                                                         "max_hops": 9}, headers=READER),
                         422, "invalid_request")
    assert "max_hops" in error["message"]
    assert_error(client.get("/v1/entities", params={"cursor": "!!!"}, headers=READER), 422,
                 "invalid_input")


def test_paths_subgraph_and_schema(client: TestClient, toy_graph: dict[str, str],
                                   domain: str) -> None:
    gene, phenotype = toy_graph["NCBIGene:1289"], toy_graph["HP:0001382"]
    paths = client.get("/v1/paths", params={"source": gene, "target": phenotype},
                       headers=READER).json()
    assert [[n["name"] for n in p["nodes"]] for p in paths] == [
        ["COL5A1", "Ehlers-Danlos syndrome", "Joint hypermobility"]]
    assert [r["type"] for r in paths[0]["relations"]] == ["ASSOCIATED_WITH", "HAS_PHENOTYPE"]

    sub = client.post("/v1/subgraph", json={"seeds": [gene], "hops": 2, "max_nodes": 50},
                      headers=READER).json()
    assert {n["name"] for n in sub["nodes"]} == {"COL5A1", "Ehlers-Danlos syndrome",
                                                 "Joint hypermobility"}
    assert len(sub["relations"]) == 2 and sub["truncated"] is False

    schema = client.get("/v1/schema", headers=READER).json()
    mine = next(d for d in schema["domains"] if d["domain"] == domain)
    assert mine["types"] == {"Disease": 2, "Gene": 2, "Phenotype": 4}


def test_openapi_documents_the_resources(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ["/v1/entities", "/v1/entities/{uid}", "/v1/entities/{uid}/neighbors",
                 "/v1/paths", "/v1/subgraph", "/v1/schema", "/healthz", "/readyz"]:
        assert path in spec["paths"], path


def test_metrics_count_requests(client: TestClient) -> None:
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    assert 'kgr_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'kgr_request_seconds_count{route="/healthz"} 1.0' in text
    assert "process_resident_memory_bytes" in text


def test_subgraph_exports_graphml_and_node_link(client: TestClient,
                                                toy_graph: dict[str, str]) -> None:
    import networkx as nx

    body = {"seeds": [toy_graph["OMIM:154700"]], "hops": 1}
    sub = client.post("/v1/subgraph", json=body, headers=READER).json()
    edges = sorted((r["source"], r["target"], r["type"]) for r in sub["relations"])
    assert len(edges) == 4

    exported = client.post("/v1/subgraph", json={**body, "format": "graphml"}, headers=READER)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/graphml+xml")
    back = nx.parse_graphml(exported.text, force_multigraph=True)
    assert set(back.nodes) == {n["uid"] for n in sub["nodes"]}
    assert sorted((s, t, d["type"]) for s, t, d in back.edges(data=True)) == edges
    assert back.nodes[toy_graph["OMIM:154700"]]["name"] == "Marfan syndrome"

    linked = client.post("/v1/subgraph", json={**body, "format": "node-link"}, headers=READER)
    assert linked.headers["content-type"] == "application/json"
    graph = nx.node_link_graph(linked.json(), edges="edges")
    assert sorted((s, t, d["type"]) for s, t, d in graph.edges(data=True)) == edges
    assert_error(client.post("/v1/subgraph", json={**body, "format": "dot"}, headers=READER),
                 422, "invalid_request")
