"""Prometheus metrics of the API (``GET /metrics``), kept by ``prometheus-client``.

Each app has its own registry (tests build many apps in one process; a shared default
registry would refuse the second set of metrics). The library renders the text format,
escapes label values (a route or domain name with a quote or backslash stays one valid
sample) and adds the process metrics (CPU, memory, open files, GC).
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED_ROUTE = "unmatched"  # a path no route matches: one label value, not one per path
MEDIA_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "kgr_requests", "HTTP requests by method, route and status.",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "kgr_request_seconds", "Request latency.", ["route"], buckets=BUCKETS_S,
            registry=self.registry)
        self.questions = Counter(
            "kgr_questions", "Questions asked, by domain, mode and outcome.",
            ["domain", "mode", "outcome"], registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_answer(self, domain: str | None, mode: str, outcome: str) -> None:
        """One question answered: ``outcome`` is answered, no_entity or no_answer (the
        question's entities were found, but no reading reached an answer)."""
        self.questions.labels(domain or "none", mode, outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template.

    A pure ASGI middleware: it only watches the response's start message for the status,
    so responses stream through untouched (``BaseHTTPMiddleware`` would wrap each one in
    another task and buffer it through a memory stream).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started is answered with a 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # the router puts the matched route into this same scope dict
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)
