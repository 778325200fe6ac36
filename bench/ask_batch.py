"""Questions per second of POST /v1/ask/batch against single POST /v1/ask requests.

The peer is kgr's own single-question endpoint, asked one at a time (what a client without the
batch endpoint does) and at concurrency 8 (the best such a client gets from this box). One
server (``bench.ask_latency.api_server``), warmed up on the 12 fixed questions; then:

- repeated questions: the 12 warm ones again, ``--rounds`` times over, each way;
- fresh questions (never asked: every one reads new neighbourhoods from Neo4j): the fresh
  sample of ``bench/ask_latency.py`` cut into chunks of ``--batch`` per domain, the chunks
  dealt in turn to the three ways, so each way gets other questions of the same templates
  and no way profits from the caches another filled.

    .venv/bin/python bench/ask_batch.py --batch 32 --fresh 576
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ask_latency import KEY, QUESTIONS, api_server, fresh_bodies  # noqa: E402

HEADERS = {"X-API-Key": KEY}
WAYS = ("single c=1", "single c=8", "batch")


def ask_singly(client: httpx.Client, base: str, bodies: list[dict[str, Any]],
               concurrency: int) -> list[str | None]:
    def one(body: dict[str, Any]) -> str | None:
        response = client.post(f"{base}/v1/ask", json=body, headers=HEADERS)
        response.raise_for_status()
        answers = response.json()["answers"]
        return answers[0]["uid"] if answers else None

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, bodies))


def ask_batched(client: httpx.Client, base: str, bodies: list[dict[str, Any]]) -> list[str | None]:
    """One request for ``bodies`` (one domain, the same options)."""
    options = {k: v for k, v in bodies[0].items() if k != "question"}
    response = client.post(f"{base}/v1/ask/batch", headers=HEADERS,
                           json={"questions": [b["question"] for b in bodies], **options})
    response.raise_for_status()
    return [r["answers"][0]["uid"] if r["answers"] else None for r in response.json()["results"]]


def chunks(bodies: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """``bodies`` in chunks of ``size`` questions of one domain each."""
    out = []
    for domain in sorted({str(b["domain"]) for b in bodies}):
        mine = [b for b in bodies if b["domain"] == domain]
        out += [mine[i:i + size] for i in range(0, len(mine), size)]
    return out


def timed(way: str, client: httpx.Client, base: str,
          parts: list[list[dict[str, Any]]]) -> tuple[float, int, list[str | None]]:
    started = time.perf_counter()
    tops: list[str | None] = []
    for part in parts:
        if way == "batch":
            tops += ask_batched(client, base, part)
        else:
            tops += ask_singly(client, base, part, 8 if way.endswith("8") else 1)
    return time.perf_counter() - started, sum(len(p) for p in parts), tops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32, help="questions per batch (<= 64)")
    parser.add_argument("--fresh", type=int, default=576, help="fresh questions in all")
    parser.add_argument("--rounds", type=int, default=8, help="passes over the warm questions")
    parser.add_argument("--domains", nargs="+", default=list(QUESTIONS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ask_batch.json")
    args = parser.parse_args()
    warm = [{"question": q, "domain": d, "max_hops": 3, "top_k": 10}
            for d in args.domains for q in QUESTIONS[d]]
    fresh = chunks(fresh_bodies(args.domains, args.fresh), args.batch)
    results: dict[str, dict[str, float]] = {}
    with api_server() as base, httpx.Client(timeout=300) as client:
        ask_singly(client, base, warm, 1)  # warm-up: models, alias indexes, caches
        ask_batched(client, base, warm[:len(QUESTIONS[args.domains[0]])])
        same = True
        for label, parts_of in (
            ("repeated", {way: chunks(warm * args.rounds, args.batch) for way in WAYS}),
            ("fresh", {way: fresh[i::len(WAYS)] for i, way in enumerate(WAYS)}),
        ):
            for way in WAYS:
                seconds, n, tops = timed(way, client, base, parts_of[way])
                results[f"{label} {way}"] = {"questions": n, "seconds": round(seconds, 2),
                                             "questions_per_s": round(n / seconds, 1)}
                if label == "repeated" and way == "single c=1":
                    reference = tops
                elif label == "repeated":
                    same &= tops == reference
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"{'questions':<9} {'way':<11} {'asked':>6} {'seconds':>8} {'q/s':>7} "
          f"{'batch / this':>12}")
    for label in ("repeated", "fresh"):
        batch = results[f"{label} batch"]["questions_per_s"]
        for way in WAYS:
            r = results[f"{label} {way}"]
            print(f"{label:<9} {way:<11} {r['questions']:>6} {r['seconds']:>8} "
                  f"{r['questions_per_s']:>7} {batch / r['questions_per_s']:>11.2f}x")
    print(f"repeated questions: the batch's top answers equal the single asks': {same}")


if __name__ == "__main__":
    main()
