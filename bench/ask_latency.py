"""Latency of POST /v1/ask on this machine after warm-up, at concurrency 1 and 8.

Starts ``uvicorn api.main:app`` in a subprocess on 127.0.0.1 (same settings as the CLI:
``KGR_HOME`` / ``NEO4J_URI``), warms it up, then sends a bounded number of requests with
questions of 1 to 3 hops on each domain that is loaded, and prints p50 / p99 / throughput.

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
from concurrent.futures import ThreadPoolExecutor
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(client: httpx.Client, url: str, bodies: list[dict[str, object]], concurrency: int,
        total: int) -> dict[str, float]:
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
    return {"concurrency": concurrency, "requests": total,
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
            "server_p50_ms": round(statistics.median(server_ms), 1),
            "throughput_rps": round(total / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="per concurrency level")
    parser.add_argument("--mode", default=None, choices=[None, "fine-tuned", "zero-shot"])
    parser.add_argument("--domains", nargs="+", default=list(QUESTIONS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ask_latency.json")
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "KGR_API_KEYS": f"reader:{KEY}", "OMP_NUM_THREADS": "2"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=120) as client:
            for _ in range(240):
                try:
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            bodies = [{"question": q, "domain": d, "max_hops": 3, "top_k": 10,
                       **({"mode": args.mode} if args.mode else {})}
                      for d in args.domains for q in QUESTIONS[d]]
            for body in bodies:  # warm-up: models, alias indexes, caches
                response = client.post(f"{base}/v1/ask", json=body, headers={"X-API-Key": KEY})
                if response.status_code != 200:
                    raise SystemExit(f"warm-up failed: {response.status_code} {response.text}")
                data = response.json()
                top = data["answers"][0]["name"] if data["answers"] else data["reason"]
                print(f"{data['mode']:<10} {body['question']!r} -> {top}")
            results = [run(client, f"{base}/v1/ask", bodies, c, args.requests) for c in (1, 8)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"{'concurrency':>11} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7} {'server p50':>10} "
          f"{'req/s':>6}   target at 1: p50 <= 50 ms, p99 <= 150 ms")
    for r in results:
        print(f"{r['concurrency']:>11} {r['requests']:>8} {r['p50_ms']:>7} {r['p99_ms']:>7} "
              f"{r['server_p50_ms']:>10} {r['throughput_rps']:>6}")


if __name__ == "__main__":
    main()
