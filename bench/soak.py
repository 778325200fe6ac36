"""Soak: many concurrent clients mixing entity reads, neighbours and questions against the API
for minutes; counts errors, latency per route, and the resident memory of the API process and
of Neo4j after the first minute (a leak shows as growth).

    KGR_HOME=.kgr .venv/bin/python bench/soak.py --domain pq2h --clients 50 --seconds 600

Needs a loaded domain with a trained QA model. The per-key limits are off (the soak measures
the service, not its 429s). Writes ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import api_server, percentile  # noqa: E402
from core.settings import Settings  # noqa: E402
from graph.driver import make_driver  # noqa: E402
from graph.server import LocalNeo4j  # noqa: E402
from graph.store import GraphStore  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
WARM_S = 60.0  # memory is compared with what it was after this long
SAMPLE_S = 5.0


def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def api_pid(port: str) -> int | None:
    """The uvicorn process serving ``port`` (the soak's own server)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"uvicorn" in b" ".join(cmd) and port.encode() in cmd:
            return int(proc.name)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", default="pq2h")
    parser.add_argument("--questions", type=Path, default=None,
                        help="JSONL with a 'question' per line (default: PathQuestion PQ-2H "
                        "test, for --domain pq2h)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    settings = Settings()
    driver = make_driver(settings)
    uids = [e.uid for e in GraphStore(driver, settings.neo4j_database)
            .search_entities(None, domain=args.domain, limit=500).items]
    driver.close()
    path = args.questions or (settings.data_dir / "pathquestion" / "PQ-2H" / "test.jsonl")
    questions = [json.loads(line)["question"] for line in path.read_text().splitlines() if line]
    neo4j_pid = LocalNeo4j(settings).pid() if settings.uses_local_server else None
    records: list[tuple[str, int, float]] = []
    lock = threading.Lock()
    memory: list[tuple[float, int | None, int | None]] = []
    with api_server() as (url, key):
        pid = api_pid(url.rsplit(":", 1)[1])
        headers = {"X-API-Key": key}
        started = time.monotonic()
        deadline = started + args.seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                while time.monotonic() < deadline:
                    pick = rng.random()
                    began = time.perf_counter()
                    try:
                        if pick < 0.45:
                            route = "entity"
                            status = http.get(f"/v1/entities/{rng.choice(uids)}").status_code
                        elif pick < 0.8:
                            route = "neighbors"
                            status = http.get(f"/v1/entities/{rng.choice(uids)}/neighbors",
                                              params={"limit": 20}).status_code
                        else:
                            route = "ask"
                            status = http.post("/v1/ask", json={
                                "question": rng.choice(questions),
                                "domain": args.domain}).status_code
                    except httpx.HTTPError:
                        route, status = "transport", 0
                    with lock:
                        records.append((route, status, time.perf_counter() - began))

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(args.clients)]
        for thread in threads:
            thread.start()
        while time.monotonic() < deadline:
            memory.append((time.monotonic() - started, rss_kib(pid), rss_kib(neo4j_pid)))
            time.sleep(SAMPLE_S)
        for thread in threads:
            thread.join(120)
        memory.append((time.monotonic() - started, rss_kib(pid), rss_kib(neo4j_pid)))

    def growth(column: int) -> float | None:
        after_warm = [float(v) for m in memory if m[0] >= WARM_S and (v := m[column])]
        if len(after_warm) < 2:
            return None
        return round((after_warm[-1] - after_warm[0]) / after_warm[0], 4)

    routes: dict[str, Any] = {}
    for route in sorted({r for r, _, _ in records}):
        times = [t for r, _, t in records if r == route]
        routes[route] = {"n": len(times), "p50_ms": round(1000 * percentile(times, 50), 1),
                         "p99_ms": round(1000 * percentile(times, 99), 1),
                         "errors": sum(1 for r, s, _ in records if r == route and s != 200)}
    errors = sum(1 for _, s, _ in records if s != 200)
    out = {"clients": args.clients, "seconds": args.seconds, "requests": len(records),
           "errors": errors, "statuses": {str(s): sum(1 for _, x, _ in records if x == s)
                                         for s in sorted({s for _, s, _ in records})},
           "routes": routes, "rss_growth": {"api": growth(1), "neo4j": growth(2)},
           "rss_mib_after_warm_up_and_end": {
               "api": [round(m[1] / 1024) for m in (memory[0], memory[-1]) if m[1]],
               "neo4j": [round(m[2] / 1024) for m in (memory[0], memory[-1]) if m[2]]}}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
