"""Writing a migration's data, tagged so that a failed migration can be removed without trace.

Every node a migration creates carries the property ``_mig`` = its tag
(``"<namespace>:<version>"``). Loads only *create* (entities that exist already are refused by
validation and by the ``uid`` constraint), so rolling back is deleting the tagged nodes with
their relationships. A relationship between two nodes created by the same migration needs no
tag of its own (it goes with its nodes, and skipping the property makes the load ~1.5x faster);
one whose ends both existed before is tagged ``_mig`` too, and so is anything a Cypher or
``ctx.run`` statement tags itself.
Writes are batched ``UNWIND`` statements with parameters; relationship types and labels are
Neo4j 5.26 dynamic types (``$(...)``), checked as identifiers before. Relationships between the
migration's own new nodes match their ends by the ``elementId`` that the node ``CREATE``
returned (a direct record lookup, ~3x cheaper on the server than a ``uid`` index seek), grouped
by start node (one seek and one ``_mig`` check per start node, not per relationship), and
``settings.load_writers`` batches are written concurrently (a single write transaction keeps
one server core busy; most of its time is the commit, which runs in parallel across
transactions). Input sorted by start node loads fastest: concurrent batches then rarely lock
the same start node.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from neo4j import Driver, Record
from neo4j.exceptions import TransientError

from core.settings import Settings
from graph.driver import translate_errors
from graph.migrate.exceptions import MigrationFailedError
from graph.schema import ENTITY_LABEL, is_identifier, relation_type_problem
from graph.writer import batched

# Tries of one batch's statement when the server reports a transient error (a deadlock
# between concurrent batches); the waits between them double from 50 ms.
WRITE_ATTEMPTS = 6

# (task description, completed, total or None)
ProgressFn = Callable[[str, int, int | None], None]

# Columnar parameters (parallel lists indexed by i) pack several times faster in the Python
# driver than a list of row maps; one label set and one relationship type per statement.
CREATE_ENTITIES_QUERY = """
UNWIND range(0, size($props) - 1) AS i
CREATE (n:Entity:$($labels))
SET n = $props[i], n._mig = $tag
RETURN n.uid AS uid, elementId(n) AS id
"""

# Both ends created by this migration (their elementIds from CREATE_ENTITIES_QUERY), grouped by
# start node: $s[i] is a start node, $t[i] (and $p[i]) the list of its end nodes (and
# properties). No index seek, no relationship tag. The ``_mig`` check on the start node guards
# against a reused elementId (every relationship then hangs on a tagged node, so a rollback
# removes it); the end nodes are checked once per load by VERIFY_OWN_NODES_QUERY.
CREATE_OWN_RELATIONS_QUERY = """
UNWIND range(0, size($s) - 1) AS i
MATCH (a) WHERE elementId(a) = $s[i] AND a._mig = $tag
UNWIND $t[i] AS t
MATCH (b) WHERE elementId(b) = t
CREATE (a)-[r:$($type)]->(b)
RETURN count(r) AS created
"""

CREATE_OWN_RELATIONS_WITH_PROPS_QUERY = """
UNWIND range(0, size($s) - 1) AS i
MATCH (a) WHERE elementId(a) = $s[i] AND a._mig = $tag
UNWIND range(0, size($t[i]) - 1) AS j
MATCH (b) WHERE elementId(b) = $t[i][j]
CREATE (a)-[r:$($type)]->(b)
SET r += $p[i][j]
RETURN count(r) AS created
"""

VERIFY_OWN_NODES_QUERY = """
UNWIND $ids AS id
MATCH (n) WHERE elementId(n) = id AND n._mig = $tag
RETURN count(n) AS found
"""

CREATE_RELATIONS_QUERY = """
UNWIND range(0, size($s) - 1) AS i
MATCH (a:Entity {uid: $s[i]})
MATCH (b:Entity {uid: $t[i]})
CREATE (a)-[r:$($type) {_mig: $tag}]->(b)
RETURN count(r) AS created
"""

CREATE_RELATIONS_WITH_PROPS_QUERY = """
UNWIND range(0, size($s) - 1) AS i
MATCH (a:Entity {uid: $s[i]})
MATCH (b:Entity {uid: $t[i]})
CREATE (a)-[r:$($type)]->(b)
SET r = $p[i], r._mig = $tag
RETURN count(r) AS created
"""

# A marker per written batch, created in the batch's own transaction: when the driver runs a
# transaction again (its commit's answer was lost with the connection), the marker says that
# the first run committed, and the batch is not written twice (CREATE is not idempotent).
# Markers carry the tag (a rollback removes them) and are deleted once the load is done.
BATCH_DONE_QUERY = "MATCH (b:_LoadBatch {key: $key}) RETURN b.created AS created"
MARK_BATCH_QUERY = "CREATE (:_LoadBatch {key: $key, created: $created, _mig: $tag})"
CLEAR_BATCH_MARKS_QUERY = "MATCH (b:_LoadBatch) WHERE b._mig = $tag DELETE b"
OWN_ENTITY_IDS_QUERY = """
UNWIND $uids AS uid
MATCH (n:Entity {uid: uid}) WHERE n._mig = $tag
RETURN n.uid AS uid, elementId(n) AS id
"""

MISSING_ENDS_QUERY = """
UNWIND $uids AS uid
OPTIONAL MATCH (n:Entity {uid: uid})
WITH uid, n WHERE n IS NULL
RETURN uid
"""

# Auto-commit statements (CALL ... IN TRANSACTIONS) so a rollback of a big load stays bounded.
# The untagged relationships of tagged nodes go first, outgoing then incoming (each one once),
# so that deleting a dense node never holds thousands of relationships in one transaction.
ROLLBACK_OUT_RELATIONS_QUERY = """
MATCH (:Entity {_mig: $tag})-[r]->()
CALL (r) { DELETE r } IN TRANSACTIONS OF $batch_size ROWS
"""
ROLLBACK_IN_RELATIONS_QUERY = """
MATCH (:Entity {_mig: $tag})<-[r]-()
CALL (r) { DELETE r } IN TRANSACTIONS OF $batch_size ROWS
"""
ROLLBACK_ENTITIES_QUERY = """
MATCH (n:Entity {_mig: $tag})
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF $batch_size ROWS
"""
ROLLBACK_OTHER_NODES_QUERY = """
MATCH (n) WHERE n._mig = $tag
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF $batch_size ROWS
"""
ROLLBACK_RELATIONS_QUERY = """
MATCH ()-[r]->() WHERE r._mig = $tag
CALL (r) { DELETE r } IN TRANSACTIONS OF $batch_size ROWS
"""
# How questions name a relationship type of a domain (a load's ``phrasings:``; read by
# ``fusion.language.vocabulary``). One node per (domain, type) and migration: a later migration's
# declaration wins, and a rolled-back one goes with its tag.
CREATE_PHRASINGS_QUERY = """
UNWIND $rows AS row
CREATE (:_Phrasings {domain: $domain, relation: row.relation, forward: row.forward,
                     backward: row.backward, created: datetime(), _mig: $tag})
"""
# other words questions use for an entity type of a domain (a load's ``type_words:``)
CREATE_TYPE_WORDS_QUERY = """
UNWIND $rows AS row
CREATE (:_TypeWords {domain: $domain, type: row.type, words: row.words, created: datetime(),
                     _mig: $tag})
"""
# the node properties of a domain that only keys with the sensitive scope see (a load's
# ``sensitive:``; read by ``GraphStore.sensitive_properties``): one node per migration, the
# union of all of a domain's counts, and a rolled-back one goes with its tag
CREATE_DOMAIN_POLICY_QUERY = """
CREATE (:_DomainPolicy {domain: $domain, sensitive: $sensitive, created: datetime(),
                        _mig: $tag})
"""
COUNT_TAGGED_QUERY = """
CALL () { MATCH (n) WHERE n._mig = $tag RETURN count(n) AS nodes }
CALL () { MATCH ()-[r]->() WHERE r._mig = $tag RETURN count(r) AS rels }
RETURN nodes, rels
"""


def rollback(driver: Driver, database: str, tag: str, batch_size: int = 10_000) -> None:
    """Delete every node and relationship carrying ``_mig = tag`` and every relationship of
    those nodes, in bounded transactions."""
    with translate_errors(), driver.session(database=database) as session:
        # Relationships first, so that deleting a dense node never holds thousands of them
        # in one transaction (the transaction memory pool is bounded).
        for query in (ROLLBACK_RELATIONS_QUERY, ROLLBACK_OUT_RELATIONS_QUERY,
                      ROLLBACK_IN_RELATIONS_QUERY, ROLLBACK_ENTITIES_QUERY,
                      ROLLBACK_OTHER_NODES_QUERY):
            session.run(query, {"tag": tag, "batch_size": batch_size}).consume()


def count_tagged(driver: Driver, database: str, tag: str) -> tuple[int, int]:
    """(nodes, relationships) carrying ``_mig = tag`` (used by tests and checks)."""
    with translate_errors():
        records, _, _ = driver.execute_query(COUNT_TAGGED_QUERY, {"tag": tag}, database_=database)
    return records[0]["nodes"], records[0]["rels"]


def entity(uid: str, name: str, domain: str, types: Sequence[str], **props: Any
           ) -> dict[str, Any]:
    """One entity row for ``MigrationContext.create_entities`` (None properties dropped)."""
    for label in types:
        if not is_identifier(label) or label == ENTITY_LABEL:
            raise MigrationFailedError(f"entity type {label!r} of {uid!r} is not a valid label")
    properties = {k: v for k, v in props.items() if v is not None and v != []}
    properties.update({"uid": uid, "name": name, "domain": domain})
    return {"labels": list(types), "props": properties}


@dataclass
class MigrationContext:
    """What a migration writes through: tagged, batched, counted, with progress.

    Python migrations get one as ``apply(ctx)``; declarative loads use it too.
    """

    driver: Driver
    database: str
    settings: Settings
    tag: str
    version: int
    script: str
    batch_size: int = 10_000
    progress: ProgressFn | None = None
    nodes_created: int = 0
    relationships_created: int = 0
    notes: list[str] = field(default_factory=list)
    # uid -> elementId of the entities this context created (ends matched without an index)
    _created: dict[str, str] = field(default_factory=dict, repr=False)
    _batches: int = 0  # batches written so far: each one's marker key is unique in the load

    def _progress(self, task: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(task, done, total)

    def create_entities(self, rows: Iterable[dict[str, Any]], total: int | None = None,
                        task: str = "entities") -> int:
        """CREATE entity rows (from ``entity()``) in batches; returns how many were created."""
        created = 0
        self._progress(task, 0, total)
        with translate_errors():
            for batch in batched(rows, self.batch_size):
                groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                for row in batch:
                    groups.setdefault(tuple(row["labels"]), []).append(row["props"])
                for labels, props in groups.items():
                    ids = self._write_entities(list(labels), props)
                    self._created.update(ids)
                    created += len(ids)
                    self.nodes_created += len(ids)
                self._progress(task, created, total)
            self.clear_batch_marks()
        return created

    def _batch_key(self) -> str:
        self._batches += 1
        return f"{self.tag}/{self._batches}"

    def _write_entities(self, labels: list[str], props: list[dict[str, Any]]
                        ) -> list[tuple[str, str]]:
        """CREATE one batch of entities, once even if the driver retries its transaction;
        returns (uid, elementId) of each."""
        key = self._batch_key()

        def work(tx: Any) -> list[tuple[str, str]]:
            if tx.run(BATCH_DONE_QUERY, {"key": key}).single() is not None:
                uids = [p["uid"] for p in props]  # written by a run whose answer was lost
                result = tx.run(OWN_ENTITY_IDS_QUERY, {"uids": uids, "tag": self.tag})
                return [(r["uid"], r["id"]) for r in result]
            result = tx.run(CREATE_ENTITIES_QUERY,
                            {"props": props, "labels": labels, "tag": self.tag})
            ids = [(r["uid"], r["id"]) for r in result]
            tx.run(MARK_BATCH_QUERY, {"key": key, "created": len(ids), "tag": self.tag}
                   ).consume()
            return ids

        with self.driver.session(database=self.database) as session:
            return session.execute_write(work)

    def clear_batch_marks(self) -> None:
        """Delete the load's batch markers (once its writes are all done)."""
        with translate_errors():
            self.driver.execute_query(CLEAR_BATCH_MARKS_QUERY, {"tag": self.tag},
                                      database_=self.database)

    def create_relations(self, rel_type: str, rows: Iterable[dict[str, Any]],
                         total: int | None = None, task: str | None = None) -> int:
        """CREATE ``rel_type`` relationships from rows ``{"s": uid, "t": uid, "p": {...}}``.

        Both ends must exist; a row whose end is missing fails the migration (named by the
        row's optional ``"line"`` key). Rows whose ends were both created by this context are
        matched by elementId and left untagged; the others by ``uid``, tagged. Up to
        ``settings.load_writers`` batches are written at once; when this returns or raises,
        none is still running.
        """
        problem = relation_type_problem(rel_type)
        if problem is not None:
            raise MigrationFailedError(problem)
        task = task or rel_type
        writers = max(1, self.settings.load_writers)
        created = 0
        ends: set[str] = set()  # elementIds of own end nodes, verified once at the end
        pending: deque[tuple[Future[int], list[dict[str, Any]]]] = deque()
        self._progress(task, 0, total)

        def collect() -> None:
            nonlocal created
            future, batch = pending.popleft()
            count = future.result()
            if count != len(batch):
                self._missing_ends(rel_type, batch)
            created += count
            self.relationships_created += count
            self._progress(task, created, total)

        with translate_errors(), ThreadPoolExecutor(writers, "kgr-load") as pool:
            try:
                for batch in batched(rows, self.batch_size):
                    statements = self._relation_statements(rel_type, batch, ends)
                    pending.append((pool.submit(self._write_all, statements,
                                                self._batch_key()), batch))
                    while len(pending) > writers:
                        collect()
                while pending:
                    collect()
            finally:
                # On failure, let no batch run on behind the caller's rollback.
                for future, _ in pending:
                    future.cancel()
                pool.shutdown(wait=True)
            self._verify_own_nodes(sorted(ends))
            self.clear_batch_marks()
        return created

    def _relation_statements(self, rel_type: str, batch: list[dict[str, Any]], ends: set[str]
                             ) -> list[tuple[str, dict[str, Any]]]:
        """The (query, parameters) that write one batch: own rows grouped by start node, the
        other rows matched by ``uid``."""
        groups: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
        other: list[dict[str, Any]] = []
        element_id = self._created.get
        for row in batch:  # the client's hot loop: ~1 us per row
            s, t = element_id(row["s"]), element_id(row["t"])
            if s is None or t is None:
                other.append(row)
                continue
            group = groups.get(s)
            if group is None:
                group = groups[s] = ([], [])
            group[0].append(t)
            group[1].append(row.get("p") or {})
        for targets, _ in groups.values():
            ends.update(targets)
        statements: list[tuple[str, dict[str, Any]]] = []
        if groups:
            params: dict[str, Any] = {"s": list(groups), "t": [g[0] for g in groups.values()],
                                      "tag": self.tag, "type": rel_type}
            if any(any(g[1]) for g in groups.values()):
                params["p"] = [g[1] for g in groups.values()]
                statements.append((CREATE_OWN_RELATIONS_WITH_PROPS_QUERY, params))
            else:
                statements.append((CREATE_OWN_RELATIONS_QUERY, params))
        if other:
            props = [r.get("p") or {} for r in other]
            params = {"s": [r["s"] for r in other], "t": [r["t"] for r in other],
                      "tag": self.tag, "type": rel_type}
            if any(props):
                params["p"] = props
                statements.append((CREATE_RELATIONS_WITH_PROPS_QUERY, params))
            else:
                statements.append((CREATE_RELATIONS_QUERY, params))
        return statements

    def _write_all(self, statements: list[tuple[str, dict[str, Any]]], key: str) -> int:
        """Run one batch's statements in one transaction (in a writer thread), once even if
        it is run again; returns relationships created.

        Concurrent batches can deadlock on a shared node; the server then rolls one back and
        it is retried here (the driver's own retry window is kept short for the API).
        """
        def work(tx: Any) -> int:
            done = tx.run(BATCH_DONE_QUERY, {"key": key}).single()
            if done is not None:
                return int(done["created"])
            created = sum(int(tx.run(query, params).single()["created"])
                          for query, params in statements)
            tx.run(MARK_BATCH_QUERY, {"key": key, "created": created, "tag": self.tag}
                   ).consume()
            return created

        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.driver.session(database=self.database) as session:
                    return int(session.execute_write(work))
            except TransientError:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _verify_own_nodes(self, ids: list[str]) -> None:
        """Fail if an end node matched by elementId is no longer one of this migration's
        nodes (deleted, and its id reused, while the load ran)."""
        found = 0
        for chunk in batched(ids, self.batch_size):
            records, _, _ = self.driver.execute_query(
                VERIFY_OWN_NODES_QUERY, {"ids": chunk, "tag": self.tag},
                database_=self.database)
            found += int(records[0]["found"])
        if found != len(ids):
            raise MigrationFailedError(
                f"{self.script}: {len(ids) - found} entities created by this migration were "
                "deleted while its relationships were loaded")

    def _missing_ends(self, rel_type: str, batch: list[dict[str, Any]]) -> None:
        uids = sorted({r["s"] for r in batch} | {r["t"] for r in batch})
        records, _, _ = self.driver.execute_query(MISSING_ENDS_QUERY, {"uids": uids},
                                                  database_=self.database)
        missing = {r["uid"] for r in records}
        for row in batch:
            if row["s"] in missing or row["t"] in missing:
                where = f" ({row['line']})" if row.get("line") else ""
                end = row["s"] if row["s"] in missing else row["t"]
                raise MigrationFailedError(
                    f"{self.script}{where}: {rel_type} relationship {row['s']} -> {row['t']}: "
                    f"entity {end!r} does not exist")
        raise MigrationFailedError(f"{self.script}: some {rel_type} relationships were not "
                                   "created (duplicate uids?)")

    def declare_phrasings(self, domain: str, table: dict[str, tuple[list[str], list[str]]]
                          ) -> None:
        """Record how questions name relationship types of ``domain``
        (``fusion.language.vocabulary``):
        type -> (forward phrasings, backward phrasings), ``{x}`` for the entity asked about."""
        rows = [{"relation": rel, "forward": list(f), "backward": list(b)}
                for rel, (f, b) in sorted(table.items())]
        if rows:
            self.run(CREATE_PHRASINGS_QUERY, {"domain": domain, "rows": rows})

    def declare_type_words(self, domain: str, table: dict[str, list[str]]) -> None:
        """Record other words questions use for entity types of ``domain`` ("medications" for
        Drug; ``fusion.language.vocabulary``)."""
        rows = [{"type": t, "words": list(ws)} for t, ws in sorted(table.items())]
        if rows:
            self.run(CREATE_TYPE_WORDS_QUERY, {"domain": domain, "rows": rows})

    def declare_sensitive(self, domain: str, properties: list[str]) -> None:
        """Record node properties of ``domain`` that only keys with the sensitive scope see."""
        if properties:
            self.run(CREATE_DOMAIN_POLICY_QUERY, {"domain": domain,
                                                  "sensitive": sorted(properties)})

    def run(self, query: str, params: dict[str, Any] | None = None) -> list[Record]:
        """Run one Cypher statement (``$tag`` is passed too: tag what you create with it)."""
        with translate_errors():
            records, _, _ = self.driver.execute_query(
                query, {**(params or {}), "tag": self.tag}, database_=self.database)
        return list(records)

    def note(self, message: str) -> None:
        self.notes.append(message)
