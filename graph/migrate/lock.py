"""The migration lock: one ``_MigrationLock`` node per namespace, held with a heartbeat.

``MERGE`` on the uniqueness-constrained ``namespace`` makes acquiring atomic. A holder refreshes
``heartbeat`` every few seconds from a background thread. A lock whose owner is a dead process
on this host is broken automatically; one whose heartbeat is older than ``stale_after_s``
is reported as stale and can be released with ``kgr migrate unlock``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from types import TracebackType

from neo4j import Driver

from graph.driver import translate_errors
from graph.migrate.exceptions import MigrationLockedError

ACQUIRE_LOCK_QUERY = """
MERGE (l:_MigrationLock {namespace: $namespace})
ON CREATE SET l.owner = $owner, l.pid = $pid, l.host = $host,
              l.acquired_at = datetime(), l.heartbeat = datetime()
RETURN l.owner AS owner, l.pid AS pid, l.host AS host, toString(l.acquired_at) AS acquired_at,
       duration.inSeconds(l.heartbeat, datetime()).seconds AS heartbeat_age_s
"""
READ_LOCK_QUERY = """
MATCH (l:_MigrationLock {namespace: $namespace})
RETURN l.owner AS owner, l.pid AS pid, l.host AS host, toString(l.acquired_at) AS acquired_at,
       duration.inSeconds(l.heartbeat, datetime()).seconds AS heartbeat_age_s
"""
HEARTBEAT_QUERY = """
MATCH (l:_MigrationLock {namespace: $namespace, owner: $owner})
SET l.heartbeat = datetime()
RETURN count(l) AS held
"""
RELEASE_LOCK_QUERY = """
MATCH (l:_MigrationLock {namespace: $namespace, owner: $owner})
DELETE l
RETURN count(*) AS released
"""
FORCE_RELEASE_LOCK_QUERY = """
MATCH (l:_MigrationLock {namespace: $namespace})
DELETE l
RETURN count(*) AS released
"""


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock."""

    owner: str
    pid: int
    host: str
    acquired_at: str
    heartbeat_age_s: int

    def describe(self) -> str:
        return (f"pid {self.pid} on {self.host} since {self.acquired_at} "
                f"(last heartbeat {self.heartbeat_age_s} s ago)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed child not yet reaped) is dead too.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class MigrationLock:
    """Context manager holding the namespace's lock; waits up to ``timeout_s`` for it."""

    def __init__(self, driver: Driver, database: str, namespace: str, timeout_s: float = 30.0,
                 stale_after_s: float = 60.0, heartbeat_s: float = 5.0) -> None:
        self.driver = driver
        self.database = database
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.owner = uuid.uuid4().hex
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.broken_stale: LockInfo | None = None

    def _params(self) -> dict[str, object]:
        return {"namespace": self.namespace, "owner": self.owner}

    def holder(self) -> LockInfo | None:
        with translate_errors():
            records, _, _ = self.driver.execute_query(READ_LOCK_QUERY, self._params(),
                                                      database_=self.database)
        return LockInfo(**records[0].data()) if records else None

    def is_dead_holder(self, info: LockInfo) -> bool:
        """True when the holder is provably gone: a dead process on this host."""
        return info.host == self.host and not _pid_alive(info.pid)

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            with translate_errors():
                records, _, _ = self.driver.execute_query(
                    ACQUIRE_LOCK_QUERY,
                    {**self._params(), "pid": os.getpid(), "host": self.host},
                    database_=self.database)
            info = LockInfo(**records[0].data())
            if info.owner == self.owner:
                break
            if self.is_dead_holder(info):
                # The holder was killed: break its lock (only if it is still that holder's).
                with translate_errors():
                    self.driver.execute_query(
                        RELEASE_LOCK_QUERY, {"namespace": self.namespace, "owner": info.owner},
                        database_=self.database)
                self.broken_stale = info
                continue
            if time.monotonic() >= deadline:
                hint = ""
                if info.heartbeat_age_s > self.stale_after_s:
                    hint = (" The lock looks stale (no heartbeat); if that process is gone, "
                            "release it with `kgr migrate unlock`.")
                raise MigrationLockedError(
                    f"another migration run holds the lock of namespace {self.namespace!r}: "
                    f"{info.describe()}; gave up after waiting {self.timeout_s:g} s.{hint}",
                    details={"holder": info.__dict__})
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"kgr-migrate-lock-{self.namespace}")
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.driver.execute_query(HEARTBEAT_QUERY, self._params(), database_=self.database)
            except Exception:  # noqa: S110 - a missed heartbeat is retried on the next tick
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 1)
            self._thread = None
        with translate_errors():
            self.driver.execute_query(RELEASE_LOCK_QUERY, self._params(), database_=self.database)

    def __enter__(self) -> MigrationLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def force_release(driver: Driver, database: str, namespace: str) -> bool:
    """Remove the namespace's lock whoever holds it (``kgr migrate unlock``)."""
    with translate_errors():
        records, _, _ = driver.execute_query(FORCE_RELEASE_LOCK_QUERY, {"namespace": namespace},
                                             database_=database)
    return bool(records[0]["released"])
