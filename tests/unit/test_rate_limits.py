"""Per-key limits without a server: the token bucket, the ask slots and the 429 answers."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.deps import get_qa_service
from api.exceptions import RateLimitedError
from api.limits import KeyLimits, batch_questions
from api.main import create_app
from core.errors import InvalidInputError, NotFoundError
from core.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    limits = KeyLimits(rps=2.0, burst=3, max_asks=0, clock=clock)
    for _ in range(3):
        limits.take_request("key:a")
    with pytest.raises(RateLimitedError) as refused:
        limits.take_request("key:a")
    assert refused.value.retry_after_s == 1  # half a second, rounded up
    limits.take_request("key:b")  # another key has its own bucket
    clock.now += 0.5  # one token back at 2 a second
    limits.take_request("key:a")
    with pytest.raises(RateLimitedError):
        limits.take_request("key:a")
    clock.now += 60  # refilled to the burst, never above it
    for _ in range(3):
        limits.take_request("key:a")
    with pytest.raises(RateLimitedError):
        limits.take_request("key:a")


def test_zero_turns_limits_off() -> None:
    limits = KeyLimits(rps=0, burst=1, max_asks=0)
    for _ in range(1000):
        limits.take_request("key:a")
    limits.acquire_asks("key:a", 500)


def test_ask_slots_count_questions_and_are_given_back() -> None:
    limits = KeyLimits(rps=0, burst=1, max_asks=4)
    limits.acquire_asks("key:a", 3)
    with pytest.raises(RateLimitedError):
        limits.acquire_asks("key:a", 2)
    limits.acquire_asks("key:b", 4)  # per key
    limits.acquire_asks("key:a", 1)
    assert limits.asks_held("key:a") == 4
    limits.release_asks("key:a", 3)
    limits.acquire_asks("key:a", 3)
    with pytest.raises(InvalidInputError, match="smaller batches"):
        limits.acquire_asks("key:c", 5)  # could never run


def test_batch_questions_reads_the_body() -> None:
    assert batch_questions(b'{"questions": ["a", "b", "c"]}') == 3
    assert batch_questions(b"not json") == 1
    assert batch_questions(b'["a"]') == 1
    assert batch_questions(b'{"questions": []}') == 1


class BlockingService:
    """Stands in for the QA service: each question waits for ``release``."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def ask(self, *args: Any, **kwargs: Any) -> None:
        self.started.release()
        self.release.wait(10)
        raise NotFoundError("unknown domain 'x'")

    def ask_batch(self, *args: Any, **kwargs: Any) -> None:
        self.ask()


def _app(tmp_path: Path, **limits: Any) -> Any:
    cfg = Settings(home=tmp_path, api_keys="reader:alice,reader:bob", audit_enabled=False,
                   neo4j_uri="neo4j://127.0.0.1:1", **limits)
    return create_app(cfg)


def test_requests_over_the_rate_get_429_with_retry_after(tmp_path: Path) -> None:
    app = _app(tmp_path, rate_limit_rps=1, rate_limit_burst=5)
    with TestClient(app) as client:
        # a path that is not routed still counts: the limit sits in front of every route
        codes = [client.get("/v1/nothing", headers={"X-API-Key": "alice"}).status_code
                 for _ in range(5)]
        assert codes == [404] * 5
        refused = client.get("/v1/nothing", headers={"X-API-Key": "alice"})
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "a second" in refused.json()["error"]["message"]
        # another key, and the probes, are not affected
        assert client.get("/v1/nothing", headers={"X-API-Key": "bob"}).status_code == 404
        assert client.get("/healthz").status_code == 200
        # guessing keys does not mint buckets: unknown keys share the client's one
        guesses = [client.get("/v1/schema", headers={"X-API-Key": f"guess{i}"}).status_code
                   for i in range(6)]
        assert guesses[:5] == [401] * 5 and guesses[5] == 429
        text = client.get("/metrics").text
        assert 'status="429"' in text


def test_concurrent_asks_over_the_limit_get_429(tmp_path: Path) -> None:
    app = _app(tmp_path, rate_limit_rps=0, max_concurrent_asks=3)
    service = BlockingService()
    app.dependency_overrides[get_qa_service] = lambda: service
    alice = {"X-API-Key": "alice"}
    results: list[int] = []
    with TestClient(app) as client:
        def send(path: str, body: dict[str, Any]) -> None:
            results.append(client.post(path, json=body, headers=alice).status_code)

        # a batch of 2 and one question hold all 3 of alice's slots
        threads = [threading.Thread(target=send, args=("/v1/ask/batch",
                                                       {"questions": ["a?", "b?"]})),
                   threading.Thread(target=send, args=("/v1/ask", {"question": "c?"}))]
        for t in threads:
            t.start()
        for _ in threads:
            assert service.started.acquire(timeout=10)
        assert app.state.limits.asks_held("key:env-0") == 3
        refused = client.post("/v1/ask", json={"question": "d?"}, headers=alice)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "rate_limited"
        # bob has slots of his own
        bob_thread = threading.Thread(target=lambda: results.append(client.post(
            "/v1/ask", json={"question": "e?"}, headers={"X-API-Key": "bob"}).status_code))
        bob_thread.start()
        assert service.started.acquire(timeout=10)
        # a batch bigger than the whole limit could never run
        too_big = client.post("/v1/ask/batch", json={"questions": ["q?"] * 4}, headers=alice)
        assert too_big.status_code == 422 and "smaller batches" in too_big.text
        service.release.set()
        for t in [*threads, bob_thread]:
            t.join(10)
        assert sorted(results) == [404, 404, 404]  # all three ran (the fake's 404)
        deadline = time.monotonic() + 5
        while app.state.limits.asks_held("key:env-0") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.limits.asks_held("key:env-0") == 0  # slots given back
        again = client.post("/v1/ask", json={"question": "f?"}, headers=alice)
        assert again.status_code == 404
