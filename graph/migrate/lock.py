"""The migration lock: one ``_MigrationLock`` node per history namespace (``graph.lock``).

A lock whose owner is a dead process on this host is broken automatically; one whose heartbeat
is older than ``stale_after_s`` is reported as stale and can be released with
``kgr migrate unlock`` (a migration half applied by a live but silent process must not be
run over).
"""

from __future__ import annotations

from neo4j import Driver

from core.errors import KgrError
from graph.lock import GraphLock, LockInfo
from graph.lock import force_release as force_release_lock
from graph.migrate.exceptions import MigrationLockedError

__all__ = ["LockInfo", "MigrationLock", "force_release"]


class MigrationLock(GraphLock):
    """Context manager holding the namespace's lock; waits up to ``timeout_s`` for it."""

    LABEL = "_MigrationLock"

    def __init__(self, driver: Driver, database: str, namespace: str, timeout_s: float = 30.0,
                 stale_after_s: float = 60.0, heartbeat_s: float = 5.0) -> None:
        super().__init__(driver, database, namespace, timeout_s=timeout_s,
                         stale_after_s=stale_after_s, heartbeat_s=heartbeat_s)
        self.namespace = namespace

    def busy(self, info: LockInfo) -> KgrError:
        hint = ""
        if info.heartbeat_age_s > self.stale_after_s:
            hint = (" The lock looks stale (no heartbeat); if that process is gone, "
                    "release it with `kgr migrate unlock`.")
        return MigrationLockedError(
            f"another migration run holds the lock of namespace {self.namespace!r}: "
            f"{info.describe()}; gave up after waiting {self.timeout_s:g} s.{hint}",
            details={"holder": info.__dict__})


def force_release(driver: Driver, database: str, namespace: str) -> bool:
    """Remove the namespace's lock whoever holds it (``kgr migrate unlock``)."""
    return force_release_lock(driver, database, MigrationLock.LABEL, namespace)
