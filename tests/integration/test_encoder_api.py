"""/v1/entities/{uid}/similar, /v1/predict, /v1/embeddings/{domain} and /v1/train/encoder."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient
from neo4j import Driver

from api.main import create_app
from core.settings import Settings
from graph.encoder import EncoderConfig, train_domain
from graph.encoder.checkpoint import encoder_artifacts
from graph.encoder.serve import drop_embeddings

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """Tiny models: one thread is several times faster than two on a shared, busy CPU."""
    torch.set_num_threads(1)

ADMIN, READER = "admin-key-enc-123", "reader-key-enc-456"
TINY = EncoderConfig(dim=16, epochs=60, eval_every=20, batch_size=64, lr=0.2,
                     valid_fraction=0.0, test_fraction=0.0, n3=0.0)


@pytest.fixture
def client(settings: Settings, driver: Driver) -> Iterator[TestClient]:
    app_settings = settings.model_copy(update={"api_keys": f"admin:{ADMIN},reader:{READER}"})
    with TestClient(create_app(app_settings, driver)) as test_client:
        yield test_client


@pytest.fixture
def trained(driver: Driver, settings: Settings, toy_graph: dict[str, str],
            domain: str) -> Iterator[tuple[dict[str, str], str]]:
    version = train_domain(settings, driver, domain, TINY)
    yield toy_graph, version
    drop_embeddings(driver, settings.neo4j_database, domain)
    shutil.rmtree(encoder_artifacts(settings).domain_dir(domain), ignore_errors=True)


def get(client: TestClient, url: str, **params: object) -> tuple[int, dict]:
    response = client.get(url, params=params, headers={"X-API-Key": READER})
    return response.status_code, response.json()


def test_similar_and_predict_carry_the_version(client: TestClient,
                                               trained: tuple[dict[str, str], str],
                                               domain: str) -> None:
    toy, version = trained
    marfan = toy["OMIM:154700"]
    status, body = get(client, f"/v1/entities/{marfan}/similar", k=3)
    assert status == 200, body
    assert body["version"] == version and body["domain"] == domain
    assert len(body["items"]) == 3 and marfan not in {i["uid"] for i in body["items"]}
    status, body = get(client, f"/v1/entities/{marfan}/similar", k=10, type="Gene")
    assert status == 200 and {i["name"] for i in body["items"]} == {"FBN1", "COL5A1"}

    status, body = get(client, "/v1/predict", head=marfan, relation="HAS_PHENOTYPE", k=3)
    assert status == 200, body
    assert body["version"] == version
    assert {i["name"] for i in body["items"]} == {"Arachnodactyly", "Tall stature",
                                                  "Joint hypermobility"}
    assert all(i["known"] for i in body["items"])
    status, body = get(client, "/v1/predict", tail=marfan, relation="ASSOCIATED_WITH", k=2)
    assert status == 200 and body["items"][0]["name"] == "FBN1" and body["items"][0]["known"]

    status, body = get(client, f"/v1/embeddings/{domain}")
    assert status == 200 and body["version"] == body["served_version"] == version
    assert body["dim"] == 16


def test_bad_input_gives_4xx(client: TestClient, trained: tuple[dict[str, str], str],
                             domain: str) -> None:
    toy, _ = trained
    marfan = toy["OMIM:154700"]
    cases = [
        ("/v1/predict", {"head": marfan, "relation": "NOT_A_RELATION"}, 422),
        ("/v1/predict", {"head": marfan, "relation": "HAS_PHENOTYPE`) DETACH DELETE n"}, 422),
        ("/v1/predict", {"relation": "HAS_PHENOTYPE"}, 422),
        ("/v1/predict", {"head": marfan, "tail": marfan, "relation": "HAS_PHENOTYPE"}, 422),
        ("/v1/predict", {"head": f"{domain}:nope", "relation": "HAS_PHENOTYPE"}, 404),
        ("/v1/predict", {"head": marfan, "relation": "HAS_PHENOTYPE", "k": 0}, 422),
        (f"/v1/entities/{domain}:nope/similar", {}, 404),
        (f"/v1/entities/{marfan}/similar", {"type": "NotAType"}, 422),
        (f"/v1/entities/{marfan}/similar", {"domain": "other_domain"}, 422),
        ("/v1/embeddings/no_such_domain_z", {}, 404),
    ]
    for url, params, expected in cases:
        status, body = get(client, url, **params)
        assert status == expected, (url, params, body)
        assert "error" in body
    assert client.get("/v1/predict", params={"head": marfan, "relation": "IS_A"}).status_code == 401


def test_untrained_domain_is_not_ready(client: TestClient, toy_graph: dict[str, str]) -> None:
    status, body = get(client, f"/v1/entities/{toy_graph['OMIM:154700']}/similar")
    assert status == 409 and body["error"]["code"] == "model_not_ready"
    status, body = get(client, "/v1/predict", head=toy_graph["OMIM:154700"], relation="IS_A")
    assert status == 409


def test_training_job_runs_once_per_domain(client: TestClient, driver: Driver,
                                           settings: Settings, toy_graph: dict[str, str],
                                           domain: str) -> None:
    admin = {"X-API-Key": ADMIN}
    try:
        assert client.post("/v1/train/encoder", json={"domain": domain},
                           headers={"X-API-Key": READER}).status_code == 403
        bad = client.post("/v1/train/encoder", json={"domain": "no_such_domain_w"},
                          headers=admin)
        assert bad.status_code == 404
        assert client.post("/v1/train/encoder", json={"domain": domain, "dim": 15,
                                                      "decoder": "complex"},
                           headers=admin).status_code == 422
        body = {"domain": domain, "epochs": 40, "dim": 16, "batch_size": 16}
        first = client.post("/v1/train/encoder", json=body, headers=admin)
        assert first.status_code == 202, first.json()
        second = client.post("/v1/train/encoder", json=body, headers=admin)
        assert second.status_code == 409
        job_id = first.json()["id"]
        deadline = time.monotonic() + 120
        while True:
            job = client.get(f"/v1/jobs/{job_id}", headers=admin).json()
            if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert job["status"] == "succeeded", job
        assert job["progress"] == 1.0
        version = job["result"]["version"]
        status, similar = get(client, f"/v1/entities/{toy_graph['OMIM:154700']}/similar", k=2)
        assert status == 200 and similar["version"] == version
    finally:
        drop_embeddings(driver, settings.neo4j_database, domain)
        shutil.rmtree(encoder_artifacts(settings).domain_dir(domain), ignore_errors=True)
