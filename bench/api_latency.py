"""Read latency (p50, p99) and throughput: the kgr API against the same queries sent directly
with the Neo4j driver, side by side, for entity lookup and neighbours.

    .venv/bin/python -m bench.api_latency [--domain medical] [--requests 500] [--concurrency 8]

Writes the API/driver ratios to ``bench/results/api_latency.json``: per operation (entity,
neighbors) the p50 ratio at concurrency 1 and the throughput ratio at ``--concurrency``.

Uses the configured server (NEO4J_URI, or the local one in $KGR_HOME, started if needed). With
no --domain, it picks the largest loaded domain; on an empty database it writes a synthetic
domain 'bench_api' (2,000 entities, 10,000 relationships) and removes it afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import httpx
from neo4j import RoutingControl

from bench.common import LatencyStats, api_server, measure
from core.settings import get_settings
from graph.driver import make_driver
from graph.schema import bootstrap_schema
from graph.server import LocalNeo4j
from graph.store import GET_ENTITY_QUERY, NEIGHBORS_BOTH_QUERY, GraphStore
from graph.writer import delete_domain, entity_row, relation_row, write_entities, write_relations

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "api_latency.json"
SAMPLE_UIDS_QUERY = "MATCH (n:Entity {domain: $domain}) RETURN n.uid AS uid LIMIT $limit"


def synthetic_domain(driver, database: str, name: str = "bench_api") -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    write_entities(driver, database, [
        entity_row(f"{name}:{i}", f"entity {i}", name, ["Thing"]) for i in range(2000)])
    write_relations(driver, database, [
        relation_row(f"{name}:{rng.randrange(2000)}", rng.choice(["LINKS", "CITES"]),
                     f"{name}:{rng.randrange(2000)}") for _ in range(10_000)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--keep", action="store_true",
                        help="keep the synthetic domain for the next run (--domain bench_api)")
    args = parser.parse_args()

    settings = get_settings()
    if settings.uses_local_server:
        LocalNeo4j(settings).start()
    driver = make_driver(settings)
    database = settings.neo4j_database
    bootstrap_schema(driver, database)
    store = GraphStore(driver, database)
    created = None
    domain = args.domain
    if domain is None:
        summary = store.schema_summary()
        real = [d for d in summary.domains if d.domain in ("medical", "finance")]
        if real:
            domain = max(real, key=lambda d: d.relationship_count).domain
        else:
            created = domain = "bench_api"
            synthetic_domain(driver, database, domain)
    records, _, _ = driver.execute_query(SAMPLE_UIDS_QUERY, {"domain": domain, "limit": 5000},
                                         database_=database, routing_=RoutingControl.READ)
    uids = [r["uid"] for r in records]
    if not uids:
        raise SystemExit(f"domain {domain!r} has no entities; load it first (kgr migrate)")
    rng = random.Random(1)
    sample = [rng.choice(uids) for _ in range(args.requests)]
    print(f"domain {domain!r}: {len(uids)} sampled uids, {args.requests} requests per row; "
          f"Neo4j at {settings.resolved_uri}")

    def direct_entity(uid: str):  # type: ignore[no-untyped-def]
        return lambda: driver.execute_query(GET_ENTITY_QUERY, {"uid": uid}, database_=database,
                                            routing_=RoutingControl.READ)

    def direct_neighbors(uid: str):  # type: ignore[no-untyped-def]
        # The API does an existence check and then the neighbour query: do the same here.
        def call() -> None:
            driver.execute_query(GET_ENTITY_QUERY, {"uid": uid}, database_=database,
                                 routing_=RoutingControl.READ)
            driver.execute_query(NEIGHBORS_BOTH_QUERY, {"uid": uid, "types": None, "domains": None,
                                                         "limit": 50},
                                 database_=database, routing_=RoutingControl.READ)
        return call

    rows: list[tuple[LatencyStats, LatencyStats]] = []
    floor: LatencyStats | None = None
    try:
        with api_server(workers=args.workers) as (url, key), httpx.Client(
            base_url=url, headers={"X-API-Key": key}, timeout=10,
            limits=httpx.Limits(max_connections=32),
        ) as client:
            def api_get(path: str):  # type: ignore[no-untyped-def]
                def call() -> None:
                    response = client.get(path)
                    response.raise_for_status()
                return call

            # The transport's own cost: a GET that reads nothing (/healthz)
            # through the same client, uvicorn and middleware; no API over HTTP can go below it.
            floor = measure("API /healthz c=1 (HTTP floor)",
                            [api_get("/healthz") for _ in sample], 1)
            for concurrency in (1, args.concurrency):
                rows.append((
                    measure(f"API entity c={concurrency}",
                            [api_get(f"/v1/entities/{u}") for u in sample], concurrency),
                    measure(f"driver entity c={concurrency}",
                            [direct_entity(u) for u in sample], concurrency),
                ))
                rows.append((
                    measure(f"API neighbors c={concurrency}",
                            [api_get(f"/v1/entities/{u}/neighbors") for u in sample],
                            concurrency),
                    measure(f"driver neighbors c={concurrency}",
                            [direct_neighbors(u) for u in sample], concurrency),
                ))
    finally:
        if created and not args.keep:
            delete_domain(driver, database, created)
        driver.close()

    print()
    if floor is not None:
        print(floor.row())
    for api, direct in rows:
        print(api.row())
        print(direct.row())
        print(f"{'':<34} ratio API/driver: p50 x{api.p50_ms / direct.p50_ms:.2f}, "
              f"p99 x{api.p99_ms / direct.p99_ms:.2f}, "
              f"throughput x{api.throughput / direct.throughput:.2f}\n")
    write_results(rows, floor, args)


def write_results(rows: list[tuple[LatencyStats, LatencyStats]], floor: LatencyStats | None,
                  args: argparse.Namespace) -> None:
    """rows: entity c=1, neighbors c=1, entity c=N, neighbors c=N (API, driver) pairs."""
    results: dict[str, dict[str, float]] = {}
    for name, single, loaded in (("entity", rows[0], rows[2]), ("neighbors", rows[1], rows[3])):
        results[name] = {
            "c1_p50_ratio": round(single[0].p50_ms / single[1].p50_ms, 3),
            f"c{args.concurrency}_throughput_ratio":
                round(loaded[0].throughput / loaded[1].throughput, 3),
            "api_c1_p50_ms": round(single[0].p50_ms, 3),
            "driver_c1_p50_ms": round(single[1].p50_ms, 3),
        }
    results["setup"] = {"requests": args.requests, "concurrency": args.concurrency,
                        "workers": args.workers}
    if floor is not None:
        results["http_floor"] = {"c1_p50_ms": round(floor.p50_ms, 3)}
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {RESULTS_FILE}")


if __name__ == "__main__":
    main()
