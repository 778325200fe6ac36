"""Stored model versions against the real Neo4j: /v1/models, `kgr models`, and a QA graph head
that is only used with the encoder it was trained with."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from neo4j import Driver
from typer.testing import CliRunner

from api.main import create_app
from cli.main import app as cli_app
from core.errors import ModelBusyError
from core.settings import Settings, get_settings
from fusion.config import TrainConfig
from fusion.graphdata import DomainGraph
from fusion.pipeline import QAService
from fusion.questions import generate_questions
from fusion.train import train_domain as train_qa
from fusion.versions import activate_version, list_versions
from graph.encoder import EncoderConfig
from graph.encoder import train_domain as train_encoder
from graph.encoder.checkpoint import encoder_artifacts
from graph.encoder.serve import active_embedding, drop_embeddings, write_embeddings
from graph.lock import ModelLock, force_release

pytestmark = pytest.mark.integration

ADMIN, READER = "admin-key-models-123", "reader-key-models-456"
TINY = EncoderConfig(dim=16, epochs=10, eval_every=5, device="cpu", amp=False,
                     valid_fraction=0.0, test_fraction=0.0)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """Tiny models: one thread is several times faster than two on a shared, busy CPU."""
    torch.set_num_threads(1)


@pytest.fixture
def two_encoders(driver: Driver, settings: Settings, toy_graph: dict[str, str],
                 domain: str) -> Iterator[tuple[str, str]]:
    """Two encoder versions of the toy domain, the second active and served."""
    first = train_encoder(settings, driver, domain, TINY)
    second = train_encoder(settings, driver, domain, TINY.model_copy(update={"seed": 1}))
    yield first, second
    drop_embeddings(driver, settings.neo4j_database, domain)
    for kind in ("qa", "encoder"):  # a lock record a failed test left
        force_release(driver, settings.neo4j_database, ModelLock.LABEL, f"{kind}:{domain}")
    for kind in ("qa", "encoder"):
        shutil.rmtree(settings.artifacts_dir / kind / domain, ignore_errors=True)


@pytest.fixture
def client(settings: Settings, driver: Driver) -> Iterator[TestClient]:
    app_settings = settings.model_copy(update={"api_keys": f"admin:{ADMIN},reader:{READER}"})
    with TestClient(create_app(app_settings, driver)) as test_client:
        yield test_client


@contextmanager
def cli_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[None]:
    """The ``kgr`` command run in-process talks to the test run's server and home."""
    monkeypatch.setenv("KGR_HOME", str(settings.home))
    monkeypatch.setenv("KGR_BOLT_PORT", str(settings.bolt_port))
    if settings.neo4j_uri:
        monkeypatch.setenv("NEO4J_URI", settings.neo4j_uri)
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


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


HELD_LOCK_QUERY = """
CREATE (:_ModelLock {name: $name, owner: 'another-run', pid: $pid, host: $host,
        acquired_at: datetime() - duration({seconds: $age}),
        heartbeat: datetime() - duration({seconds: $age})})
"""


def hold_model_lock(driver: Driver, settings: Settings, kind: str, domain: str, pid: int,
                    host: str, age_s: int = 0) -> None:
    """The lock record another run leaves in the graph (pid ``pid`` on ``host``, last heartbeat
    ``age_s`` ago)."""
    driver.execute_query(HELD_LOCK_QUERY, {"name": f"{kind}:{domain}", "pid": pid, "host": host,
                                           "age": age_s}, database_=settings.neo4j_database)


def test_a_model_lock_held_by_another_process_refuses_writers_until_it_is_gone(
    client: TestClient, two_encoders: tuple[str, str], driver: Driver, settings: Settings,
    domain: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = two_encoders
    admin = {"X-API-Key": ADMIN}
    stored = [v.version for v in list_versions(settings, driver, "encoder", domain)]
    other = subprocess.Popen(["sleep", "120"])  # a live process on this host holds the lock
    try:
        hold_model_lock(driver, settings, "encoder", domain, other.pid, socket.gethostname())
        # the API refuses at once (409, with the holder), before a job starts
        for url, body in ((f"/v1/models/encoder/{domain}/active", {"version": first}),
                          ("/v1/train/encoder", {"domain": domain})):
            busy = client.post(url, json=body, headers=admin)
            assert busy.status_code == 409, busy.text
            error = busy.json()["error"]
            assert error["code"] == "model_busy" and f"pid {other.pid}" in error["message"]
        # the QA lock of the domain is another lock: not refused for that (404: no such version)
        assert client.post(f"/v1/models/qa/{domain}/active", json={"version": first},
                           headers=admin).status_code == 404
        # the library and the CLI refuse too, and nothing is stored or switched
        with pytest.raises(ModelBusyError, match=f"pid {other.pid}"):
            train_encoder(settings, driver, domain, TINY)
        hold_model_lock(driver, settings, "qa", domain, other.pid, socket.gethostname())
        rows = [{"question": "Which genes are associated with Marfan syndrome?",
                 "answers": ["FBN1"]}]
        busy = client.post("/v1/train/qa", json={"domain": domain, "data": rows},
                           headers=admin)
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "model_busy"
        with pytest.raises(ModelBusyError, match="qa model"):
            train_qa(settings, driver, domain, rows)
        assert list_versions(settings, driver, "qa", domain) == []
        with cli_settings(monkeypatch, settings):
            refused = CliRunner().invoke(cli_app, ["models", "activate", "encoder", domain,
                                                   first])
        assert refused.exit_code == 5 and "being trained or activated" in refused.output
        assert [v.version for v in list_versions(settings, driver, "encoder", domain)] == stored
        pointer = active_embedding(driver, settings.neo4j_database, domain)
        assert pointer is not None and pointer.version == second
    finally:
        other.kill()
        other.wait()
    # its holder is dead: the lock is broken and the activation goes through
    info = activate_version(settings, driver, "encoder", domain, first)
    assert info.active and info.served
    assert ModelLock(driver, settings.neo4j_database, "encoder", domain).holder() is None


def test_a_stale_model_lock_is_broken_and_a_holder_that_lost_its_lock_writes_nothing(
    two_encoders: tuple[str, str], driver: Driver, settings: Settings, domain: str,
) -> None:
    first, second = two_encoders
    # a holder on another host whose heartbeat stopped three minutes ago is taken to be gone
    hold_model_lock(driver, settings, "encoder", domain, 1, "another-host", age_s=180)
    activate_version(settings, driver, "encoder", domain, first)
    # one whose heartbeat is recent is not
    hold_model_lock(driver, settings, "encoder", domain, 1, "another-host", age_s=5)
    with pytest.raises(ModelBusyError, match="another-host"):
        activate_version(settings, driver, "encoder", domain, second)
    force_release(driver, settings.neo4j_database, ModelLock.LABEL, f"encoder:{domain}")

    # a run whose lock was broken (taken over) meanwhile writes nothing: not even the clearing
    # of the slot it would write into, which holds the other version's vectors
    before = slot_vectors(driver, settings, domain)
    assert before > 0
    lock = ModelLock(driver, settings.neo4j_database, "encoder", domain)
    with lock:
        force_release(driver, settings.neo4j_database, ModelLock.LABEL, f"encoder:{domain}")
        with pytest.raises(ModelBusyError, match="lost the encoder lock"):
            write_embeddings(driver, settings.neo4j_database, domain, "v-lost", ["x"],
                             torch.zeros(1, 16), fence=lock)
    pointer = active_embedding(driver, settings.neo4j_database, domain)
    assert pointer is not None and pointer.version == first
    assert slot_vectors(driver, settings, domain) == before


SLOT_VECTORS_QUERY = """
MATCH (v:_EmbeddingVersion {domain: $domain})
MATCH (n:Entity {domain: $domain})
WHERE n[CASE v.slot WHEN 'a' THEN 'embedding_b' ELSE 'embedding_a' END] IS NOT NULL
RETURN count(n) AS stored
"""


def slot_vectors(driver: Driver, settings: Settings, domain: str) -> int:
    """How many of the domain's entities have a vector in the slot it does not serve."""
    records, _, _ = driver.execute_query(SLOT_VECTORS_QUERY, {"domain": domain},
                                         database_=settings.neo4j_database)
    return int(records[0]["stored"])


AGE_LOCK_QUERY = """
MATCH (l:_ModelLock {name: $name})
SET l.heartbeat = datetime() - duration({seconds: $age})
"""


def test_breaking_a_stale_model_lock_waits_for_its_holders_fenced_write(
    driver: Driver, settings: Settings, domain: str,
) -> None:
    database, name = settings.neo4j_database, f"qa:{domain}"
    holder = ModelLock(driver, database, "qa", domain)
    holder.heartbeat_s = 3600.0  # only its fenced writes refresh the heartbeat here
    try:
        with holder:
            # a holder that looks gone (no heartbeat for 10 minutes) starts a fenced write
            driver.execute_query(AGE_LOCK_QUERY, {"name": name, "age": 600}, database_=database)
            outcome: dict[str, object] = {}

            def take_over() -> None:
                try:
                    ModelLock(driver, database, "qa", domain).acquire()
                    outcome["taken"] = True
                except ModelBusyError as exc:
                    outcome["error"] = exc

            with holder.fenced():
                breaker = threading.Thread(target=take_over)
                breaker.start()
                breaker.join(1.5)
                assert breaker.is_alive()  # it waits for the write to commit ...
            breaker.join(30)
            # ... then sees the fresh heartbeat: the lock stays the holder's
            assert not outcome.get("taken") and isinstance(outcome.get("error"), ModelBusyError)
            info = holder.holder()
            assert info is not None and info.owner == holder.owner and info.heartbeat_age_s < 60

            # the other order: a break that commits first leaves the holder nothing to write
            driver.execute_query(AGE_LOCK_QUERY, {"name": name, "age": 600}, database_=database)
            taker = ModelLock(driver, database, "qa", domain)
            with taker:
                assert taker.broken_stale is not None
                assert taker.broken_stale.owner == holder.owner
                with pytest.raises(ModelBusyError, match="lost the qa lock"), holder.fenced():
                    pytest.fail("a fenced block ran without the lock")
                current = taker.holder()
                assert current is not None and current.owner == taker.owner
    finally:
        force_release(driver, database, ModelLock.LABEL, name)


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
