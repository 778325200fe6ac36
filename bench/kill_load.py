"""Kill Neo4j (SIGKILL) in the middle of a domain load, restart it, recover, and check that
readers saw the domain whole or not at all, before the kill, after the restart and after
``kgr migrate``'s recovery.

Runs on a private server (its own home in a temporary folder, port ``--port``), never on the
configured one::

    .venv/bin/python -m bench.kill_load [--runs 10] [--triples 150000] [--port 7734]

Writes ``bench/results/kill_load.json``: runs, partial (reads that saw a part of the domain),
and per run what readers saw and how long the steps took.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from neo4j import Driver

from core.errors import KgrError
from core.settings import Settings
from graph.driver import make_driver
from graph.migrate.lock import force_release
from graph.migrate.runner import MigrationRunner
from graph.schema import bootstrap_schema
from graph.server import LocalNeo4j
from graph.store import GraphStore

RESULTS = Path(__file__).resolve().parent / "results" / "kill_load.json"
DOMAIN = "killload"
NAMESPACE = "killbench"
# what a reader sees of the domain, by the raw count (every node, loaded or not) and the
# store's count (what the API shows)
RAW_COUNT_QUERY = "MATCH (n:Entity {domain: $domain}) RETURN count(n) AS n"
MARKERS_QUERY = "MATCH (b:_LoadBatch) RETURN count(b) AS n"
ALL_RELATIONS_QUERY = """
MATCH (a:Entity {domain: $domain})-[r]->(:Entity) RETURN count(r) AS n
"""


@dataclass
class Package:
    folder: Path
    entities: int
    relations: int


def write_package(folder: Path, triples: int, seed: int = 7) -> Package:
    """A triples package ``V1__killload.yaml`` of ``triples`` distinct triples over
    ``triples // 3`` entities."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    n = max(10, triples // 3)
    seen: set[tuple[int, int, int]] = set()
    while len(seen) < triples:
        seen.add((rng.randrange(n), rng.randrange(4), rng.randrange(n)))
    used = {h for h, _, _ in seen} | {t for _, _, t in seen}
    with open(folder / "triples.tsv", "w") as out:
        for h, r, t in sorted(seen):
            out.write(f"e{h}\tREL_{r}\te{t}\n")
    (folder / "V1__killload.yaml").write_text(
        f"domain: {DOMAIN}\ndefault_type: Thing\ntriples:\n  - file: triples.tsv\n")
    return Package(folder, len(used), len(seen))


@dataclass
class Views:
    """Node counts a reader saw of the domain (through GraphStore, as the API does)."""

    expected: int
    seen: list[int] = field(default_factory=list)
    errors: int = 0

    def look(self, store: GraphStore) -> None:
        try:
            summary = store.schema_summary()
        except KgrError:
            self.errors += 1  # Neo4j down: no view at all
            return
        counts = [d.node_count for d in summary.domains if d.domain == DOMAIN]
        self.seen.append(counts[0] if counts else 0)

    @property
    def partial(self) -> int:
        return sum(1 for c in self.seen if c not in (0, self.expected))


@dataclass
class RunResult:
    killed_at_nodes: int
    views_during_load: int
    partial_during_load: int
    after_restart: int
    partial_after_restart: bool
    after_recovery: int
    relations_after_recovery: int
    complete_after_recovery: bool
    markers_left: int
    load_s: float
    restart_s: float
    recovery_s: float


def raw_count(driver: Driver, settings: Settings) -> int:
    records, _, _ = driver.execute_query(RAW_COUNT_QUERY, {"domain": DOMAIN},
                                         database_=settings.neo4j_database)
    return int(records[0]["n"])


def one_run(server: LocalNeo4j, package: Package, kill_after_nodes: int) -> RunResult:
    """Load, kill once ``kill_after_nodes`` nodes are written, restart, read, recover, read."""
    cfg = server.settings
    driver = make_driver(cfg)
    store = GraphStore(driver, cfg.neo4j_database)
    runner = MigrationRunner(driver, cfg, locations=[package.folder],
                             upload_dir=package.folder / "uploads", namespace=NAMESPACE)
    views = Views(package.entities)
    failure: list[BaseException] = []

    def load() -> None:
        try:
            runner.migrate()
        except BaseException as exc:  # noqa: BLE001 - the kill makes it fail: expected
            failure.append(exc)

    started = time.monotonic()
    loader = threading.Thread(target=load, name="kill-load")
    loader.start()
    killed_at = 0
    while loader.is_alive():
        views.look(store)
        try:
            killed_at = raw_count(driver, cfg)
        except KgrError:
            killed_at = 0
        if killed_at >= kill_after_nodes:
            pid = server.pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    loader.join(300)
    load_s = time.monotonic() - started
    driver.close()

    started = time.monotonic()
    server.start()
    restart_s = time.monotonic() - started
    driver = make_driver(cfg)
    # the run that loaded is gone as far as the lock is concerned (a dead `kgr migrate`'s
    # lock is broken by the next one; here its thread ended, its process lives on)
    force_release(driver, cfg.neo4j_database, NAMESPACE)
    store = GraphStore(driver, cfg.neo4j_database)
    after = Views(package.entities)
    after.look(store)

    started = time.monotonic()
    runner = MigrationRunner(driver, cfg, locations=[package.folder],
                             upload_dir=package.folder / "uploads", namespace=NAMESPACE)
    runner.migrate()  # rolls back the dead attempt, then loads again
    recovery_s = time.monotonic() - started
    done = Views(package.entities)
    done.look(store)
    records, _, _ = driver.execute_query(ALL_RELATIONS_QUERY, {"domain": DOMAIN},
                                         database_=cfg.neo4j_database)
    relations = int(records[0]["n"])
    markers, _, _ = driver.execute_query(MARKERS_QUERY, database_=cfg.neo4j_database)
    result = RunResult(
        killed_at_nodes=killed_at, views_during_load=len(views.seen),
        partial_during_load=views.partial, after_restart=after.seen[0] if after.seen else -1,
        partial_after_restart=after.partial > 0, after_recovery=done.seen[0],
        relations_after_recovery=relations,
        complete_after_recovery=done.seen[0] == package.entities
        and relations == package.relations,
        markers_left=int(markers[0]["n"]), load_s=round(load_s, 2),
        restart_s=round(restart_s, 2), recovery_s=round(recovery_s, 2))
    reset(driver, cfg)
    driver.close()
    return result


def reset(driver: Driver, settings: Settings) -> None:
    """Remove the domain and the bench's history, for the next run."""
    from graph.writer import delete_domain

    delete_domain(driver, settings.neo4j_database, DOMAIN)
    driver.execute_query(
        "MATCH (m) WHERE (m:_Migration OR m:_MigrationAttempt OR m:_MigrationLock) "
        "AND m.namespace STARTS WITH $namespace DELETE m", {"namespace": NAMESPACE},
        database_=settings.neo4j_database)


def private_server(home: Path, port: int) -> LocalNeo4j:
    cfg = Settings(home=home, bolt_port=port, neo4j_heap="1g", neo4j_pagecache="256m",
                   retry_time_s=5.0, connect_timeout_s=5.0)
    server = LocalNeo4j(cfg)
    server.start()
    with make_driver(cfg) as driver:
        bootstrap_schema(driver, cfg.neo4j_database)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--triples", type=int, default=150_000)
    parser.add_argument("--port", type=int, default=7734)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kgr-kill-load-") as tmp:
        package = write_package(Path(tmp) / "package", args.triples)
        server = private_server(Path(tmp) / "home", args.port)
        results: list[RunResult] = []
        started = time.monotonic()
        try:
            for i in range(args.runs):
                # kill at a different point each run: early in the entities, late in them,
                # or while relationships load (all entities written)
                fraction = 0.1 + 0.9 * i / max(1, args.runs - 1)
                kill_after = max(1, int(package.entities * fraction))
                result = one_run(server, package, kill_after)
                results.append(result)
                print(f"run {i + 1}: {asdict(result)}", flush=True)
        finally:
            server.stop()
    partial = sum(r.partial_during_load + int(r.partial_after_restart)
                  + int(not r.complete_after_recovery) for r in results)
    summary = {"runs": len(results), "partial": partial,
               "incomplete_after_recovery": sum(not r.complete_after_recovery for r in results),
               "markers_left": sum(r.markers_left for r in results),
               "triples": package.relations, "entities": package.entities,
               "seconds": round(time.monotonic() - started, 1),
               "details": [asdict(r) for r in results]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "details"}))


if __name__ == "__main__":
    main()
