"""The migration runner (graph.migrate.runner) against the real Neo4j: apply, status, validate,
checksums, all-or-nothing failures (including a killed process) and skipped migrations.

Every test uses its own migrations folder (tmp_path), its own history namespace and a fresh
domain, so it never touches the built-in history or other tests' data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from neo4j import Driver

from core.settings import PROJECT_ROOT, Settings
from graph.migrate.exceptions import (
    MigrationFailedError,
    MigrationValidationError,
)
from graph.migrate.loader import count_tagged
from graph.store import GraphStore
from tests.integration.migrations_support import (
    GOOD_NODES,
    GOOD_RELS,
    counts,
    make_runner,
    write_package,
)

pytestmark = pytest.mark.integration


PYTHON_MIGRATION = """\
from graph.migrate.loader import entity


def apply(ctx):
    domain = "{domain}"
    rows = [entity(f"{{domain}}:g{{i}}", f"gene {{i}}", domain, ["Gene"]) for i in range(5)]
    ctx.create_entities(rows)
    ctx.create_relations("ASSOCIATED_WITH", [
        {{"s": f"{{domain}}:g{{i}}", "t": f"{{domain}}:D1", "p": {{"rank": i}}}} for i in range(5)
    ])
"""


def test_apply_status_rerun_and_dry_run(driver: Driver, settings: Settings, mig_dir: Path,
                                        namespace: str, domain: str) -> None:
    (mig_dir / "V1__data.cypher").write_text(
        "// a data migration in one transaction\n"
        f"CREATE (:Entity:Thing {{uid: '{domain}:x', name: 'X', domain: '{domain}', "
        "_mig: $tag});\n")
    write_package(mig_dir, "V2__load.yaml", domain, GOOD_NODES, GOOD_RELS)
    (mig_dir / "V3__genes.py").write_text(PYTHON_MIGRATION.format(domain=domain))
    runner = make_runner(driver, settings, mig_dir, namespace)

    plan = runner.plan()
    assert [(p.version, p.kind) for p in plan] == [(1, "cypher"), (2, "manifest"), (3, "python")]
    assert (plan[1].nodes, plan[1].relationships) == (3, 3)
    assert runner.migrate(dry_run=True) == []
    assert counts(driver, settings, domain) == (0, 0)
    assert [r.state for r in runner.status()] == ["pending"] * 3

    seen: list[tuple[str, int, int | None]] = []
    applied = runner.migrate(progress=lambda task, done, total: seen.append((task, done, total)))
    assert [(a.version, a.nodes_created, a.relationships_created) for a in applied] == [
        (1, 0, 0), (2, 3, 3), (3, 5, 5)]
    assert all(a.duration_s >= 0 and a.applied_at and len(a.checksum) == 64 for a in applied)
    assert (f"{domain} entities", 3, 3) in seen
    assert counts(driver, settings, domain) == (9, 8)
    assert [r.state for r in runner.status()] == ["applied"] * 3
    assert runner.validate() == []
    history = runner.history()
    assert [(h.version, h.description) for h in history] == [
        (1, "data"), (2, "load"), (3, "genes")]

    # Loaded data is what the store reads: aliases searchable, typed properties converted.
    store = GraphStore(driver, settings.neo4j_database)
    marfan = store.get_entity(f"{domain}:D1")
    assert marfan.types == ["Disease"] and marfan.aliases == ["MFS", "Marfan's"]
    assert marfan.properties["weight"] == 0.5
    neighbors = store.neighbors(f"{domain}:D1", direction="out")
    assert {n.entity.name for n in neighbors} == {"Arachnodactyly", "Tall stature"}

    # A second run applies nothing.
    assert make_runner(driver, settings, mig_dir, namespace).migrate() == []
    assert counts(driver, settings, domain) == (9, 8)


def test_changed_checksum_and_gap_fail_validation(driver: Driver, settings: Settings,
                                                  mig_dir: Path, namespace: str,
                                                  domain: str) -> None:
    write_package(mig_dir, "V1__load.yaml", domain, GOOD_NODES, GOOD_RELS)
    runner = make_runner(driver, settings, mig_dir, namespace)
    runner.migrate()

    # Edit a data file of the applied load: modified, and migrate refuses.
    (mig_dir / "V1__load_rels.tsv").write_text(GOOD_RELS + "P2\tP1\tIS_A\t\n")
    (mig_dir / "V3__more.cypher").write_text("MATCH (n:Entity {uid: 'nothing'}) RETURN n;\n")
    states = {r.version: r.state for r in runner.status()}
    assert states == {1: "modified", 3: "pending"}
    problems = runner.validate()
    messages = " | ".join(p.message for p in problems)
    assert "changed after it was applied" in messages
    assert "gap in the version numbers: V2 missing" in messages
    with pytest.raises(MigrationValidationError) as excinfo:
        runner.migrate()
    assert len(excinfo.value.problems) == 2
    assert counts(driver, settings, domain) == (3, 3)


FAILING_MIGRATION = """\
from graph.migrate.loader import entity


def apply(ctx):
    domain = "{domain}"
    ctx.create_entities(entity(f"{{domain}}:n{{i}}", f"n{{i}}", domain, ["Thing"])
                        for i in range(25))
    ctx.create_relations("LINKS", ({{"s": f"{{domain}}:n{{i}}", "t": f"{{domain}}:n{{i + 1}}"}}
                                   for i in range(24)))
    {failure}
"""


def test_failing_migration_leaves_no_trace_then_rerun(driver: Driver, settings: Settings,
                                                      mig_dir: Path, namespace: str,
                                                      domain: str) -> None:
    write_package(mig_dir, "V1__load.yaml", domain, GOOD_NODES, GOOD_RELS)
    runner = make_runner(driver, settings, mig_dir, namespace, batch_size=4)
    runner.migrate()
    before = counts(driver, settings, domain)

    script = mig_dir / "V2__broken.py"
    script.write_text(FAILING_MIGRATION.format(
        domain=domain, failure="raise ValueError('bad row 17: weight is not a number')"))
    with pytest.raises(MigrationFailedError) as excinfo:
        runner.migrate()
    message = excinfo.value.message
    assert f"{script}:10" in message and "bad row 17" in message and "rolled back" in message
    assert counts(driver, settings, domain) == before
    assert count_tagged(driver, settings.neo4j_database, f"{namespace}:2") == (0, 0)
    assert [h.version for h in runner.history()] == [1] and runner.attempts() == []

    # A relationship to a missing entity, in the third batch of a load: rolled back too.
    script.write_text(FAILING_MIGRATION.format(
        domain=domain, failure=f"ctx.create_relations('LINKS', [{{'s': '{domain}:n1', "
        f"'t': '{domain}:missing'}}])"))
    with pytest.raises(MigrationFailedError, match="'.*:missing' does not exist"):
        runner.migrate()
    assert counts(driver, settings, domain) == before

    # A Neo4j type error inside a Cypher data migration: one transaction, nothing stays.
    script.unlink()
    (mig_dir / "V2__broken.cypher").write_text(
        f"CREATE (:Entity:Thing {{uid: '{domain}:c1', name: 'c', domain: '{domain}'}});\n"
        "RETURN 1 / 0 AS boom;\n")
    with pytest.raises(Exception, match="V2__broken.cypher"):
        runner.migrate()
    assert counts(driver, settings, domain) == before

    # Fixed: the rerun completes.
    (mig_dir / "V2__broken.cypher").unlink()
    script.write_text(FAILING_MIGRATION.format(domain=domain, failure="pass"))
    assert [a.relationships_created for a in runner.migrate()] == [24]
    assert counts(driver, settings, domain) == (before[0] + 25, before[1] + 24)


KILLABLE_MIGRATION = """\
import os
import time
from pathlib import Path

from graph.migrate.loader import entity


def rows(domain, marker):
    for i in range(400):
        if i == 200 and os.environ.get("KGR_TEST_HANG"):
            Path(marker).write_text("half")
            time.sleep(120)
        yield entity(f"{{domain}}:k{{i}}", f"k{{i}}", domain, ["Thing"])


def apply(ctx):
    ctx.create_entities(rows("{domain}", "{marker}"))
    ctx.create_relations("NEXT", ({{"s": f"{domain}:k{{i}}", "t": f"{domain}:k{{i + 1}}"}}
                                  for i in range(399)))
"""


CHILD = """\
import sys
from pathlib import Path
from graph.driver import make_driver
from graph.migrate.runner import MigrationRunner
from core.settings import Settings

settings = Settings(home=Path(sys.argv[1]), bolt_port=int(sys.argv[2]))
driver = make_driver(settings)
MigrationRunner(driver, settings, locations=[Path(sys.argv[3])],
                upload_dir=Path(sys.argv[3]).parent / "uploads", namespace=sys.argv[4],
                batch_size=50).migrate()
"""


def test_killed_process_midway_is_rolled_back_on_rerun(driver: Driver, settings: Settings,
                                                       mig_dir: Path, namespace: str,
                                                       domain: str, tmp_path: Path) -> None:
    marker = tmp_path / "half-done"
    (mig_dir / "V1__killable.py").write_text(
        KILLABLE_MIGRATION.format(domain=domain, marker=marker))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(settings.home), str(settings.bolt_port), str(mig_dir),
         namespace],
        cwd=PROJECT_ROOT, env={**os.environ, "KGR_TEST_HANG": "1",
                               "PYTHONPATH": str(PROJECT_ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the child migration exited early"
            assert time.monotonic() < deadline, "the child never reached the middle"
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # Half a load is in the graph, tagged, with an open attempt and a dead holder's lock.
    assert counts(driver, settings, domain) == (200, 0)
    runner = make_runner(driver, settings, mig_dir, namespace, lock_timeout_s=2)
    assert [r.state for r in runner.status()] == ["interrupted"]
    assert runner.lock_holder() is not None

    applied = runner.migrate()
    assert [(a.nodes_created, a.relationships_created) for a in applied] == [(400, 399)]
    assert counts(driver, settings, domain) == (400, 399)
    assert runner.attempts() == [] and runner.lock_holder() is None


def test_skipped_migrations_write_nothing_and_keep_the_history_in_order(
    driver: Driver, settings: Settings, mig_dir: Path, namespace: str, domain: str
) -> None:
    # `kgr up --domains` leaves a built-in domain out this way
    write_package(mig_dir, "V1__first.yaml", domain, GOOD_NODES, GOOD_RELS)
    (mig_dir / "V2__genes.py").write_text(textwrap.dedent(f"""\
        from graph.migrate.loader import entity

        def apply(ctx):
            ctx.create_entities([entity(f"{domain}:g{{i}}", f"gene {{i}}", "{domain}",
                                        ["Gene"]) for i in range(5)])
        """))
    skipping = make_runner(driver, settings, mig_dir, namespace,
                           skip_scripts=["V1__first.yaml"])
    applied = skipping.migrate()
    assert [(a.version, a.nodes_created) for a in applied] == [(1, 0), (2, 5)]
    assert "skipped" in applied[0].description
    assert counts(driver, settings, domain) == (5, 0)
    later = make_runner(driver, settings, mig_dir, namespace)  # skips nothing now
    assert later.validate() == []
    assert [r.state for r in later.status()] == ["applied", "applied"]
    assert later.migrate() == []  # the choice holds: V1 stays skipped
