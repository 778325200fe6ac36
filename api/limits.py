"""Per-key limits: requests a second (a token bucket) and questions answered at once.

One ASGI piece (``RateLimit``) applies both to every route except the probes and the docs, so
that no route can forget them. The counts live in this API process only: two ``kgr serve``
processes behind one balancer each allow the configured rate (a shared limit needs a shared
store, which kgr does not have).

A key is named by its id once the key ring knows it. Requests with a missing, unknown or
revoked key (401 anyway) share one bucket per client address, so that guessing keys cannot
mint a fresh bucket per guess.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import kgr_error_response
from api.exceptions import RateLimitedError
from core.errors import InvalidInputError, KgrError
from core.settings import Settings

# Probes and documents: a load balancer's health checks carry no key and must never be refused.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json",
                          "/docs/oauth2-redirect"})
ASK_PATH = "/v1/ask"
ASK_BATCH_PATH = "/v1/ask/batch"
API_KEY_HEADER = b"x-api-key"
# Idle buckets are dropped past this many (each unknown client address makes one).
MAX_BUCKETS = 10_000
# How long a refused ask should wait: questions take tens of milliseconds to a few seconds.
ASK_RETRY_AFTER_S = 1


@dataclass
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` a second; a request takes one."""

    rate: float
    capacity: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there is."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.updated) * self.rate >= self.capacity


@dataclass
class KeyLimits:
    """The limits of one API process, shared by its threads (one lock; every step is O(1))."""

    rps: float
    burst: int
    max_asks: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _asks: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyLimits:
        burst = settings.rate_limit_burst or max(1, math.ceil(2 * settings.rate_limit_rps))
        return cls(rps=settings.rate_limit_rps, burst=burst,
                   max_asks=settings.max_concurrent_asks)

    def take_request(self, who: str) -> None:
        """Count one request of ``who``; RateLimitedError when its bucket is empty."""
        if self.rps <= 0:
            return
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(who)
            if bucket is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._prune(now)
                bucket = TokenBucket(self.rps, float(self.burst), float(self.burst), now)
                self._buckets[who] = bucket
            wait = bucket.take(now)
        if wait > 0:
            raise RateLimitedError(
                f"too many requests: this key may send {self.rps:g} a second "
                f"(bursts of {self.burst}); retry after {wait:.2f} s",
                retry_after_s=max(1, math.ceil(wait)))

    def _prune(self, now: float) -> None:
        for who in [w for w, b in self._buckets.items() if b.full(now)]:
            del self._buckets[who]

    def acquire_asks(self, who: str, questions: int) -> None:
        """Hold ``questions`` of ``who``'s ask slots; RateLimitedError when they are taken.
        A batch over the whole limit could never run: InvalidInputError (422) says so."""
        if self.max_asks <= 0:
            return
        if questions > self.max_asks:
            raise InvalidInputError(
                f"a batch of {questions} questions is over this key's limit of "
                f"{self.max_asks} questions at once; send smaller batches")
        with self._lock:
            held = self._asks.get(who, 0)
            if held + questions > self.max_asks:
                raise RateLimitedError(
                    f"too many questions at once: this key has {held} being answered and may "
                    f"have {self.max_asks}; retry when they are done",
                    retry_after_s=ASK_RETRY_AFTER_S)
            self._asks[who] = held + questions

    def release_asks(self, who: str, questions: int) -> None:
        if self.max_asks <= 0:
            return
        with self._lock:
            left = self._asks.get(who, 0) - questions
            if left > 0:
                self._asks[who] = left
            else:
                self._asks.pop(who, None)

    def asks_held(self, who: str) -> int:
        with self._lock:
            return self._asks.get(who, 0)


def batch_questions(body: bytes) -> int:
    """How many questions a /v1/ask/batch body holds (1 if it is not a batch: the route's
    validation answers 422 for it)."""
    try:
        questions = json.loads(body).get("questions")
    except (ValueError, AttributeError):
        return 1
    return len(questions) if isinstance(questions, list) and questions else 1


class RateLimit:
    """The ASGI piece: counts each request against its key's bucket and holds ask slots
    while a question or batch is answered. The limits come from ``app.state.limits``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/") or "/"
        if scope["type"] != "http" or path in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        limits: KeyLimits = app.state.limits
        who = self._who(app, scope)
        asking = scope.get("method") == "POST" and path in (ASK_PATH, ASK_BATCH_PATH)
        questions = 0
        try:
            limits.take_request(who)
            if asking:
                questions = 1
                if path == ASK_BATCH_PATH:
                    body, receive = await _buffered(receive)
                    questions = batch_questions(body)
                limits.acquire_asks(who, questions)
        except KgrError as exc:
            await kgr_error_response(exc)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if questions:
                limits.release_asks(who, questions)

    @staticmethod
    def _who(app: object, scope: Scope) -> str:
        key = dict(scope.get("headers") or []).get(API_KEY_HEADER)
        if key:
            try:
                principal = app.state.keyring.authenticate(  # type: ignore[attr-defined]
                    key.decode("latin-1"))
            except KgrError:
                pass
            else:
                return f"key:{principal.key_id or principal.name}"
        client = scope.get("client")
        return f"addr:{client[0] if client else 'unknown'}"


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body, and a ``receive`` that hands it to the app as it came."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return b"".join(chunks), replay
