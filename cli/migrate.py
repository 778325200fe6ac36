"""``kgr migrate``: apply pending migrations (with progress bars), status, validate, unlock."""

from __future__ import annotations

from pathlib import Path

import typer
from neo4j import Driver

from cli.common import console, handle_errors, open_driver, print_json, print_table, settings
from cli.progress import task_progress
from core.settings import Settings
from graph.migrate.exceptions import MigrationValidationError, summarize
from graph.migrate.history import AppliedMigration
from graph.migrate.runner import DEFAULT_NAMESPACE, MigrationRunner
from graph.server import LocalNeo4j

app = typer.Typer(help="Apply and inspect migrations (bare `kgr migrate` applies the pending).",
                  invoke_without_command=True, no_args_is_help=False)


def _runner(ctx: typer.Context, driver: Driver, cfg: Settings) -> MigrationRunner:
    options = ctx.obj or {}
    dirs: list[Path] | None = options.get("dirs") or None
    return MigrationRunner(driver, cfg, locations=dirs,
                           namespace=options.get("namespace") or DEFAULT_NAMESPACE)


@app.callback(invoke_without_command=True)
@handle_errors
def migrate(
    ctx: typer.Context,
    dirs: list[Path] = typer.Option(
        [], "--dir", help="Migration folder(s) to use instead of the built-in one "
        "(uploaded packages in $KGR_HOME/migrations are always read)"),
    namespace: str = typer.Option(DEFAULT_NAMESPACE, "--namespace", hidden=True,
                                  help="History namespace (tests use their own)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be applied; "
                                 "change nothing"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables"),
) -> None:
    """Apply the pending migrations in order (built-in ones and uploaded packages)."""
    ctx.obj = {"dirs": list(dirs), "namespace": namespace}
    if ctx.invoked_subcommand is not None:
        return
    cfg = settings()
    with open_driver(cfg) as driver:
        runner = _runner(ctx, driver, cfg)
        if dry_run:
            plan = runner.plan()
            if as_json:
                print_json([p.__dict__ for p in plan])
                return
            if not plan:
                console.print("nothing to apply: every migration is applied")
                return
            print_table("would apply (dry run, nothing changed)",
                        ["version", "description", "kind", "action", "nodes", "rels"],
                        [[p.label, p.description, p.kind, p.action, p.nodes,
                          p.relationships] for p in plan])
            return
        if as_json:  # the progress still shows, on stderr
            with task_progress() as progress:
                applied = runner.migrate(progress=progress)
            print_json([a.__dict__ for a in applied])
            return
        apply_pending(runner)


def apply_pending(runner: MigrationRunner, offline: LocalNeo4j | None = None
                  ) -> list[AppliedMigration]:
    """Apply the pending migrations with progress bars and print the counts at the end
    (``kgr migrate``; ``kgr up`` can call it with ``MigrationRunner(driver, settings)``).

    With ``offline`` (the local server), an empty store is loaded by Neo4j's importer where it
    can be (``graph.migrate.offline``), else online."""
    from graph.migrate.offline import migrate_offline

    applied: list[AppliedMigration] | None = None
    with task_progress() as progress:
        if offline is not None:
            result = migrate_offline(runner, offline, progress)
            if result is not None:
                applied, t = result.applied, result.timing
                console.print(
                    f"loaded the empty store offline (neo4j-admin database import): "
                    f"{result.nodes:,} nodes, {result.relationships:,} relationships in "
                    f"{t.total_s:.1f} s (parse {t.record_s:.1f}, CSV {t.csv_s:.1f}, stop "
                    f"{t.stop_s:.1f}, import {t.import_s:.1f}, start {t.start_s:.1f}, "
                    f"indexes {t.schema_s:.1f}, history {t.history_s:.1f})")
        if applied is None:
            applied = runner.migrate(
                progress=progress,
                on_start=lambda m: console.print(
                    f"applying {m.label} {m.description} ({m.script})"))
    if not applied:
        console.print("nothing to apply: every migration is applied")
        return applied
    print_table("applied", ["version", "description", "nodes", "rels", "seconds"],
                [[a.label, a.description, f"{a.nodes_created:,}",
                  f"{a.relationships_created:,}", f"{a.duration_s:.1f}"] for a in applied])
    console.print(f"{len(applied)} migration(s) applied: "
                  f"{sum(a.nodes_created for a in applied):,} nodes, "
                  f"{sum(a.relationships_created for a in applied):,} relationships")
    return applied


@app.command("status")
@handle_errors
def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Applied, pending, modified, missing and interrupted migrations, and the lock."""
    cfg = settings()
    with open_driver(cfg) as driver:
        runner = _runner(ctx, driver, cfg)
        rows = runner.status()
        holder = runner.lock_holder()
    if as_json:
        print_json({"migrations": [{**r.__dict__, "label": r.label, "applied": r.applied.__dict__
                                    if r.applied else None} for r in rows],
                    "lock": holder.__dict__ if holder else None})
        return
    print_table("migrations", ["version", "description", "kind", "state", "applied at",
                               "nodes", "rels", "seconds"],
                [[r.label, r.description, r.kind, r.state,
                  r.applied.applied_at[:19] if r.applied else "",
                  f"{r.applied.nodes_created:,}" if r.applied else "",
                  f"{r.applied.relationships_created:,}" if r.applied else "",
                  f"{r.applied.duration_s:.1f}" if r.applied else ""] for r in rows])
    if holder:
        console.print(f"lock held by {holder.describe()}")


@app.command("validate")
@handle_errors
def validate(ctx: typer.Context) -> None:
    """Fail on an edited applied migration (checksum), a gap, or bad pending load files."""
    cfg = settings()
    with open_driver(cfg) as driver:
        problems = _runner(ctx, driver, cfg).validate()
    if problems:
        raise MigrationValidationError(
            f"{len(problems)} problem(s):\n{summarize(problems, limit=200)}", problems)
    console.print("migrations are valid")


@app.command("unlock")
@handle_errors
def unlock(ctx: typer.Context) -> None:
    """Release the migration lock (left by a killed run); use only when no run is active."""
    cfg = settings()
    with open_driver(cfg) as driver:
        runner = _runner(ctx, driver, cfg)
        holder = runner.lock_holder()
        released = runner.unlock()
    if released and holder:
        console.print(f"released the lock held by {holder.describe()}")
    else:
        console.print("no lock was held")
