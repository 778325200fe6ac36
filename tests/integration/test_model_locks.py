"""Model locks (graph.lock) against the real Neo4j: a lock another process holds refuses writers
in the API, the library and the CLI; stale locks are broken; fenced writes of a holder that lost
its lock write nothing."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient
from neo4j import Driver
from typer.testing import CliRunner

from api.main import create_app
from cli.main import app as cli_app
from core.errors import ModelBusyError
from core.settings import Settings
from fusion.learn.train import train_domain as train_qa
from fusion.serve.versions import activate_version, list_versions
from graph.encoder import train_domain as train_encoder
from graph.encoder.serve import active_embedding, write_embeddings
from graph.lock import ModelLock, force_release
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
