"""Helpers shared by the benchmarks: latency statistics and a uvicorn server in a subprocess."""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from fusion.serve.checkpoint import Checkpoint
    from fusion.serve.pipeline import DomainQA


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
    # the benches measure throughput: the per-key limits (api.limits) would measure themselves
    env = dict(os.environ, KGR_API_KEYS=f"admin:{key}", KGR_RATE_LIMIT_RPS="0",
               KGR_MAX_CONCURRENT_ASKS="0", **(extra_env or {}))
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


Paired = dict[str, tuple[int, int]]  # hop count or "all" -> (only first right, only second)


def paired_by_hops(rows: Sequence[dict[str, Any]], first: Sequence[Sequence[float]],
                   second: Sequence[Sequence[float]]) -> Paired:
    """Per hop count and 'all': questions only the first model answers, questions only the
    second answers (per-question Hits@1 in row order), summed over runs (run k of each side on
    the same questions, e.g. the same training seed)."""
    counts: dict[str, list[int]] = {}
    for first_run, second_run in zip(first, second, strict=True):
        for row, a, b in zip(rows, first_run, second_run, strict=True):
            for key in (str(row["hops"]), "all"):
                cell = counts.setdefault(key, [0, 0])
                cell[0] += int(a > b)
                cell[1] += int(b > a)
    order = sorted(counts, key=lambda key: (key == "all", key))
    return {key: (counts[key][0], counts[key][1]) for key in order}


def print_paired(title: str, lines: Sequence[tuple[str, str, Paired]], width: int,
                 digits: int = 2) -> None:
    """One line per (domain, label): +wins/-losses and the exact sign test per hop count."""
    from fusion.learn.stats import sign_test

    print(title)
    for domain, label, counts in lines:
        cells = "  ".join(f"{hops}: +{w}/-{lost} p={sign_test(w, lost):.{digits}f}"
                          for hops, (w, lost) in counts.items())
        print(f"{domain:<9} {label:<{width}} {cells}")


def served_qa(settings: Any, driver: Any, domain: str, expander: Any,
              ) -> tuple[DomainQA, Checkpoint | None]:
    """The ``DomainQA`` of ``domain`` with its active QA checkpoint (None if untrained) and
    graph features, as the service builds it; and that checkpoint."""
    from fusion.language.linking import AliasIndex
    from fusion.model.space import load_graph_features
    from fusion.serve.checkpoint import load_checkpoint, qa_artifacts
    from fusion.serve.pipeline import DomainQA
    from graph.store import GraphStore

    version = qa_artifacts(settings).active_version(domain)
    checkpoint = load_checkpoint(qa_artifacts(settings).path(domain, version)) \
        if version else None
    qa = DomainQA(settings, GraphStore(driver, settings.neo4j_database), domain, expander,
                  AliasIndex.load(driver, settings.neo4j_database, domain), checkpoint,
                  load_graph_features(settings, domain))
    return qa, checkpoint
