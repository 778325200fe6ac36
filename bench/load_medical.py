"""Load speed of the medical graph's relationships: batched UNWIND vs naive per-row MERGE.

Loads the HPO entities and all ~565k relationships into a scratch domain with the migration
writer (``MigrationContext.create_relations``: batched, parameterized UNWIND ... CREATE, grouped
by start node, ``KGR_LOAD_WRITERS`` concurrent transactions), and runs the naive baseline (one
``MERGE`` per relationship, one transaction each) on a sample of rows, extrapolating its rate.
Prints both rates side by side and the ratio, then deletes the scratch domain. Targets:
>= 100,000 relationships/s and >= 20x the baseline.

Then (unless ``--no-offline``) the offline path of a first load (``graph.migrate.offline``, what
``kgr up`` uses on an empty store): the same entities and relationships written as CSV and
imported by ``neo4j-admin database import full`` into a scratch server of its own (a
temporary home under ``$KGR_HOME``, a free port), timed as the importer alone and end to end
(CSV, stop, import, start, indexes). Writes ``bench/results/load_medical.json``.

The machine is often shared, so it also prints the load average, the CPU seconds of Neo4j (per
thread group: Bolt workers, JIT compiler, GC) and of this client, and from them a bound for an
idle machine. A freshly started server spends ~20 CPU-seconds compiling its hot code during
its first big load (and runs it slower meanwhile); the "Neo4j was started N s before" line
tells which case a run is. Linux schedules each session (``setsid``; kgr starts Neo4j in its
own) as one group with an equal share of the CPUs, so while other sessions keep the cores
busy the server gets about one core however many writers it runs: on a shared machine the
wall-clock rate is then close to relationships / (Neo4j + client CPU seconds).

    KGR_HOME=.kgr-test KGR_BOLT_PORT=7697 .venv/bin/python bench/load_medical.py
    .venv/bin/python bench/load_medical.py --baseline-rows 3000 --batch-size 10000 --writers 1
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from neo4j import ManagedTransaction

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import PROJECT_ROOT, Settings, get_settings  # noqa: E402
from domains.hpo import build_medical_graph  # noqa: E402
from graph.driver import make_driver  # noqa: E402
from graph.migrate.history import ensure_schema  # noqa: E402
from graph.migrate.loader import MigrationContext, rollback  # noqa: E402
from graph.migrate.offline import ImportSet, ImportSteps, import_into  # noqa: E402
from graph.schema import bootstrap_schema  # noqa: E402
from graph.server import LocalNeo4j  # noqa: E402
from graph.writer import delete_domain  # noqa: E402

RESULTS_FILE = PROJECT_ROOT / "bench" / "results" / "load_medical.json"

print = functools.partial(print, flush=True)  # noqa: A001

NAIVE_MERGE_QUERY = """
MATCH (a:Entity {uid: $s})
MATCH (b:Entity {uid: $t})
MERGE (a)-[r:$($type)]->(b)
SET r += $p, r._mig = $tag
"""


def merge_one(tx: ManagedTransaction, rel_type: str, row: dict[str, Any], tag: str) -> None:
    """The naive baseline's unit of work: one MERGE in its own transaction."""
    tx.run(NAIVE_MERGE_QUERY, s=row["s"], t=row["t"], p=row["p"], type=rel_type,
           tag=tag).consume()


# Neo4j's threads by name prefix (``/proc/<pid>/task/*/comm``, cut at 15 characters), for
# the CPU split.
THREAD_GROUPS = (("neo4j.BoltWork", "Bolt workers (queries, commits)"),
                 ("neo4j.BoltNetw", "Bolt network IO"),
                 ("C1 Compiler", "JIT compiler"), ("C2 Compiler", "JIT compiler"),
                 ("GC ", "garbage collector"), ("G1 ", "garbage collector"))


def server_threads_cpu_s(pid: int | None) -> dict[str, float]:
    """User + system CPU seconds of the local Neo4j process per thread group, if readable."""
    groups: dict[str, float] = {}
    if pid is None:
        return groups
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        group = next((g for prefix, g in THREAD_GROUPS if name.startswith(prefix)), "other")
        groups[group] = groups.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return groups


def process_age_s(pid: int | None) -> float | None:
    """Seconds since the process started (a fresh server still compiles its hot code)."""
    if pid is None:
        return None
    try:
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def offline_run(settings: Settings, entities: list[dict[str, Any]],
                relations: dict[str, list[dict[str, Any]]]) -> tuple[ImportSteps, int]:
    """Import the graph into a scratch server of its own with the code ``kgr up`` runs on an
    empty store (``graph.migrate.offline.import_into``); returns its steps and the
    relationships the store then holds. The server is started once first, untimed: a fresh
    home's password and store, as ``kgr up`` starts it before it looks at the store."""
    home = Path(tempfile.mkdtemp(prefix="bench-import-", dir=settings.home))
    cfg = settings.model_copy(update={"home": home, "bolt_port": free_port(),
                                      "neo4j_http_port": None})
    server = LocalNeo4j(cfg)
    try:
        server.start()
        driver = make_driver(cfg)
        one = ImportSet(tag="bench:offline", entities=entities,
                        relations=[(t, row, True) for t, rows in relations.items()
                                   for row in rows])
        steps = import_into(server, driver, [one])
        records, _, _ = driver.execute_query("MATCH ()-[r]->() RETURN count(r) AS n",
                                             database_=cfg.neo4j_database)
        driver.close()
        return steps, int(records[0]["n"])
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=None, help="default: KGR_BATCH_SIZE")
    parser.add_argument("--writers", type=int, default=None,
                        help="concurrent write transactions; default: KGR_LOAD_WRITERS")
    parser.add_argument("--baseline-rows", type=int, default=3000)
    parser.add_argument("--limit", type=int, default=None, help="load only this many rels")
    parser.add_argument("--no-offline", action="store_true",
                        help="skip the offline import (neo4j-admin) of the same graph")
    parser.add_argument("--no-results", action="store_true",
                        help=f"do not write {RESULTS_FILE.relative_to(PROJECT_ROOT)}")
    args = parser.parse_args()
    load1, load5, load15 = os.getloadavg()
    print(f"machine load average at start: {load1:.1f} / {load5:.1f} / {load15:.1f} "
          f"(1/5/15 min) on {os.cpu_count()} CPUs; rates are lower on a busy box")
    settings = get_settings()
    if args.writers:
        settings = settings.model_copy(update={"load_writers": args.writers})
    batch_size = args.batch_size or settings.batch_size
    database = settings.neo4j_database
    driver = make_driver(settings)
    bootstrap_schema(driver, database)
    ensure_schema(driver, database)
    scratch = f"bench{uuid.uuid4().hex[:8]}"
    tag = f"bench:{scratch}"
    try:
        started = time.perf_counter()
        graph = build_medical_graph(domain=scratch)
        parse_s = time.perf_counter() - started
        rows = [(rel_type, row) for rel_type, group in graph.relations.items() for row in group]
        if args.limit:
            rows = rows[: args.limit]
        print(f"parsed HPO in {parse_s:.1f} s: {len(graph.entities):,} entities, "
              f"{len(rows):,} relationships; scratch domain {scratch}")
        ctx = MigrationContext(driver, database, settings, tag, 0, "bench", batch_size)
        started = time.perf_counter()
        ctx.create_entities(graph.entities)
        entity_s = time.perf_counter() - started
        print(f"entities: {len(graph.entities):,} in {entity_s:.1f} s "
              f"({len(graph.entities) / entity_s:,.0f}/s)")

        # Naive baseline on a sample: one MERGE per relationship, one transaction each.
        sample = random.Random(0).sample(rows, min(args.baseline_rows, len(rows)))
        naive_tag = f"{tag}:naive"
        started = time.perf_counter()
        with driver.session(database=database) as session:
            for rel_type, row in sample:
                session.execute_write(merge_one, rel_type, row, naive_tag)
        naive_s = time.perf_counter() - started
        naive_rate = len(sample) / naive_s
        rollback(driver, database, naive_tag)  # drops only the baseline's relationships

        # Batched: every relationship, grouped by type, UNWIND batches.
        server_pid = LocalNeo4j(settings).pid() if settings.uses_local_server else None
        server_age = process_age_s(server_pid)
        threads0, client_cpu0 = server_threads_cpu_s(server_pid), time.process_time()
        started = time.perf_counter()
        by_type: dict[str, list[dict]] = {}
        for rel_type, row in rows:
            by_type.setdefault(rel_type, []).append(row)
        for rel_type, group in by_type.items():
            ctx.create_relations(rel_type, group)
        batched_s = time.perf_counter() - started
        batched_rate = ctx.relationships_created / batched_s
        threads1, client_cpu = server_threads_cpu_s(server_pid), time.process_time() - client_cpu0
        assert ctx.relationships_created == len(rows)

        print()
        print(f"{'method':<44}{'rels':>10}{'seconds':>10}{'rels/s':>12}")
        print(f"{'naive MERGE, 1 row/transaction (sample)':<44}{len(sample):>10,}"
              f"{naive_s:>10.1f}{naive_rate:>12,.0f}")
        print(f"{'  extrapolated to all rows':<44}{len(rows):>10,}"
              f"{len(rows) / naive_rate:>10.0f}{naive_rate:>12,.0f}")
        print(f"{'batched UNWIND CREATE (migration path)':<44}{len(rows):>10,}"
              f"{batched_s:>10.1f}{batched_rate:>12,.0f}")
        print(f"bulk path: MigrationContext.create_relations, parameterized UNWIND batches of "
              f"{batch_size:,}, grouped by start node, {settings.load_writers} concurrent "
              "writer(s)")
        print(f"\nspeed-up: {batched_rate / naive_rate:.1f}x (target >= 20x); batched rate "
              f"{batched_rate:,.0f} rels/s (target >= 100,000)")
        print(f"machine load average at end: {os.getloadavg()[0]:.1f} (1 min)")
        if threads1:
            split = {g: threads1[g] - threads0.get(g, 0.0) for g in threads1}
            server_cpu = sum(split.values())
            jit = split.get("JIT compiler", 0.0)
            cores = os.cpu_count() or 1
            print(f"batched load CPU: Neo4j {server_cpu:.1f} s (whole server, other clients' "
                  f"queries included) + this client {client_cpu:.1f} s over {batched_s:.1f} s "
                  f"wall; Neo4j was started {server_age or 0:,.0f} s before")
            print("  Neo4j split: " + ", ".join(
                f"{g} {v:.1f} s" for g, v in sorted(split.items(), key=lambda kv: -kv[1])
                if v >= 0.05))
            used = min(cores, settings.load_writers + 1)  # writers + the packing thread
            total_cpu = server_cpu + client_cpu
            print(f"  {total_cpu / len(rows) * 1e6:.1f} us CPU per relationship "
                  f"({server_cpu / len(rows) * 1e6:.1f} Neo4j + "
                  f"{client_cpu / len(rows) * 1e6:.1f} client); idle-machine bound on {used} "
                  f"cores: {len(rows) * used / total_cpu:,.0f} rels/s, "
                  f"{len(rows) * used / (total_cpu - jit):,.0f} without the JIT compilation "
                  "(a one-off after a server start)")
    finally:
        started = time.perf_counter()
        rollback(driver, database, tag)  # everything the bench wrote carries its tag
        delete_domain(driver, database, scratch)
        print(f"scratch domain deleted in {time.perf_counter() - started:.1f} s")
        driver.close()

    summary: dict[str, Any] = {
        "cold_rels_per_s": round(batched_rate),
        "naive_ratio": round(batched_rate / naive_rate, 1),
        "naive_rels_per_s": round(naive_rate, 1),
        "path": "online: MigrationContext.create_relations (UNWIND batches)",
        "server_age_s": round(server_age or 0.0),
        "writers": settings.load_writers, "batch_size": batch_size,
        "load_average_start": round(load1, 2), "load_average_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    if not args.no_offline:
        print("\noffline path (kgr up on an empty store): neo4j-admin database import full")
        run, imported = offline_run(settings, graph.entities, graph.relations)
        assert imported == graph.relation_count, (imported, graph.relation_count)
        import_rate = imported / run.import_s
        e2e_rate = imported / run.total_s
        online_s = entity_s + batched_s
        print(f"{'method':<48}{'rels':>10}{'seconds':>10}{'rels/s':>12}")
        print(f"{'offline: importer alone (its JVM start incl.)':<48}{imported:>10,}"
              f"{run.import_s:>10.1f}{import_rate:>12,.0f}")
        print(f"{'offline: CSV+stop+import+start+indexes':<48}{imported:>10,}"
              f"{run.total_s:>10.1f}{e2e_rate:>12,.0f}")
        print(f"{'online: entities + batched relationships':<48}{len(rows):>10,}"
              f"{online_s:>10.1f}{len(rows) / online_s:>12,.0f}")
        print("  offline steps: " + ", ".join(f"{k[:-2]} {v:.1f} s"
                                             for k, v in asdict(run).items()))
        summary.update({
            "offline_import_rels_per_s": round(import_rate),
            "offline_end_to_end_rels_per_s": round(e2e_rate),
            "offline_steps_s": {k: round(v, 2) for k, v in asdict(run).items()},
            "online_entities_plus_rels_s": round(online_s, 1),
            "offline_end_to_end_s": round(run.total_s, 1),
        })
    if not args.no_results and not args.limit:
        RESULTS_FILE.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {RESULTS_FILE.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
