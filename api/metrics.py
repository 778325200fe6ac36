"""Request counters and latency sums in the Prometheus text format (``GET /metrics``)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.latency_buckets: dict[tuple[str, float], int] = defaultdict(int)
        self.latency_count: dict[str, int] = defaultdict(int)
        self.answers: dict[tuple[str, str, str], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.latency_sum[route] += seconds
            self.latency_count[route] += 1
            for bound in BUCKETS_S:
                if seconds <= bound:
                    self.latency_buckets[(route, bound)] += 1

    def observe_answer(self, domain: str | None, mode: str, outcome: str) -> None:
        """One question answered: ``outcome`` is answered, no_entity or no_answer (the
        question's entities were found, but no reading reached an answer)."""
        with self._lock:
            self.answers[(domain or "none", mode, outcome)] += 1

    def render(self) -> str:
        lines = [
            "# HELP kgr_requests_total HTTP requests by method, route and status.",
            "# TYPE kgr_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), count in sorted(self.requests.items()):
                lines.append(
                    f'kgr_requests_total{{method="{method}",route="{route}",'
                    f'status="{status}"}} {count}'
                )
            lines += ["# HELP kgr_request_seconds Request latency.",
                      "# TYPE kgr_request_seconds histogram"]
            for route in sorted(self.latency_count):
                for bound in BUCKETS_S:
                    lines.append(f'kgr_request_seconds_bucket{{route="{route}",le="{bound}"}} '
                                 f"{self.latency_buckets[(route, bound)]}")
                lines.append(f'kgr_request_seconds_bucket{{route="{route}",le="+Inf"}} '
                             f"{self.latency_count[route]}")
                labels = f'{{route="{route}"}}'
                lines.append(f"kgr_request_seconds_sum{labels} {self.latency_sum[route]:.6f}")
                lines.append(f"kgr_request_seconds_count{labels} {self.latency_count[route]}")
            lines += ["# HELP kgr_questions_total Questions asked, by domain, mode and outcome.",
                      "# TYPE kgr_questions_total counter"]
            for (domain, mode, outcome), count in sorted(self.answers.items()):
                lines.append(f'kgr_questions_total{{domain="{domain}",mode="{mode}",'
                             f'outcome="{outcome}"}} {count}')
        return "\n".join(lines) + "\n"

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        self.observe(request.method, path, response.status_code, time.perf_counter() - started)
        return response
