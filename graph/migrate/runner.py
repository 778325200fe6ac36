"""The migration runner: discover, validate, lock, apply in order, record, roll back on failure.

Public entry points (what ``kgr up``, ``kgr migrate`` and ``/v1/migrations`` call):

- ``migrate(driver, settings, progress=...) -> list[AppliedMigration]``
- ``MigrationRunner(driver, settings, ...)`` with ``status()``, ``validate()``, ``plan()``,
  ``migrate()``, ``unlock()`` and ``add_package()`` (an uploaded domain package).
"""

from __future__ import annotations

import getpass
import importlib.util
import logging
import re
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from neo4j import Driver

from core.errors import InvalidInputError, KgrError
from core.settings import PROJECT_ROOT, Settings
from graph.driver import translate_errors
from graph.exceptions import DatabaseUnavailableError
from graph.migrate.discovery import (
    BUILTIN_PREFIX,
    PACKAGE_MANIFESTS,
    UPLOAD_PREFIX,
    Migration,
    discover,
    name_re,
)
from graph.migrate.exceptions import (
    MigrationFailedError,
    MigrationValidationError,
    Problem,
    summarize,
)
from graph.migrate.history import (
    AppliedMigration,
    Attempt,
    end_attempt,
    ensure_schema,
    read_attempts,
    read_history,
    record_applied,
    start_attempt,
)
from graph.migrate.loader import MigrationContext, ProgressFn, rollback
from graph.migrate.lock import LockInfo, MigrationLock, force_release
from graph.migrate.manifest import ParsedLoad, prepare_load
from graph.schema import bootstrap_schema
from graph.stamp import bump_graph_stamp

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "kgr"
SKIPPED_MARK = "(skipped: its domain was not chosen)"
# the history namespace of uploaded packages: "<namespace>/upload"
UPLOAD_NAMESPACE_SUFFIX = "/upload"
BUILTIN_MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
SCHEMA_STATEMENT_RE = re.compile(
    r"^\s*(CREATE\s+(OR\s+REPLACE\s+)?((RANGE|TEXT|POINT|LOOKUP|FULLTEXT|VECTOR)\s+)?"
    r"(INDEX|CONSTRAINT)|DROP\s+(INDEX|CONSTRAINT)|CALL\s+db\.awaitIndex)",
    re.IGNORECASE)

State = Literal["applied", "pending", "modified", "missing", "interrupted"]
Source = Literal["builtin", "upload"]


@dataclass(frozen=True)
class MigrationStatus:
    """One line of ``kgr migrate status``."""

    version: int
    description: str
    script: str
    kind: str
    state: State
    checksum: str | None
    applied: AppliedMigration | None = None
    source: Source = "builtin"

    @property
    def label(self) -> str:
        return f"{UPLOAD_PREFIX if self.source == 'upload' else BUILTIN_PREFIX}{self.version}"


@dataclass(frozen=True)
class PlannedMigration:
    """What ``--dry-run`` says a pending migration would do."""

    version: int
    description: str
    script: str
    kind: str
    action: str
    nodes: int | None = None
    relationships: int | None = None
    source: Source = "builtin"

    @property
    def label(self) -> str:
        return f"{UPLOAD_PREFIX if self.source == 'upload' else BUILTIN_PREFIX}{self.version}"


@dataclass(frozen=True)
class Chain:
    """One chain of versions with its own history namespace: the built-in migrations
    (V1, V2... in the project's ``migrations/``, plus V-named packages uploaded before uploads
    had their own chain) or the uploaded packages (U1, U2... under ``$KGR_HOME/migrations``).
    An upload never takes a built-in number, so a later built-in V5 cannot collide with it,
    and a host without an upload's files still migrates its built-ins."""

    source: Source
    prefix: str
    locations: tuple[Path, ...]
    namespace: str


@dataclass
class _Prepared:
    migration: Migration
    load: ParsedLoad | None = None
    module: ModuleType | None = None
    statements: list[str] = field(default_factory=list)
    schema_only: bool = False


def split_cypher(text: str) -> list[str]:
    """Statements of a Cypher script: ``;`` at the end of a line ends one; ``//`` lines are
    comments."""
    statements: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("//"):
            continue
        stripped = line.rstrip()
        if stripped.endswith(";"):
            current.append(stripped[:-1])
            statement = "\n".join(current).strip()
            if statement:
                statements.append(statement)
            current = []
        else:
            current.append(line)
    rest = "\n".join(current).strip()
    if rest:
        statements.append(rest)
    return statements


def _failure_line(exc: BaseException, path: Path) -> int | None:
    """The deepest line of ``path`` in the exception's traceback."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    return line


class MigrationRunner:
    """Applies the migrations found in ``locations`` and keeps their history in ``namespace``;
    uploaded packages (``upload_dir``) are a second chain, U1, U2..., with its history in
    ``<namespace>/upload`` (``Chain``). Both share one lock."""

    def __init__(self, driver: Driver, settings: Settings, *,
                 locations: list[Path] | None = None, upload_dir: Path | None = None,
                 namespace: str = DEFAULT_NAMESPACE, batch_size: int | None = None,
                 lock_timeout_s: float | None = None,
                 skip_scripts: Collection[str] = ()) -> None:
        self.driver = driver
        # pending migrations recorded as skipped instead of run (`kgr up --domains` leaves out
        # a built-in domain); recorded, so that the history stays in order for later ones
        self.skip_scripts = frozenset(skip_scripts)
        self.settings = settings
        self.database = settings.neo4j_database
        self.upload_dir = upload_dir or (settings.home / "migrations")
        base = locations if locations is not None else [BUILTIN_MIGRATIONS_DIR]
        # the upload folder too: packages uploaded before uploads had a chain are V-named
        self.locations = [*base, self.upload_dir] if self.upload_dir not in base else list(base)
        self.namespace = namespace
        self.builtin = Chain("builtin", BUILTIN_PREFIX, tuple(self.locations), namespace)
        self.uploads = Chain("upload", UPLOAD_PREFIX, (self.upload_dir,),
                             namespace + UPLOAD_NAMESPACE_SUFFIX)
        self.chains = (self.builtin, self.uploads)
        self.batch_size = batch_size or settings.batch_size
        self.lock_timeout_s = (lock_timeout_s if lock_timeout_s is not None
                               else settings.migrate_lock_timeout_s)
        self._schema_ready = False

    # ---------------------------------------------------------------- reading
    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            bootstrap_schema(self.driver, self.database)
            ensure_schema(self.driver, self.database)
            self._schema_ready = True

    def discover(self, chain: Chain | None = None) -> tuple[list[Migration], list[Problem]]:
        """The migrations of ``chain`` (default: both chains, built-ins first)."""
        migrations: list[Migration] = []
        problems: list[Problem] = []
        for one in (chain,) if chain is not None else self.chains:
            found, bad = discover(one.locations, one.prefix)
            migrations += found
            problems += bad
        return migrations, problems

    def history(self, chain: Chain | None = None) -> list[AppliedMigration]:
        self._ensure_schema()
        return [a for one in ((chain,) if chain is not None else self.chains)
                for a in read_history(self.driver, self.database, one.namespace)]

    def attempts(self, chain: Chain | None = None) -> list[Attempt]:
        self._ensure_schema()
        return [a for one in ((chain,) if chain is not None else self.chains)
                for a in read_attempts(self.driver, self.database, one.namespace)]

    def lock_holder(self) -> LockInfo | None:
        return self._lock().holder()

    def status(self) -> list[MigrationStatus]:
        """Every migration on disk or in the history, built-ins first, then uploads: applied,
        pending, modified, missing (applied but its file is gone) or interrupted (its run
        died; rolled back next run)."""
        return [row for chain in self.chains for row in self._status(chain)]

    def _status(self, chain: Chain) -> list[MigrationStatus]:
        migrations, _ = self.discover(chain)
        applied = {a.version: a for a in self.history(chain)}
        interrupted = {a.version for a in self.attempts(chain)}
        rows: list[MigrationStatus] = []
        for migration in migrations:
            checksum = migration.checksum()
            record = applied.pop(migration.version, None)
            state: State
            if record is None:
                state = "interrupted" if migration.version in interrupted else "pending"
            elif record.checksum != checksum:
                state = "modified"
            else:
                state = "applied"
            rows.append(MigrationStatus(migration.version, migration.description,
                                        migration.script, migration.kind, state, checksum, record,
                                        chain.source))
        for record in applied.values():
            rows.append(MigrationStatus(record.version, record.description, record.script,
                                        record.kind, "missing", None, record, chain.source))
        return sorted(rows, key=lambda r: r.version)

    def validate(self, deep: bool = True) -> list[Problem]:
        """Problems with the set of migrations, chain by chain: bad names, duplicate
        versions, applied ones that were edited or removed, gaps in the numbering, pending
        ones older than the newest applied; with ``deep``, also every problem in the pending
        declarative loads' files. An applied upload whose files are not on this host is no
        problem (uploads live in one host's ``$KGR_HOME``): ``status`` shows it as missing."""
        return [p for chain in self.chains for p in self._validate(chain, deep)]

    def _validate(self, chain: Chain, deep: bool) -> list[Problem]:
        migrations, problems = self.discover(chain)
        rows = self._status(chain)
        for row in rows:
            if row.state == "modified" and row.applied is not None:
                problems.append(Problem(row.script, None,
                                        f"{row.label} was changed after it was applied "
                                        f"(checksum {row.applied.checksum[:12]}... is now "
                                        f"{(row.checksum or '')[:12]}...)"))
            elif row.state == "missing" and chain.source == "builtin":
                problems.append(Problem(row.script, None,
                                        f"{row.label} was applied but its file is gone"))
        versions = sorted({r.version for r in rows})
        expected = 1
        for version in versions:
            if version > expected:
                missing = ", ".join(f"{chain.prefix}{v}" for v in range(expected, version))
                problems.append(Problem(f"{chain.prefix}{version}", None,
                                        f"gap in the version numbers: {missing} missing"))
            expected = version + 1
        applied_max = max((r.version for r in rows if r.applied is not None), default=0)
        for row in rows:
            if row.state in ("pending", "interrupted") and row.version < applied_max:
                problems.append(Problem(row.script, None,
                                        f"{row.label} is pending but {chain.prefix}{applied_max} "
                                        "is applied already (out of order)"))
        if deep and not problems:
            pending = {r.version for r in rows if r.state in ("pending", "interrupted")}
            for migration in migrations:
                if migration.version in pending:
                    problems.extend(self._prepare(migration, chain, check_graph=True)[1])
        return problems

    def _check_set(self, chain: Chain) -> None:
        problems = self._validate(chain, deep=False)
        if problems:
            what = "built-in migrations" if chain.source == "builtin" else "uploaded packages"
            raise MigrationValidationError(
                f"the {what} do not validate ({len(problems)} problem(s)); nothing of them "
                f"was applied:\n{summarize(problems)}", problems)

    # -------------------------------------------------------------- preparing
    def _prepare(self, migration: Migration, chain: Chain, check_graph: bool
                 ) -> tuple[_Prepared, list[Problem]]:
        """Read and check a migration before anything is written."""
        prepared = _Prepared(migration)
        script = str(migration.path)
        if migration.kind == "manifest":
            assert migration.manifest_path is not None
            load, problems = prepare_load(self.driver if check_graph else None, self.database,
                                          migration.manifest_path)
            base = migration.manifest_path.parent
            problems = [Problem(p.file if p.file.startswith(("/", "(")) else str(base / p.file),
                                p.line, p.message) for p in problems]
            prepared.load = load
            return prepared, problems
        try:
            text = migration.path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            return prepared, [Problem(script, None, f"not valid UTF-8: {exc.reason}")]
        if migration.kind == "cypher":
            statements = split_cypher(text)
            kinds = {bool(SCHEMA_STATEMENT_RE.match(s)) for s in statements}
            if not statements:
                return prepared, [Problem(script, None, "no Cypher statements")]
            if len(kinds) > 1:
                return prepared, [Problem(script, None,
                                          "mixes schema statements (indexes, constraints) and "
                                          "data statements; put them in separate migrations")]
            prepared.statements = statements
            prepared.schema_only = kinds == {True}
            return prepared, []
        try:
            compile(text, script, "exec")
        except SyntaxError as exc:
            return prepared, [Problem(script, exc.lineno, f"syntax error: {exc.msg}")]
        if check_graph:  # importing runs module-level code; only when about to apply
            module_name = re.sub(r"[^A-Za-z0-9_]", "_",
                                 f"kgr_migration_{chain.namespace}_{migration.label}")
            spec = importlib.util.spec_from_file_location(module_name, migration.path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                return prepared, [Problem(script, _failure_line(exc, migration.path),
                                          f"cannot import: {type(exc).__name__}: {exc}")]
            if not callable(getattr(module, "apply", None)):
                return prepared, [Problem(script, None, "has no apply(ctx) function")]
            prepared.module = module
        return prepared, []

    def plan(self) -> list[PlannedMigration]:
        """What ``migrate`` would do (the dry run); reads only."""
        planned: list[PlannedMigration] = []
        problems: list[Problem] = []
        for chain in self.chains:
            self._check_set(chain)
            migrations, _ = self.discover(chain)
            pending = {r.version: r for r in self._status(chain)
                       if r.state in ("pending", "interrupted")}
            for migration in migrations:
                row = pending.get(migration.version)
                if row is None:
                    continue
                action = "apply"
                if row.state == "interrupted":
                    action = "roll back the interrupted attempt, then apply"
                prepared, found = self._prepare(migration, chain,
                                                check_graph=migration.kind == "manifest")
                problems.extend(found)
                nodes = rels = None
                if prepared.load is not None:
                    nodes, rels = len(prepared.load.entities), prepared.load.relation_count
                    action += f" (load domain {prepared.load.domain!r})"
                elif migration.kind == "cypher":
                    action += f" ({len(prepared.statements)} Cypher statement(s))"
                planned.append(PlannedMigration(migration.version, migration.description,
                                                migration.script, migration.kind, action, nodes,
                                                rels, chain.source))
        if problems:
            raise MigrationValidationError(
                f"{len(problems)} problem(s) in pending migrations:\n{summarize(problems)}",
                problems)
        return planned

    # --------------------------------------------------------------- applying
    def _lock(self) -> MigrationLock:
        # one lock for both chains: an upload and `kgr migrate` never run at once
        return MigrationLock(self.driver, self.database, self.namespace,
                             timeout_s=self.lock_timeout_s)

    def _recover(self) -> list[Attempt]:
        """Roll back migrations whose run died midway (under the lock)."""
        attempts = [a for chain in self.chains
                    for a in read_attempts(self.driver, self.database, chain.namespace)]
        for attempt in attempts:
            rollback(self.driver, self.database, attempt.tag, self.batch_size)
            end_attempt(self.driver, self.database, attempt.tag)
        if attempts:
            bump_graph_stamp(self.driver, self.database)
        return attempts

    def migrate(self, dry_run: bool = False, progress: ProgressFn | None = None,
                on_start: Callable[[Migration], None] | None = None) -> list[AppliedMigration]:
        """Apply every pending migration in order, built-ins first, then uploads; returns
        what was applied. The built-ins are applied when their chain validates, whatever the
        uploads' state.

        With ``dry_run`` nothing is written (see ``plan`` for the details).
        """
        self._ensure_schema()
        if dry_run:
            self.plan()
            return []
        self._check_set(self.builtin)
        with self._lock():
            self._recover()
            return self._apply_pending(progress, on_start)

    def _apply_pending(self, progress: ProgressFn | None,
                       on_start: Callable[[Migration], None] | None) -> list[AppliedMigration]:
        applied: list[AppliedMigration] = []
        for chain in self.chains:
            # again, under the lock: another run may have applied meanwhile
            self._check_set(chain)
            migrations, _ = self.discover(chain)
            done = {a.version for a in read_history(self.driver, self.database,
                                                    chain.namespace)}
            for migration in migrations:
                if migration.version in done:
                    continue
                if migration.script in self.skip_scripts:
                    applied.append(self._skip_one(migration, chain))
                    continue
                if on_start is not None:
                    on_start(migration)
                applied.append(self._apply_one(migration, chain, progress))
        return applied

    def _skip_one(self, migration: Migration, chain: Chain) -> AppliedMigration:
        """Record ``migration`` as done without running it: it writes nothing."""
        record = AppliedMigration(
            namespace=chain.namespace, version=migration.version,
            description=f"{migration.description} {SKIPPED_MARK}", script=migration.script,
            kind=migration.kind, checksum=migration.checksum(),
            applied_at=datetime.now(UTC).isoformat(), duration_s=0.0, nodes_created=0,
            relationships_created=0, installed_by=getpass.getuser())
        record_applied(self.driver, self.database, f"{chain.namespace}:{migration.version}",
                       record)
        return record

    def _apply_one(self, migration: Migration, chain: Chain,
                   progress: ProgressFn | None) -> AppliedMigration:
        prepared, problems = self._prepare(migration, chain, check_graph=True)
        if problems:
            raise MigrationValidationError(
                f"{migration.script} does not validate ({len(problems)} problem(s)); nothing "
                f"was written:\n{summarize(problems)}", problems)
        checksum = migration.checksum()
        tag = f"{chain.namespace}:{migration.version}"
        ctx = MigrationContext(self.driver, self.database, self.settings, tag, migration.version,
                               migration.script, self.batch_size, progress)
        start_attempt(self.driver, self.database, chain.namespace, tag, migration.version,
                      migration.script)
        started = time.perf_counter()
        try:
            return self._run_and_record(prepared, chain, ctx, checksum, started)
        finally:
            # after what it wrote was committed, or rolled back (``graph.stamp``)
            self._bump_stamp()

    def _bump_stamp(self) -> None:
        try:
            bump_graph_stamp(self.driver, self.database)
        except KgrError as exc:  # Neo4j went away: the migration's own error says more
            log.warning("could not bump the graph's write stamp: %s", exc.message)

    def _run_and_record(self, prepared: _Prepared, chain: Chain, ctx: MigrationContext,
                        checksum: str, started: float) -> AppliedMigration:
        migration = prepared.migration
        tag = ctx.tag
        try:
            self._run(prepared, ctx)
        except BaseException as exc:
            self._fail(migration, tag, exc)
            raise AssertionError("unreachable") from exc  # _fail always raises
        record = AppliedMigration(
            namespace=chain.namespace, version=migration.version,
            description=migration.description, script=migration.script, kind=migration.kind,
            checksum=checksum, applied_at=datetime.now(UTC).isoformat(),
            duration_s=round(time.perf_counter() - started, 3),
            nodes_created=ctx.nodes_created, relationships_created=ctx.relationships_created,
            installed_by=getpass.getuser(), source=chain.source)
        record_applied(self.driver, self.database, tag, record)
        return record

    def _run(self, prepared: _Prepared, ctx: MigrationContext) -> None:
        migration = prepared.migration
        if prepared.load is not None:
            load = prepared.load
            ctx.create_entities(load.entities, total=len(load.entities),
                                task=f"{load.domain} entities")
            for rel_type, rows in load.relations.items():
                ctx.create_relations(rel_type, rows, total=len(rows))
            ctx.declare_phrasings(load.domain, load.phrasings)
            ctx.declare_type_words(load.domain, load.type_words)
            ctx.declare_sensitive(load.domain, load.sensitive)
        elif migration.kind == "cypher":
            if prepared.schema_only:
                with translate_errors():
                    for statement in prepared.statements:
                        self.driver.execute_query(statement, database_=self.database)
            else:
                def work(tx: Any) -> None:
                    for statement in prepared.statements:
                        tx.run(statement, {"tag": ctx.tag}).consume()

                with translate_errors(), self.driver.session(database=self.database) as session:
                    session.execute_write(work)
        else:
            assert prepared.module is not None
            prepared.module.apply(ctx)

    def _fail(self, migration: Migration, tag: str, exc: BaseException) -> None:
        """Roll back what the failed migration wrote, close its attempt, raise a clear error."""
        try:
            rollback(self.driver, self.database, tag, self.batch_size)
            end_attempt(self.driver, self.database, tag)
            undone = "the graph was rolled back to before it"
        except KgrError:
            undone = ("it could not be rolled back now (Neo4j unreachable); the next "
                      "`kgr migrate` rolls it back before anything else")
        script = str(migration.path)
        if isinstance(exc, MigrationValidationError):
            raise exc
        if isinstance(exc, DatabaseUnavailableError):
            raise DatabaseUnavailableError(
                f"{migration.script} failed: {exc.message}; {undone}") from exc
        if isinstance(exc, KgrError):
            raise MigrationFailedError(f"{migration.script} failed: {exc.message}; {undone}",
                                       details=exc.details) from exc
        if not isinstance(exc, Exception):  # KeyboardInterrupt and friends
            raise exc
        line = _failure_line(exc, migration.path) if migration.kind == "python" else None
        where = f"{script}:{line}" if line else script
        raise MigrationFailedError(
            f"{where}: {type(exc).__name__}: {exc}; {undone}",
            details=[Problem(script, line, f"{type(exc).__name__}: {exc}").as_dict()]) from exc

    def unlock(self) -> bool:
        """Release the namespace's lock whoever holds it; True when there was one."""
        self._ensure_schema()
        return force_release(self.driver, self.database, self.namespace)

    # ------------------------------------------------------------ uploads
    def add_package(self, files: dict[str, bytes], slug: str | None = None,
                    progress: ProgressFn | None = None) -> list[AppliedMigration]:
        """Store an uploaded domain package (manifest + files) as the next upload, U<n>, under
        ``upload_dir`` and apply it (with any other pending one); all-or-nothing: a package
        that fails validation or loading is removed again."""
        manifests = [name for name in files if name in PACKAGE_MANIFESTS]
        if len(manifests) != 1:
            raise InvalidInputError("a domain package needs exactly one manifest.yaml, "
                                    "manifest.yml or manifest.json")
        for name in files:
            if "/" in name or "\\" in name or name.startswith(".") or not name:
                raise InvalidInputError(f"file name {name!r} is not allowed in a package")
        self._ensure_schema()
        for chain in self.chains:
            self._check_set(chain)
        with self._lock():
            self._recover()
            self.upload_dir.mkdir(parents=True, exist_ok=True)
            staging = self.upload_dir / f".upload-{uuid.uuid4().hex[:8]}"
            staging.mkdir()
            try:
                for name, data in files.items():
                    (staging / name).write_bytes(data)
                load, problems = prepare_load(self.driver, self.database, staging / manifests[0])
                if problems or load is None:
                    problems = [Problem(p.file if p.file != str(staging / manifests[0])
                                        else manifests[0], p.line, p.message) for p in problems]
                    raise MigrationValidationError(
                        f"the package does not validate ({len(problems)} problem(s)); nothing "
                        f"was written:\n{summarize(problems)}", problems)
                migrations, _ = self.discover(self.uploads)
                history = read_history(self.driver, self.database, self.uploads.namespace)
                version = max([0, *(m.version for m in migrations),
                               *(a.version for a in history)]) + 1
                name_slug = re.sub(r"[^A-Za-z0-9_-]+", "_", slug or f"load_{load.domain}")
                final = (self.upload_dir
                         / f"{UPLOAD_PREFIX}{version}__{name_slug.strip('_') or 'upload'}")
                if not name_re(UPLOAD_PREFIX).match(final.name):
                    raise InvalidInputError(f"cannot name the package {final.name!r}")
                staging.rename(final)
                staging = final
                return self._apply_pending(progress, None)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise


def migrate(driver: Driver, settings: Settings, progress: ProgressFn | None = None,
            dry_run: bool = False) -> list[AppliedMigration]:
    """Apply the pending built-in and uploaded migrations (``kgr up`` calls this)."""
    return MigrationRunner(driver, settings).migrate(dry_run=dry_run, progress=progress)


def builtin_runner(driver: Driver, settings: Settings) -> MigrationRunner:
    return MigrationRunner(driver, settings)


__all__ = ["AppliedMigration", "MigrationRunner", "MigrationStatus", "PlannedMigration",
           "migrate", "split_cypher"]
