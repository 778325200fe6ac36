"""Stored model versions (fusion.serve.versions) against the real Neo4j: /v1/models, `kgr models`,
and a
QA graph head that is only used with the encoder it was trained with."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from neo4j import Driver
from typer.testing import CliRunner

from api.main import create_app
from cli.main import app as cli_app
from core.settings import Settings
from fusion.learn.questions import generate_questions
from fusion.learn.train import train_domain as train_qa
from fusion.model.config import TrainConfig
from fusion.model.graphdata import DomainGraph
from fusion.serve.pipeline import QAService
from fusion.serve.versions import activate_version, list_versions
from graph.encoder import train_domain as train_encoder
from graph.encoder.checkpoint import encoder_artifacts
from graph.encoder.serve import active_embedding
from tests.integration.models_support import ADMIN, READER, TINY, cli_settings

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """Tiny models: one thread is several times faster than two on a shared, busy CPU."""
    torch.set_num_threads(1)


@pytest.fixture
def client(settings: Settings, driver: Driver) -> Iterator[TestClient]:
    app_settings = settings.model_copy(update={"api_keys": f"admin:{ADMIN},reader:{READER}"})
    with TestClient(create_app(app_settings, driver)) as test_client:
        yield test_client


def versions_of(client: TestClient, kind: str, domain: str) -> list[dict]:
    response = client.get(f"/v1/models/{kind}/{domain}", headers={"X-API-Key": READER})
    assert response.status_code == 200, response.text
    return response.json()


def test_rolling_the_encoder_back_serves_its_embeddings_and_the_active_one_stays(
    client: TestClient, two_encoders: tuple[str, str], driver: Driver, settings: Settings,
    domain: str,
) -> None:
    first, second = two_encoders
    listed = versions_of(client, "encoder", domain)
    assert [(v["version"], v["active"], v["served"]) for v in listed] == [
        (first, False, False), (second, True, True)]
    assert listed[0]["size_bytes"] > 0 and listed[0]["created_at"].endswith("Z")

    admin = {"X-API-Key": ADMIN}
    refused = client.post(f"/v1/models/encoder/{domain}/active", json={"version": first},
                          headers={"X-API-Key": READER})
    assert refused.status_code == 403
    back = finished(client, client.post(f"/v1/models/encoder/{domain}/active",
                                        json={"version": first}, headers=admin))
    assert back["status"] == "succeeded", back
    assert back["result"]["active"] is True and back["result"]["served"] is True
    pointer = active_embedding(driver, settings.neo4j_database, domain)
    assert pointer is not None and pointer.version == first

    # the active version cannot go; an inactive one can, once
    conflict = client.delete(f"/v1/models/encoder/{domain}/{first}", headers=admin)
    assert conflict.status_code == 409 and "active" in conflict.json()["error"]["message"]
    assert client.delete(f"/v1/models/encoder/{domain}/{second}", headers=admin).status_code == 204
    assert [v["version"] for v in versions_of(client, "encoder", domain)] == [first]
    gone = client.delete(f"/v1/models/encoder/{domain}/{second}", headers=admin)
    assert gone.status_code == 404

    # bad input: a version that is not stored, a name that is no version, an unknown kind or
    # domain, a keep below one; nothing changes
    for url, body, status in (
        (f"/v1/models/encoder/{domain}/active", {"version": "v20990101-000000-000000"}, 404),
        (f"/v1/models/encoder/{domain}/active", {"version": "../../etc"}, 422),
        (f"/v1/models/weights/{domain}/active", {"version": first}, 422),
        ("/v1/models/encoder/no-such-domain/active", {"version": first}, 404),
        (f"/v1/models/encoder/{domain}/prune", {"keep": 0}, 422),
    ):
        response = client.post(url, json=body, headers=admin)
        assert response.status_code == status, (url, body, response.text)
    assert client.get("/v1/models/qa/no-such-domain",
                      headers={"X-API-Key": READER}).status_code == 404
    pointer = active_embedding(driver, settings.neo4j_database, domain)
    assert pointer is not None and pointer.version == first

    # a stored version that does not load fails its job, and the served one stays
    broken = encoder_artifacts(settings).domain_dir(domain) / "v20300101-000000-000000"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    failed = finished(client, client.post(f"/v1/models/encoder/{domain}/active",
                                          json={"version": broken.name}, headers=admin))
    assert failed["status"] == "failed" and "does not load" in failed["error"], failed
    pointer = active_embedding(driver, settings.neo4j_database, domain)
    assert pointer is not None and pointer.version == first
    assert [v["active"] for v in versions_of(client, "encoder", domain)] == [True, False]

    # training and activation of one kind for one domain exclude each other (409)
    release = threading.Event()
    jobs = client.app.state.jobs
    try:
        job = jobs.submit("train-encoder", domain, lambda progress: {"released": release.wait(30)})
        busy = client.post(f"/v1/models/encoder/{domain}/active", json={"version": first},
                           headers=admin)
        assert busy.status_code == 409 and job.id in busy.json()["error"]["message"]
        other_kind = client.post(f"/v1/models/qa/{domain}/active", json={"version": first},
                                 headers=admin)
        assert other_kind.status_code == 404  # not blocked: no such QA version
    finally:
        release.set()
    while jobs.get(job.id).status != "succeeded":
        time.sleep(0.05)
    release = threading.Event()
    try:
        jobs.submit("activate-encoder", domain, lambda progress: {"released": release.wait(30)})
        training = client.post("/v1/train/encoder", json={"domain": domain}, headers=admin)
        assert training.status_code == 409, training.text
    finally:
        release.set()


def finished(client: TestClient, response: httpx.Response) -> dict:
    """The job that ``response`` started, once it has ended (at most 60 s)."""
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/v1/jobs/{response.json()['id']}",
                         headers={"X-API-Key": ADMIN}).json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_prune_keeps_the_newest_and_the_active(
    client: TestClient, two_encoders: tuple[str, str], driver: Driver, settings: Settings,
    domain: str,
) -> None:
    first, second = two_encoders
    third = train_encoder(settings, driver, domain, TINY, write_back=False)
    activate_version(settings, driver, "encoder", domain, first)
    pruned = client.post(f"/v1/models/encoder/{domain}/prune", json={"keep": 1},
                         headers={"X-API-Key": ADMIN})
    assert pruned.status_code == 200, pruned.text
    assert pruned.json() == {"deleted": [second]}
    assert [v["version"] for v in versions_of(client, "encoder", domain)] == [first, third]


@pytest.mark.slow
def test_a_qa_graph_head_answers_only_with_the_encoder_it_was_trained_with(
    driver: Driver, settings: Settings, two_encoders: tuple[str, str], domain: str,
    toy_graph: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = two_encoders
    activate_version(settings, driver, "encoder", domain, first)
    graph = DomainGraph.load(driver, settings.neo4j_database, domain)
    rows = generate_questions(graph, {1: 16, 2: 8}, "train", seed=3)
    # graph_terms_p=None: the graph head is kept whatever its validation
    result = train_qa(settings, driver, domain, rows,
                      TrainConfig(epochs=3, patience=3, hidden=64, seed=0, graph_terms_p=None),
                      graph=graph)
    assert result["encoder_version"] == first
    service = QAService(settings, driver)
    assert set(service.domain(domain).scorers) == {"graph", "text"}
    [qa] = list_versions(settings, driver, "qa", domain)
    assert qa.encoder_version == first and qa.graph_head_usable is True

    retrained = train_encoder(settings, driver, domain, TINY)  # now active
    assert set(service.domain(domain).scorers) == {"text"}
    answered = service.ask("Which genes are associated with Marfan syndrome?", domain)
    assert answered.models["graph_embeddings"] is False and answered.answers
    assert list_versions(settings, driver, "qa", domain)[0].graph_head_usable is False

    # the CLI rolls the encoder back, and the graph head answers again
    with cli_settings(monkeypatch, settings):
        runner = CliRunner()
        rolled = runner.invoke(cli_app, ["models", "activate", "encoder", domain, first])
        assert rolled.exit_code == 0, rolled.output
        listed = runner.invoke(cli_app, ["models", "list", "encoder", domain, "--json"])
        assert [(v["version"], v["active"]) for v in json.loads(listed.stdout)] == [
            (first, True), (second, False), (retrained, False)]
        refused = runner.invoke(cli_app, ["models", "delete", "encoder", domain, first])
        assert refused.exit_code != 0 and "active" in refused.output
    assert set(service.domain(domain).scorers) == {"graph", "text"}
    assert service.ask("Which genes are associated with Marfan syndrome?",
                       domain).models["graph_embeddings"] is True


def test_each_encoder_version_lists_its_training_history(
    client: TestClient, two_encoders: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
    settings: Settings, domain: str,
) -> None:
    first, _ = two_encoders
    listed = versions_of(client, "encoder", domain)
    for version in listed:
        history = version["history"]
        assert [e["epoch"] for e in history] == list(range(1, TINY.epochs + 1))
        assert all(e["loss"] > 0 and e["seconds"] > 0 for e in history)
        assert all(e["valid_mrr"] is None for e in history)  # TINY has no validation split
        assert version["best_epoch"] == TINY.epochs
    with cli_settings(monkeypatch, settings):
        runner = CliRunner()
        as_json = runner.invoke(cli_app, ["models", "list", "encoder", domain, "--json"])
        assert as_json.exit_code == 0, as_json.output
        assert json.loads(as_json.stdout)[0]["history"] == listed[0]["history"]
        table = runner.invoke(cli_app, ["models", "list", "encoder", domain])
        # the cell is "10 (best 10, 0.02 s)", folded by the table's width
        assert table.exit_code == 0 and "(best" in table.output and " s)" in table.output
    assert first == listed[0]["version"]
