"""Latency of POST /v1/ask on this machine after warm-up, at concurrency 1 and 8.

Starts ``uvicorn api.main:app`` in a subprocess on 127.0.0.1 (same settings as the CLI:
``KGR_HOME`` / ``NEO4J_URI``), warms it up, then sends a bounded number of requests with
questions of 1 to 3 hops on each domain that is loaded, and prints p50 / p99 / throughput,
twice: for the 12 warm-up questions asked again ("repeated": the neighbour cache is warm) and for
questions never asked before ("fresh": the same templates about other entities, so every
question reads new neighbourhoods from Neo4j).

    .venv/bin/python bench/ask_latency.py --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-reader-key"

QUESTIONS = {
    "medical": [
        "Which genes are associated with Marfan syndrome?",
        "What phenotypes does Marfan syndrome present?",
        "Which diseases present Arachnodactyly?",
        "What are the phenotypes of the diseases associated with FBN1?",
        "Which genes are associated with the diseases characterized by Arachnodactyly?",
        "Which genes are linked to the diseases that present the phenotypes of Marfan syndrome?",
    ],
    "finance": [
        "Who controls Tesla Inc.?",
        "Which companies does Elon Musk control?",
        "What places does Tesla Inc. operate in?",
        "Which companies are controlled by the people that control Tesla Inc.?",
        "Which people control the companies that Elon Musk controls?",
        "What are the products produced by the companies controlled by Elon Musk?",
    ],
}


# templates of the fresh questions: (domain, entity type of the slot, question)
FRESH_TEMPLATES = [
    ("medical", "Disease", "Which genes are associated with {}?"),
    ("medical", "Disease", "What phenotypes does {} present?"),
    ("medical", "Phenotype", "Which diseases present {}?"),
    ("medical", "Gene", "What are the phenotypes of the diseases associated with {}?"),
    ("medical", "Phenotype", "Which genes are associated with the diseases characterized by {}?"),
    ("finance", "Company", "Who controls {}?"),
    ("finance", "Person", "Which companies does {} control?"),
    ("finance", "Company", "What places does {} operate in?"),
    ("finance", "Company", "Which companies are controlled by the people that control {}?"),
    ("finance", "Person", "What are the products produced by the companies controlled by {}?"),
]
# entities of a type with at least one relationship, in a fixed order (the sample is stable)
SAMPLE_NAMES_QUERY = """
MATCH (n:Entity {domain: $domain})
WHERE $type IN labels(n) AND size(n.name) <= 60 AND EXISTS { (n)--(:Entity) }
RETURN n.name AS name ORDER BY n.uid SKIP $skip LIMIT $limit
"""


def fresh_bodies(domains: list[str], count: int) -> list[dict[str, object]]:
    """``count`` questions from FRESH_TEMPLATES about sampled entities (none repeated)."""
    sys.path.insert(0, str(ROOT))
    from core.settings import get_settings
    from graph.driver import make_driver

    settings = get_settings()
    templates = [t for t in FRESH_TEMPLATES if t[0] in domains]
    per_template = count // max(1, len(templates)) + 1
    bodies: list[dict[str, object]] = []
    with make_driver(settings) as driver:
        for i, (domain, etype, text) in enumerate(templates):
            records, _, _ = driver.execute_query(
                SAMPLE_NAMES_QUERY, {"domain": domain, "type": etype, "skip": 50 * i,
                                     "limit": per_template}, database_=settings.neo4j_database)
            bodies += [{"question": text.format(r["name"]), "domain": domain, "max_hops": 3,
                        "top_k": 10} for r in records]
    warm = {q for qs in QUESTIONS.values() for q in qs}
    bodies = [b for b in bodies if b["question"] not in warm]
    # interleave templates (a stable order) so each slice mixes hop counts and domains
    bodies.sort(key=lambda b: zlib.crc32(str(b["question"]).encode()))
    return bodies[:count]


@contextmanager
def api_server(workers: int = 1) -> Iterator[str]:
    """``uvicorn api.main:create_app`` in a subprocess with the bench's reader key (``workers``
    processes, as ``kgr serve --workers``); yields its base URL once ``/healthz`` answers."""
    port = free_port()
    # the 2 cores shared among the workers' PyTorch threads
    env = {**os.environ, "KGR_API_KEYS": f"reader:{KEY}",
           "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // workers)),
           "KGR_RATE_LIMIT_RPS": "0", "KGR_MAX_CONCURRENT_ASKS": "0"}  # measure asks, not limits
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
        cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(client: httpx.Client, url: str, bodies: list[dict[str, object]], concurrency: int,
        total: int, label: str) -> dict[str, object]:
    latencies: list[float] = []
    server_ms: list[float] = []

    def one(i: int) -> None:
        started = time.perf_counter()
        response = client.post(url, json=bodies[i % len(bodies)], headers={"X-API-Key": KEY})
        latencies.append(1000 * (time.perf_counter() - started))
        response.raise_for_status()
        server_ms.append(response.json()["timings_ms"]["total"])

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(total)))
    elapsed = time.perf_counter() - started
    return {"questions": label, "concurrency": concurrency, "requests": total,
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
            "server_p50_ms": round(statistics.median(server_ms), 1),
            "throughput_rps": round(total / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="per concurrency level")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--mode", default=None, choices=[None, "fine-tuned", "zero-shot"])
    parser.add_argument("--domains", nargs="+", default=list(QUESTIONS))
    parser.add_argument("--predicted-links", action="store_true",
                        help="ask with predicted_links (retrieval also follows predicted links)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ask_latency.json")
    args = parser.parse_args()
    with api_server(args.workers) as base, httpx.Client(timeout=120) as client:
        extra = {**({"mode": args.mode} if args.mode else {}),
                 **({"predicted_links": True} if args.predicted_links else {})}
        bodies = [{"question": q, "domain": d, "max_hops": 3, "top_k": 10, **extra}
                  for d in args.domains for q in QUESTIONS[d]]
        # warm-up: models, alias indexes, caches (each worker process gets some of them)
        for body in bodies * args.workers:
            response = client.post(f"{base}/v1/ask", json=body, headers={"X-API-Key": KEY})
            if response.status_code != 200:
                raise SystemExit(f"warm-up failed: {response.status_code} {response.text}")
            data = response.json()
            top = data["answers"][0]["name"] if data["answers"] else data["reason"]
            print(f"{data['mode']:<10} {body['question']!r} -> {top}")
        results = [run(client, f"{base}/v1/ask", bodies, c, args.requests, "repeated")
                   for c in (1, 8)]
        fresh = fresh_bodies(args.domains, 2 * args.requests)
        for body in fresh:
            body.update(extra)
        results += [run(client, f"{base}/v1/ask", part, c, len(part), "fresh")
                    for c, part in ((1, fresh[:args.requests]), (8, fresh[args.requests:]))]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"{'questions':<9} {'concurrency':>11} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'server p50':>10} {'req/s':>6}   target at 1: p50 <= 50 ms, p99 <= 150 ms")
    for r in results:
        print(f"{r['questions']:<9} {r['concurrency']:>11} {r['requests']:>8} {r['p50_ms']:>7} "
              f"{r['p99_ms']:>7} {r['server_p50_ms']:>10} {r['throughput_rps']:>6}")


if __name__ == "__main__":
    main()
