"""The offline path of a first load: ``neo4j-admin database import full`` into an empty store.

On a fresh store (no node at all, no history) the pending built-in migrations are run once
against a ``RecordingContext``, which keeps the entities and relationships they would write
instead of writing them. Those are written as CSV files, the local server is stopped, Neo4j's
own importer (``org.neo4j.cli.AdminTool`` from the same jars in ``launcher/lib``) builds the
store from them, the server is started again, the schema is created (it populates the indexes
over the imported nodes), and each migration is recorded in the history with the same
checksum, counts, tags and declarations (phrasings, type words, sensitive properties) as the
online path (``MigrationRunner``) writes, so ``kgr migrate status/validate`` cannot tell them
apart. The importer writes the store files directly, without transactions, which is several
times faster than any Cypher load.

Anything the recording cannot reproduce exactly (a Cypher data migration, ``ctx.run``, a
property value the CSV format cannot carry, a duplicate uid, a relationship whose end does not
exist, a pending upload, a remote server) makes ``plan_offline`` return None *before anything
is written*, and the caller runs the online path, which also gives the usual errors.
"""

from __future__ import annotations

import getpass
import logging
import math
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neo4j import Driver, GraphDatabase

from graph.driver import translate_errors
from graph.migrate.discovery import Migration
from graph.migrate.exceptions import MigrationError, MigrationFailedError
from graph.migrate.history import (
    AppliedMigration,
    ensure_schema,
    read_attempts,
    read_history,
    record_applied,
)
from graph.migrate.loader import MigrationContext, ProgressFn
from graph.migrate.runner import Chain, MigrationRunner
from graph.schema import ENTITY_LABEL, bootstrap_schema, relation_type_problem
from graph.server import ADMIN_TOOL, LIB_DIR, LocalNeo4j
from graph.stamp import bump_graph_stamp

log = logging.getLogger(__name__)

# Built-in Python migrations that only create the schema (``bootstrap_schema``): they write no
# data, so they run online, through the runner, after the import (the import starts from an
# empty store; a schema created before it would be lost).
SCHEMA_SCRIPTS = frozenset({"V1__schema.py"})

# Any node at all: the offline path needs a store the import may replace.
ANY_NODE_QUERY = "MATCH (n) RETURN count(n) > 0 AS found LIMIT 1"
# what the store holds after the import: both read from the counts store, not a scan
STORE_COUNTS_QUERY = """
CALL () { MATCH (n) RETURN count(n) AS nodes }
CALL () { MATCH ()-[r]->() RETURN count(r) AS rels }
RETURN nodes, rels
"""

# Separators inside CSV fields that loaded text never holds (checked per value): the array
# delimiter splits a list property and the labels of a node.
ARRAY_DELIMITER = "\x1f"
ARRAY_DELIMITER_ARG = "U+001F"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class OfflineUnsupportedError(MigrationError):
    """The pending migrations cannot be imported offline exactly; the online path loads them."""


@dataclass(kw_only=True)
class ImportSet:
    """Nodes and relationships to import under one migration tag."""

    tag: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    # (type, row {"s", "t", "p"}, own: both ends created under this tag)
    relations: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)


@dataclass(kw_only=True)
class RecordedMigration(ImportSet):
    """What one pending migration would write, recorded instead of written."""

    migration: Migration
    chain: Chain
    checksum: str
    # "data": imported; "schema": run online after the import; "skip": recorded as skipped
    action: str = "data"
    phrasings: list[tuple[str, dict[str, tuple[list[str], list[str]]]]] = field(
        default_factory=list)
    type_words: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    sensitive: list[tuple[str, list[str]]] = field(default_factory=list)


@dataclass
class OfflinePlan:
    """The pending built-in migrations, recorded, ready to import."""

    migrations: list[RecordedMigration]

    @property
    def nodes(self) -> int:
        return sum(len(m.entities) for m in self.migrations)

    @property
    def relationships(self) -> int:
        return sum(len(m.relations) for m in self.migrations)


@dataclass(frozen=True)
class ImportTiming:
    """Where an offline load's time went (seconds)."""

    record_s: float
    csv_s: float
    stop_s: float
    import_s: float
    start_s: float
    schema_s: float
    history_s: float

    @property
    def total_s(self) -> float:
        return (self.record_s + self.csv_s + self.stop_s + self.import_s + self.start_s
                + self.schema_s + self.history_s)


class _NoDriver:
    """The driver a recorded migration sees: any use means it writes around the context,
    which the recording cannot reproduce."""

    def __getattr__(self, name: str) -> Any:
        raise OfflineUnsupportedError(f"the migration uses the driver directly ({name})")


class RecordingContext(MigrationContext):
    """A ``MigrationContext`` that records what a migration creates instead of writing it.

    ``known`` holds the uids created by the migrations recorded before this one (the store is
    empty, so these are all the entities a relationship may end on)."""

    def __init__(self, record: RecordedMigration, known: set[str], base: MigrationContext
                 ) -> None:
        super().__init__(base.driver, base.database, base.settings, base.tag, base.version,
                         base.script, base.batch_size, base.progress)
        self.driver = _NoDriver()  # type: ignore[assignment]
        self.record = record
        self.known = known
        self.own: set[str] = set()

    def create_entities(self, rows: Iterable[dict[str, Any]], total: int | None = None,
                        task: str = "entities") -> int:
        created = 0
        for row in rows:
            uid = row["props"].get("uid")
            if not isinstance(uid, str) or uid in self.known or uid in self.own:
                raise OfflineUnsupportedError(f"entity uid {uid!r} is missing or not unique")
            self.own.add(uid)
            self.record.entities.append(row)
            created += 1
        self.nodes_created += created
        self._progress(task, created, total)
        return created

    def create_relations(self, rel_type: str, rows: Iterable[dict[str, Any]],
                         total: int | None = None, task: str | None = None) -> int:
        problem = relation_type_problem(rel_type)
        if problem is not None:
            raise MigrationFailedError(problem)
        created = 0
        own, known = self.own, self.known
        append = self.record.relations.append
        for row in rows:
            s, t = row["s"], row["t"]
            s_own, t_own = s in own, t in own
            if not (s_own or s in known) or not (t_own or t in known):
                raise OfflineUnsupportedError(f"a {rel_type} relationship ends on an entity "
                                              "that does not exist")
            append((rel_type, row, s_own and t_own))
            created += 1
        self.relationships_created += created
        self._progress(task or rel_type, created, total)
        return created

    def declare_phrasings(self, domain: str, table: dict[str, tuple[list[str], list[str]]]
                          ) -> None:
        self.record.phrasings.append((domain, table))

    def declare_type_words(self, domain: str, table: dict[str, list[str]]) -> None:
        self.record.type_words.append((domain, table))

    def declare_sensitive(self, domain: str, properties: list[str]) -> None:
        self.record.sensitive.append((domain, properties))

    def run(self, query: str, params: dict[str, Any] | None = None) -> list[Any]:
        raise OfflineUnsupportedError("the migration runs its own Cypher (ctx.run)")

    def clear_batch_marks(self) -> None:  # nothing was written
        return None


# ------------------------------------------------------------------------- CSV files
def _csv_type(value: Any) -> str:
    """The importer's type name for a property value, or OfflineUnsupportedError."""
    if type(value) is str:  # most values: the fast case first
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise OfflineUnsupportedError("an integer property exceeds 64 bits")
        return "long"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OfflineUnsupportedError("a float property is not finite")
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and value:
        kinds = {_csv_type(v) for v in value}
        if len(kinds) != 1 or "[]" in next(iter(kinds)):
            raise OfflineUnsupportedError("a list property mixes types or nests lists")
        kind = kinds.pop()
        if kind == "string" and any(v == "" or ARRAY_DELIMITER in v for v in value):
            raise OfflineUnsupportedError("a list property holds an empty or odd string")
        return f"{kind}[]"
    raise OfflineUnsupportedError(f"a property of type {type(value).__name__} cannot be imported")


def _field(value: Any) -> str:
    """One CSV field: strings quoted (a quote doubled, so an empty string stays one, not a
    null), numbers as Python writes them (``repr`` of a float reads back exactly)."""
    if type(value) is str:
        return '"' + value.replace('"', '""') + '"' if '"' in value else f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return '"' + ARRAY_DELIMITER.join(
        v if isinstance(v, str) else _field(v) for v in value).replace('"', '""') + '"'


def _signature(props: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The (key, type) columns a row needs: rows that share them share a file and header."""
    return tuple(sorted((k, _csv_type(v)) for k, v in props.items() if v is not None))


@dataclass(frozen=True)
class ImportFiles:
    nodes: list[Path]
    relationships: list[Path]
    multiline: bool


def write_import_files(sets: Iterable[ImportSet], folder: Path) -> ImportFiles:
    """Write the nodes and relationships of ``sets`` as the importer's CSV files (one file per set
    of property columns, so that every value keeps its exact type)."""
    nodes: dict[tuple[tuple[str, str], ...], list[str]] = {}
    rels: dict[tuple[tuple[str, str], ...], list[str]] = {}
    multiline = False
    for recorded in sets:
        for row in recorded.entities:
            # ``uid`` is the import id column (``uid:ID`` stores it as the property too)
            props = {**row["props"], "_mig": recorded.tag}
            uid = props.pop("uid")
            labels = [ENTITY_LABEL, *row["labels"]]
            signature = _signature(props)
            line = ",".join([_field(uid), _field(labels),
                             *(_field(props[k]) for k, _ in signature)])
            multiline = multiline or "\n" in line or "\r" in line
            nodes.setdefault(signature, []).append(line)
        for rel_type, row, own in recorded.relations:
            # as the online path: a relationship between the migration's own nodes goes with
            # them (untagged), one to an earlier migration's node carries the tag
            props = {k: v for k, v in (row.get("p") or {}).items() if v is not None}
            if not own:
                props["_mig"] = recorded.tag
            signature = _signature(props)
            line = ",".join([_field(row["s"]), _field(row["t"]), _field(rel_type),
                             *(_field(props[k]) for k, _ in signature)])
            multiline = multiline or "\n" in line or "\r" in line
            rels.setdefault(signature, []).append(line)
    folder.mkdir(parents=True, exist_ok=True)
    node_files: list[Path] = []
    for i, (signature, lines) in enumerate(nodes.items()):
        path = folder / f"nodes{i}.csv"
        header = ["uid:ID", ":LABEL", *(f"{k}:{t}" for k, t in signature)]
        path.write_text(",".join(header) + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
        node_files.append(path)
    rel_files: list[Path] = []
    for i, (signature, lines) in enumerate(rels.items()):
        path = folder / f"relationships{i}.csv"
        header = [":START_ID", ":END_ID", ":TYPE", *(f"{k}:{t}" for k, t in signature)]
        path.write_text(",".join(header) + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
        rel_files.append(path)
    return ImportFiles(node_files, rel_files, multiline)


def import_command(server: LocalNeo4j, files: ImportFiles, heap: str) -> list[str]:
    """``neo4j-admin database import full`` of ``files`` into the server's default database,
    replacing it (it must be stopped)."""
    # C1 only: the importer runs seconds, and C2's compilations cost it more CPU than they save
    # (medical graph, 2 cores: 14.3 -> 8-9 CPU-seconds, 20-23 -> 11-13.5 s wall)
    cmd = ["java", f"-Xmx{heap}", "-XX:TieredStopAtLevel=1", "-cp", f"{LIB_DIR}/*", ADMIN_TOOL,
           "database", "import", "full", server.settings.neo4j_database,
           "--overwrite-destination=true",
           f"--array-delimiter={ARRAY_DELIMITER_ARG}", "--id-type=string",
           "--bad-tolerance=0", "--skip-bad-relationships=false",
           "--skip-duplicate-nodes=false", f"--report-file={files.nodes[0].parent}/report.txt",
           f"--multiline-fields={'true' if files.multiline else 'false'}"]
    cmd += [f"--nodes={path}" for path in files.nodes]
    cmd += [f"--relationships={path}" for path in files.relationships]
    return cmd


def run_import(server: LocalNeo4j, files: ImportFiles) -> None:
    """Run the importer (the server stopped); raise with its output's tail when it fails."""
    server._write_conf()  # the importer reads the data directory from the home's config
    proc = subprocess.run(import_command(server, files, server.settings.neo4j_heap),
                          capture_output=True, text=True, env=server._env(), cwd=server.home)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise MigrationFailedError(f"neo4j-admin database import failed:\n{tail}")


def _reset_database(server: LocalNeo4j) -> None:
    """Remove the default database's files after a failed import: the server creates it
    again, empty, on its next start."""
    name = server.settings.neo4j_database
    for folder in (server.data_dir / "databases" / name, server.data_dir / "transactions" / name):
        shutil.rmtree(folder, ignore_errors=True)


def forget_bookmarks(driver: Driver) -> None:
    """Give the driver's ``execute_query`` a fresh bookmark manager after an import: the store
    was replaced under it and its transaction ids start again from 1, so a bookmark from
    before (transaction 44) names a transaction that never comes, and every later query
    would wait for it until it times out. The driver has no public way to drop them."""
    driver._query_bookmark_manager = GraphDatabase.bookmark_manager()


# --------------------------------------------------------------------- plan and apply
def store_is_empty(driver: Driver, database: str) -> bool:
    with translate_errors():
        records, _, _ = driver.execute_query(ANY_NODE_QUERY, database_=database)
    return not records[0]["found"]


def plan_offline(runner: MigrationRunner) -> OfflinePlan | None:
    """Record the pending built-in migrations of an empty store, or None where the offline
    path does not apply (the store holds a node, an upload is pending, a migration writes
    something the recording cannot reproduce). Writes nothing; validation errors are raised
    as the online path raises them."""
    runner._ensure_schema()
    driver, database = runner.driver, runner.database
    if not store_is_empty(driver, database):
        return None
    if runner.discover(runner.uploads)[0] or any(
            read_attempts(driver, database, c.namespace) or read_history(driver, database,
                                                                          c.namespace)
            for c in runner.chains):
        return None
    chain = runner.builtin
    runner._check_set(chain)
    migrations, _ = runner.discover(chain)
    known: set[str] = set()
    recorded: list[RecordedMigration] = []
    for migration in migrations:
        tag = f"{chain.namespace}:{migration.version}"
        record = RecordedMigration(migration=migration, chain=chain,
                                   checksum=migration.checksum(), tag=tag)
        recorded.append(record)
        if migration.script in runner.skip_scripts:
            record.action = "skip"
            continue
        if migration.kind == "python" and migration.script in SCHEMA_SCRIPTS:
            record.action = "schema"
            continue
        prepared, problems = runner._prepare(migration, chain, check_graph=True)
        if problems:
            # a bad file, or a load that names entities of an earlier migration (not in the
            # store yet): the online path reports or loads it
            log.info("offline import: %s does not validate before the import; loading "
                     "online", migration.script)
            return None
        if migration.kind == "cypher":
            if not prepared.schema_only:
                log.info("offline import: %s writes Cypher; loading online", migration.script)
                return None
            record.action = "schema"
            continue
        base = MigrationContext(driver, database, runner.settings, tag, migration.version,
                                migration.script, runner.batch_size)
        ctx = RecordingContext(record, known, base)
        try:
            runner._run(prepared, ctx)
        except OfflineUnsupportedError as exc:
            log.info("offline import: %s: %s; loading online", migration.script, exc.message)
            return None
        except Exception as exc:  # noqa: BLE001 - reported as the online path reports it
            runner._fail(migration, tag, exc)
        known |= ctx.own
    plan = OfflinePlan(recorded)
    return plan if plan.nodes else None


@dataclass(frozen=True)
class ImportSteps:
    """Seconds of each step of an import into a running, empty local store."""

    csv_s: float
    stop_s: float  # what stopping the server added to writing the files (they overlap)
    import_s: float
    start_s: float
    schema_s: float  # constraints and indexes created over the imported nodes

    @property
    def total_s(self) -> float:
        return self.csv_s + self.stop_s + self.import_s + self.start_s + self.schema_s


def import_into(server: LocalNeo4j, driver: Driver, sets: list[ImportSet],
                progress: ProgressFn | None = None) -> ImportSteps:
    """Replace the running, empty store of ``server`` by ``sets``: write the files while the
    server stops, import, start it again, create the schema. Raises OfflineUnsupportedError
    (the server running again, nothing written) where a value cannot be imported exactly."""
    database = server.settings.neo4j_database
    relationships = sum(len(one.relations) for one in sets)
    with tempfile.TemporaryDirectory(prefix="import-", dir=server.home) as tmp:
        if not store_is_empty(driver, database):  # written to meanwhile: import nothing
            raise OfflineUnsupportedError("the store was written to while the load was "
                                          "prepared")
        # the server shuts down (a checkpoint, seconds) while the files are written
        stopping = threading.Thread(target=server.stop, name="kgr-import-stop")
        started = time.perf_counter()
        stopping.start()
        try:
            files = write_import_files(sets, Path(tmp))
        except BaseException:
            stopping.join()
            server.start()  # nothing was imported: the online path loads into it
            raise
        csv_s = time.perf_counter() - started
        stopping.join()
        stop_s = time.perf_counter() - started - csv_s
        started = time.perf_counter()
        if progress is not None:
            progress("offline import", 0, relationships)
        try:
            run_import(server, files)
        except BaseException:
            _reset_database(server)  # the store was empty: an empty one again
            server.start()
            forget_bookmarks(driver)
            raise
        import_s = time.perf_counter() - started
        if progress is not None:
            progress("offline import", relationships, relationships)
    started = time.perf_counter()
    server.start()
    forget_bookmarks(driver)
    start_s = time.perf_counter() - started
    expected = (sum(len(one.entities) for one in sets), relationships)
    with translate_errors():
        records, _, _ = driver.execute_query(STORE_COUNTS_QUERY, database_=database)
    found = (int(records[0]["nodes"]), int(records[0]["rels"]))
    if found != expected:  # never seen; an empty store again, for the online path
        server.stop()
        _reset_database(server)
        server.start()
        forget_bookmarks(driver)
        raise OfflineUnsupportedError(
            f"the import holds {found[0]:,} nodes and {found[1]:,} relationships, expected "
            f"{expected[0]:,} and {expected[1]:,}")
    started = time.perf_counter()
    bootstrap_schema(driver, database)
    ensure_schema(driver, database)
    return ImportSteps(csv_s, stop_s, import_s, start_s, time.perf_counter() - started)


def apply_offline(runner: MigrationRunner, server: LocalNeo4j, plan: OfflinePlan,
                  record_s: float = 0.0, progress: ProgressFn | None = None
                  ) -> tuple[list[AppliedMigration], ImportTiming]:
    """Import ``plan`` into the (empty) store of ``server`` and record its history."""
    driver, database = runner.driver, runner.database
    steps = import_into(server, driver, list(plan.migrations), progress)
    csv_s, stop_s, import_s = steps.csv_s, steps.stop_s, steps.import_s
    start_s, schema_s = steps.start_s, steps.schema_s
    started = time.perf_counter()
    applied: list[AppliedMigration] = []
    rows = max(1, plan.nodes + plan.relationships)
    shared_s = record_s + csv_s + stop_s + import_s + start_s + schema_s
    for recorded in plan.migrations:
        migration, chain = recorded.migration, recorded.chain
        if recorded.action == "skip":
            applied.append(runner._skip_one(migration, chain))
            continue
        if recorded.action == "schema":
            applied.append(runner._apply_one(migration, chain, progress))
            continue
        applied.append(_record_imported(runner, recorded,
                                        shared_s * (len(recorded.entities)
                                                    + len(recorded.relations)) / rows))
    bump_graph_stamp(driver, database)
    timing = ImportTiming(record_s, csv_s, stop_s, import_s, start_s, schema_s,
                          time.perf_counter() - started)
    return applied, timing


def _record_imported(runner: MigrationRunner, recorded: RecordedMigration, duration_s: float
                     ) -> AppliedMigration:
    """Write the declarations of one imported migration as the online path does, and record
    it in the history (``import_into`` checked the imported counts)."""
    migration = recorded.migration
    ctx = MigrationContext(runner.driver, runner.database, runner.settings, recorded.tag,
                           migration.version, migration.script, runner.batch_size)
    for domain, phrasings in recorded.phrasings:
        ctx.declare_phrasings(domain, phrasings)
    for domain, words in recorded.type_words:
        ctx.declare_type_words(domain, words)
    for domain, sensitive in recorded.sensitive:
        ctx.declare_sensitive(domain, sensitive)
    record = AppliedMigration(
        namespace=recorded.chain.namespace, version=migration.version,
        description=migration.description, script=migration.script, kind=migration.kind,
        checksum=recorded.checksum, applied_at=datetime.now(UTC).isoformat(),
        duration_s=round(duration_s, 3), nodes_created=len(recorded.entities),
        relationships_created=len(recorded.relations), installed_by=getpass.getuser(),
        source=recorded.chain.source)
    record_applied(runner.driver, runner.database, recorded.tag, record)
    return record


@dataclass(frozen=True)
class OfflineResult:
    """An offline load: what was applied, how much, and where the time went."""

    applied: list[AppliedMigration]
    nodes: int
    relationships: int
    timing: ImportTiming


def migrate_offline(runner: MigrationRunner, server: LocalNeo4j,
                    progress: ProgressFn | None = None) -> OfflineResult | None:
    """Apply the pending built-in migrations of an empty local store with the importer; None
    (nothing written) where the online path must load them (``runner.migrate``)."""
    started = time.perf_counter()
    plan = plan_offline(runner)
    if plan is None:
        return None
    try:
        applied, timing = apply_offline(runner, server, plan, time.perf_counter() - started,
                                        progress)
    except OfflineUnsupportedError as exc:
        log.info("offline import: %s; loading online", exc.message)
        return None
    return OfflineResult(applied, plan.nodes, plan.relationships, timing)
