"""The migration lock (graph.migrate.lock) against the real Neo4j: contention, waiting, timeouts
and stale locks.

Every test uses its own migrations folder (tmp_path), its own history namespace and a fresh
domain, so it never touches the built-in history or other tests' data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from neo4j import Driver

from core.settings import Settings
from graph.migrate.exceptions import (
    MigrationLockedError,
)
from graph.migrate.lock import MigrationLock
from tests.integration.migrations_support import (
    GOOD_NODES,
    GOOD_RELS,
    counts,
    make_runner,
    write_package,
)

pytestmark = pytest.mark.integration


def test_lock_contention_waits_then_times_out(driver: Driver, settings: Settings,
                                               mig_dir: Path, namespace: str,
                                               domain: str) -> None:
    write_package(mig_dir, "V1__load.yaml", domain, GOOD_NODES, GOOD_RELS)
    holder = MigrationLock(driver, settings.neo4j_database, namespace, timeout_s=1)
    holder.acquire()
    try:
        runner = make_runner(driver, settings, mig_dir, namespace, lock_timeout_s=0.5)
        with pytest.raises(MigrationLockedError, match=f"pid {os.getpid()}"):
            runner.migrate()
        assert counts(driver, settings, domain) == (0, 0)
        assert runner.lock_holder() is not None
        # A waiting run proceeds once the holder releases.
        timer = threading.Timer(0.7, holder.release)
        timer.start()
        waiting = make_runner(driver, settings, mig_dir, namespace, lock_timeout_s=20)
        started = time.monotonic()
        assert [a.version for a in waiting.migrate()] == [1]
        assert time.monotonic() - started >= 0.6
        timer.join()
    finally:
        holder.release()
    assert make_runner(driver, settings, mig_dir, namespace).lock_holder() is None


STALE_LOCK_QUERY = """
CREATE (:_MigrationLock {namespace: $namespace, owner: 'someone', pid: $pid, host: $host,
        acquired_at: datetime() - duration('PT10M'), heartbeat: datetime() - duration('PT10M')})
"""


def test_stale_locks_are_detected_and_released(driver: Driver, settings: Settings,
                                                mig_dir: Path, namespace: str,
                                                domain: str) -> None:
    write_package(mig_dir, "V1__load.yaml", domain, GOOD_NODES, GOOD_RELS)
    # A lock of a dead process on this host is broken automatically.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    driver.execute_query(STALE_LOCK_QUERY, {"namespace": namespace, "pid": dead.pid,
                                            "host": socket.gethostname()},
                         database_=settings.neo4j_database)
    runner = make_runner(driver, settings, mig_dir, namespace, lock_timeout_s=0.5)
    assert [a.version for a in runner.migrate()] == [1]

    # One from another host with an old heartbeat: reported as stale, released by unlock.
    (mig_dir / "V2__more.cypher").write_text(
        f"CREATE (:Entity:Thing {{uid: '{domain}:y', name: 'Y', domain: '{domain}'}});\n")
    driver.execute_query(STALE_LOCK_QUERY, {"namespace": namespace, "pid": 1,
                                            "host": "elsewhere"},
                         database_=settings.neo4j_database)
    with pytest.raises(MigrationLockedError, match="kgr migrate unlock"):
        runner.migrate()
    assert runner.unlock() is True
    assert [a.version for a in runner.migrate()] == [2]
