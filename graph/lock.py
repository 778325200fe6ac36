"""Locks held in the graph, so that they hold across processes and hosts: one node per name.

``MERGE`` on a uniqueness-constrained key makes acquiring atomic. A holder refreshes
``heartbeat`` every few seconds from a background thread. A lock whose owner is a dead process
on this host is broken at once; one whose heartbeat is older than ``stale_after_s`` is broken
too when the lock allows it (``break_stale``), else reported as stale.

A holder writes through ``fenced()``: a transaction that first refreshes the heartbeat of its
own lock node, which write-locks that node until the commit. Breaking a stale lock write-locks
the node before it reads the age (``break_stale`` query), so the two serialize: either the
break comes first and the fenced write finds no lock and writes nothing, or the write commits
first and the break then sees a fresh heartbeat and leaves the lock alone. A holder that
stalled past ``stale_after_s`` therefore never writes over the run that took its lock.

Two kinds use it: the migration lock (``graph.migrate.lock``, one per history namespace) and the
model lock (``ModelLock`` here, one per model kind and domain), which keeps a CLI training run,
an API job and an activation from writing the same served version (and, for the encoder, the
same embedding slot in Neo4j) at once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from neo4j import Driver, Transaction

from core.errors import ConflictError, KgrError, ModelBusyError
from graph.driver import translate_errors


@dataclass(frozen=True)
class LockQueries:
    """The Cypher of one lock label; ``$name`` is the lock's key, ``$owner`` its holder."""

    acquire: str
    read: str
    heartbeat: str
    release: str
    break_stale: str
    force_release: str
    constraint: str


# label -> (key property, its uniqueness constraint); labels cannot be parameters, so the
# queries are built once from this allow-list at import, never from input
LOCK_LABELS: dict[str, tuple[str, str]] = {
    "_MigrationLock": ("namespace", "migration_lock_namespace"),
    "_ModelLock": ("name", "model_lock_name"),
}


def _queries(label: str) -> LockQueries:
    key, constraint = LOCK_LABELS[label]
    node = f"(l:`{label}` {{`{key}`: $name}})"
    info = ("RETURN l.owner AS owner, l.pid AS pid, l.host AS host, "
            "toString(l.acquired_at) AS acquired_at, "
            "duration.inSeconds(l.heartbeat, datetime()).seconds AS heartbeat_age_s")
    mine = f"(l:`{label}` {{`{key}`: $name, owner: $owner}})"
    return LockQueries(
        acquire=(f"MERGE {node}\nON CREATE SET l.owner = $owner, l.pid = $pid, l.host = $host, "
                 "l.acquired_at = datetime(), l.heartbeat = datetime()\n" + info),
        read=f"MATCH {node}\n{info}",
        heartbeat=f"MATCH {mine}\nSET l.heartbeat = datetime()\nRETURN count(l) AS held",
        release=f"MATCH {mine}\nDELETE l\nRETURN count(*) AS released",
        # SET first: it waits for a fenced write holding the node, so the age read after it
        # is the committed one (Cypher reads without locks; this is its lost-update rule)
        break_stale=(f"MATCH {mine}\nSET l.break_checked_at = datetime()\nWITH l\n"
                     "WHERE duration.inSeconds(l.heartbeat, datetime()).seconds > $stale_after_s"
                     "\nDELETE l\nRETURN count(*) AS released"),
        force_release=f"MATCH {node}\nDELETE l\nRETURN count(*) AS released",
        constraint=(f"CREATE CONSTRAINT {constraint} IF NOT EXISTS "
                    f"FOR (l:`{label}`) REQUIRE l.`{key}` IS UNIQUE"),
    )


QUERIES: dict[str, LockQueries] = {label: _queries(label) for label in LOCK_LABELS}


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


class GraphLock:
    """Context manager holding the lock ``name`` of ``LABEL``; waits up to ``timeout_s`` for it
    (0: one try). Subclasses set ``LABEL`` and say what a busy lock raises (``busy``)."""

    LABEL = ""

    def __init__(self, driver: Driver, database: str, name: str, timeout_s: float = 30.0,
                 stale_after_s: float = 60.0, heartbeat_s: float = 5.0,
                 break_stale: bool = False) -> None:
        self.driver = driver
        self.database = database
        self.name = name
        self.timeout_s = timeout_s
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.break_stale = break_stale
        self.queries = QUERIES[self.LABEL]
        self.owner = uuid.uuid4().hex
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.broken_stale: LockInfo | None = None

    def busy(self, info: LockInfo) -> KgrError:
        """The error for a lock that ``info``'s holder keeps past the timeout."""
        return ConflictError(f"lock {self.name!r} is held by {info.describe()}",
                             details={"holder": info.__dict__})

    def _params(self) -> dict[str, object]:
        return {"name": self.name, "owner": self.owner}

    def holder(self) -> LockInfo | None:
        with translate_errors():
            records, _, _ = self.driver.execute_query(self.queries.read, self._params(),
                                                      database_=self.database)
        return LockInfo(**records[0].data()) if records else None

    def is_dead_process(self, info: LockInfo) -> bool:
        """True when the holder is a process on this host that no longer runs."""
        return info.host == self.host and not _pid_alive(info.pid)

    def is_dead_holder(self, info: LockInfo) -> bool:
        """True when the holder is provably gone: a dead process on this host (or, with
        ``break_stale``, one whose heartbeat stopped ``stale_after_s`` ago)."""
        if self.is_dead_process(info):
            return True
        return self.break_stale and info.heartbeat_age_s > self.stale_after_s

    def live_holder(self) -> LockInfo | None:
        """The holder that would keep this lock from being taken now, or None."""
        info = self.holder()
        return None if info is None or self.is_dead_holder(info) else info

    def acquire(self) -> None:
        with translate_errors():  # MERGE is atomic only under the key's uniqueness constraint
            self.driver.execute_query(self.queries.constraint, database_=self.database)
        deadline = time.monotonic() + self.timeout_s
        while True:
            with translate_errors():
                records, _, _ = self.driver.execute_query(
                    self.queries.acquire,
                    {**self._params(), "pid": os.getpid(), "host": self.host},
                    database_=self.database)
            info = LockInfo(**records[0].data())
            if info.owner == self.owner:
                break
            if self.is_dead_holder(info) and self._break(info):
                self.broken_stale = info
                continue
            if time.monotonic() >= deadline:
                raise self.busy(info)
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"kgr-lock-{self.name}")
        self._thread.start()

    def _break(self, info: LockInfo) -> bool:
        """Remove ``info``'s lock, only if it is still that holder's and, unless its process
        is dead, still stale once any fenced write of it has committed. True when removed."""
        params: dict[str, object] = {"name": self.name, "owner": info.owner}
        query = self.queries.release
        if not self.is_dead_process(info):
            query, params["stale_after_s"] = self.queries.break_stale, self.stale_after_s
        with translate_errors():
            records, _, _ = self.driver.execute_query(query, params, database_=self.database)
        return bool(records[0]["released"])

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.driver.execute_query(self.queries.heartbeat, self._params(),
                                          database_=self.database)
            except Exception:  # noqa: S110 - a missed heartbeat is retried on the next tick
                pass

    def lost(self) -> KgrError:
        """The error for a write of a holder whose lock was broken meanwhile."""
        return ConflictError(f"lost the lock {self.name!r} (no heartbeat for "
                             f"{self.stale_after_s:g} s, so another run may have taken it)")

    @contextmanager
    def fenced(self) -> Iterator[Transaction]:
        """A write transaction in which this lock is still this run's, until it commits.

        It first refreshes the lock's heartbeat (``lost()`` raised, nothing written, when the
        lock is gone), which holds the lock node write-locked: queries run in the yielded
        transaction and side effects done inside the block (an ``ACTIVE`` file) cannot
        interleave with a run breaking the lock as stale. Commits when the block ends."""
        with translate_errors():
            session = self.driver.session(database=self.database)
        try:
            with translate_errors():
                tx = session.begin_transaction()
                held = tx.run(self.queries.heartbeat, self._params()).single(strict=True)
            if not held["held"]:
                raise self.lost()
            yield tx
            with translate_errors():
                tx.commit()
        finally:
            with suppress(Exception):  # rolls back an uncommitted transaction
                session.close()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 1)
            self._thread = None
        with translate_errors():
            self.driver.execute_query(self.queries.release, self._params(),
                                      database_=self.database)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def force_release(driver: Driver, database: str, label: str, name: str) -> bool:
    """Remove the lock ``name`` of ``label`` whoever holds it."""
    with translate_errors():
        records, _, _ = driver.execute_query(QUERIES[label].force_release, {"name": name},
                                             database_=database)
    return bool(records[0]["released"])


class ModelLock(GraphLock):
    """The lock of one model kind (``encoder`` or ``qa``) of one domain, held by its training
    runs and activations wherever they run (CLI, API, another host). Not waited for: a second
    writer fails at once with ``ModelBusyError``. A holder whose heartbeat stopped two minutes
    ago is taken to be gone (its lock is broken), and a holder writes the served version
    through ``fenced()``, so a broken holder never overwrites the one that broke it."""

    LABEL = "_ModelLock"

    def __init__(self, driver: Driver, database: str, kind: str, domain: str,
                 timeout_s: float = 0.0) -> None:
        super().__init__(driver, database, f"{kind}:{domain}", timeout_s=timeout_s,
                         stale_after_s=120.0, break_stale=True)
        self.kind = kind
        self.domain = domain

    def busy(self, info: LockInfo) -> KgrError:
        return ModelBusyError(
            f"the {self.kind} model of domain {self.domain!r} is being trained or activated by "
            f"another run: {info.describe()}; try again when it has finished",
            details={"holder": info.__dict__})

    def check_free(self) -> None:
        """``ModelBusyError`` now when another run holds the lock (the API's 409 at submit)."""
        info = self.live_holder()
        if info is not None:
            raise self.busy(info)

    def lost(self) -> KgrError:
        return ModelBusyError(
            f"lost the {self.kind} lock of domain {self.domain!r} (no heartbeat for "
            f"{self.stale_after_s:g} s, so another run may have taken it); nothing was "
            "activated")
