"""Helpers shared by the benchmarks: latency statistics and a uvicorn server in a subprocess."""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


@dataclass
class LatencyStats:
    name: str
    count: int
    p50_ms: float
    p99_ms: float
    throughput: float

    def row(self) -> str:
        return (f"{self.name:<34} n={self.count:<5} p50={self.p50_ms:7.2f} ms  "
                f"p99={self.p99_ms:7.2f} ms  {self.throughput:8.1f} req/s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(name: str, calls: list[Callable[[], object]], concurrency: int = 1,
            warmup: int = 20) -> LatencyStats:
    """Run each call once (after ``warmup`` untimed ones) with ``concurrency`` threads."""
    for call in calls[:warmup]:
        call()

    def timed(call: Callable[[], object]) -> float:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    started = time.perf_counter()
    if concurrency == 1:
        latencies = [timed(c) for c in calls]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(timed, calls))
    wall = time.perf_counter() - started
    return LatencyStats(name, len(calls), 1000 * statistics.median(latencies),
                        1000 * percentile(latencies, 99), len(calls) / wall)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_server(extra_env: dict[str, str] | None = None,
               workers: int = 1) -> Iterator[tuple[str, str]]:
    """Start ``uvicorn api.main:create_app`` on a free loopback port; yields (url, reader key)."""
    port = free_port()
    key = "bench_" + secrets.token_urlsafe(16)
    env = dict(os.environ, KGR_API_KEYS=f"admin:{key}", **(extra_env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError("the API did not start within 120 s")
        yield url, key
    finally:
        proc.terminate()
        proc.wait(30)
