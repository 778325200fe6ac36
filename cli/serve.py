"""``kgr serve`` (the API) and ``kgr up`` (the main job: Neo4j, schema, graphs, models, API)."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from cli.common import console, handle_errors, open_driver, settings
from cli.progress import fraction_progress
from core.errors import InvalidInputError
from core.settings import Settings
from graph.schema import bootstrap_schema
from graph.server import LocalNeo4j, Neo4jSupervisor

if TYPE_CHECKING:
    from api.security import StoredKey

BUILTIN_DOMAINS = ("medical", "finance")
# the built-in migration that loads each built-in domain (migrations/)
DOMAIN_MIGRATIONS = {"medical": "V3__medical_hpo.py", "finance": "V4__finance_findkg.py"}
WORKER_START_TIMEOUT_S = 180  # how long a `kgr serve --workers N` process may take to start
UP_KEY_PREFIX = "up-"  # the name of the admin key that `kgr up` creates (once)
EXAMPLE_QUESTIONS = {
    "medical": ["Which genes are associated with Marfan syndrome?",
                "What phenotypes does Marfan syndrome present?",
                "Which diseases present both arachnodactyly and ectopia lentis?",
                "Does Marfan syndrome present arachnodactyly?",
                "How many phenotypes does Marfan syndrome present?"],
    "finance": ["Who controls Tesla Inc.?"],
}


@handle_errors
def serve(
    host: str | None = typer.Option(None, "--host", help="Default: KGR_API_HOST (127.0.0.1)"),
    port: int | None = typer.Option(None, "--port", help="Default: KGR_API_PORT (8000)"),
    warm_up: bool = typer.Option(True, "--warm-up/--no-warm-up",
                                 help="Load and run the QA models once at startup"),
    workers: int = typer.Option(1, "--workers", min=1, max=64,
                                help="API worker processes (each warms its own QA models)"),
    supervise: bool = typer.Option(
        True, "--supervise/--no-supervise",
        help="Restart the local Neo4j (in KGR_HOME) if it dies while the API runs"),
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import os

    import uvicorn

    from api.main import WARM_UP_ENV, create_app
    from core.logs import configure_logging

    cfg = settings()
    configure_logging()
    bind = {"host": host or cfg.api_host, "port": port or cfg.api_port, "log_level": "info"}
    local = LocalNeo4j(cfg) if cfg.uses_local_server else None
    # the server kgr runs in KGR_HOME is brought back if it dies (an outside NEO4J_URI is
    # someone else's to run)
    supervisor = Neo4jSupervisor(local) if supervise and local is not None \
        and local.pid() is not None else nullcontext()
    with supervisor:
        if workers == 1:
            uvicorn.run(create_app(cfg, warm_up=warm_up), **bind)  # type: ignore[arg-type]
            return
        # several processes: uvicorn spawns each from the import string, and each builds its
        # own app (driver, QA models); jobs, keys and model versions are shared through Neo4j
        # and disk
        os.environ[WARM_UP_ENV] = "1" if warm_up else "0"
        # a worker imports torch and transformers before it answers uvicorn's health ping:
        # with the default 5 s the supervisor kills and respawns it, over and over, on a busy
        # machine
        uvicorn.run("api.main:create_served_app", factory=True, workers=workers,
                    timeout_worker_healthcheck=WORKER_START_TIMEOUT_S,
                    **bind)  # type: ignore[arg-type]


@dataclass(frozen=True)
class UpPlan:
    """What `kgr up` loads and trains: the chosen built-in domains, and the built-in
    migrations of the others, recorded as skipped instead of run."""

    domains: tuple[str, ...]
    skip_migrations: tuple[str, ...]


def plan_up(domains: str) -> UpPlan:
    """The plan for ``--domains``: a comma-separated list of built-in domains, ``all`` or
    ``none`` (a store for the user's own graphs only)."""
    text = domains.strip().lower()
    names = [d.strip() for d in text.split(",") if d.strip()]
    if text == "all":
        names = list(BUILTIN_DOMAINS)
    elif text == "none":
        names = []
    elif not names or any(n not in BUILTIN_DOMAINS for n in names):
        unknown = ", ".join(n for n in names if n not in BUILTIN_DOMAINS) or "(empty)"
        raise InvalidInputError(
            f"unknown domain(s) for --domains: {unknown}; choose from "
            f"{', '.join(BUILTIN_DOMAINS)}, all or none")
    chosen = tuple(d for d in BUILTIN_DOMAINS if d in names)  # the built-in order, once each
    return UpPlan(domains=chosen, skip_migrations=tuple(
        DOMAIN_MIGRATIONS[d] for d in BUILTIN_DOMAINS if d not in chosen))


def up_admin_key(cfg: Settings) -> StoredKey | None:
    """The admin key an earlier ``kgr up`` created, if it is still valid."""
    from api.security import file_keys

    mine = [k for k in file_keys(cfg) if k.name.startswith(UP_KEY_PREFIX)
            and k.role == "admin" and k.domains is None and not k.revoked]
    return mine[-1] if mine else None


@handle_errors
def up(
    serve_api: bool = typer.Option(True, "--serve/--no-serve", help="Serve the API at the end"),
    train: bool = typer.Option(True, "--train/--no-train", help="Train missing models"),
    retrain: bool = typer.Option(False, "--retrain", help="Train even if a model is active"),
    encoder_epochs: int | None = typer.Option(
        None, "--encoder-epochs", help="Encoder epochs (default: sized to the graph)"),
    qa_per_hop: int = typer.Option(600, "--qa-per-hop",
                                   help="Generated training questions per hop count"),
    qa_epochs: int | None = typer.Option(
        None, "--qa-epochs",
        help="Most QA training epochs (default 12, early stopping with patience 5)"),
    host: str | None = typer.Option(None, "--host"),
    port: int | None = typer.Option(None, "--port"),
    domains: str = typer.Option(
        ",".join(BUILTIN_DOMAINS), "--domains",
        help="Built-in domains to load and train: a comma-separated list of "
        f"{', '.join(BUILTIN_DOMAINS)}, or all, or none (only your own graphs). The choice "
        "holds for the store: a left-out domain's migration is recorded as skipped"),
    offline_import: bool = typer.Option(
        False, "--offline-import/--online-load",
        help="On an empty local store, load the built-in graphs with Neo4j's offline importer "
        "(the server restarts once). Off by default: on 2 cores the restart costs more than "
        "the importer saves for the built-in graphs (bench/load_medical.py)"),
) -> None:
    """Start Neo4j, bootstrap the schema, load the built-in graphs, train, then serve."""
    from api.security import create_key
    from cli.migrate import apply_pending
    from graph.encoder import encoder_artifacts, train_domain
    from graph.migrate.runner import MigrationRunner

    plan = plan_up(domains)
    cfg = settings()
    started = time.monotonic()
    if cfg.uses_local_server:
        status = LocalNeo4j(cfg).start()
        console.print(f"[green]Neo4j[/] running at {status.uri} (data in {status.home}/data)")
    with open_driver(cfg) as driver:
        bootstrap_schema(driver, cfg.neo4j_database)
        console.print("[green]schema[/] ready (constraints and indexes)")
        apply_pending(MigrationRunner(driver, cfg, skip_scripts=plan.skip_migrations),
                      offline=LocalNeo4j(cfg) if cfg.uses_local_server and offline_import
                      else None)
        if train:
            from fusion.learn.train import train_from_generated
            from fusion.serve.checkpoint import qa_artifacts

            for domain in plan.domains:
                if retrain or encoder_artifacts(cfg).active_version(domain) is None:
                    with fraction_progress(f"encoder {domain}") as update:
                        overrides = {"epochs": encoder_epochs} if encoder_epochs else None
                        version = train_domain(cfg, driver, domain, progress=update,
                                               overrides=overrides)
                    console.print(f"[green]encoder[/] {domain}: version {version} active")
                else:
                    console.print(f"encoder {domain}: version "
                                  f"{encoder_artifacts(cfg).active_version(domain)} already active")
                if retrain or qa_artifacts(cfg).active_version(domain) is None:
                    with fraction_progress(f"qa model {domain}") as update:
                        result = train_from_generated(cfg, driver, domain, per_hop=qa_per_hop,
                                                      epochs=qa_epochs, progress=update)
                    console.print(f"[green]qa model[/] {domain}: version {result.get('version')}"
                                  " active")
                else:
                    console.print(f"qa model {domain}: version "
                                  f"{qa_artifacts(cfg).active_version(domain)} already active")
    earlier = up_admin_key(cfg)
    url = f"http://{host or cfg.api_host}:{port or cfg.api_port}"
    console.print(f"\nready in {time.monotonic() - started:.0f} s")
    console.print(f"API:      {url}   (OpenAPI docs: {url}/docs)")
    if earlier is not None:
        # only the hash was kept: the key made by an earlier run cannot be shown again
        console.print(f"API key:  {earlier.id} (admin, made by an earlier `kgr up`; "
                      "create another with `kgr keys create --role admin`)", soft_wrap=True)
        key = "$KGR_KEY"
    else:
        key = create_key(cfg, "admin", f"{UP_KEY_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S}").key
        console.print(f"API key:  {key}   (admin; only its hash is stored in {cfg.keys_file})",
                      soft_wrap=True)
    console.print("examples:")
    h = f'-H "X-API-Key: {key}"'
    console.print(f'  curl {h} "{url}/v1/schema"', highlight=False, soft_wrap=True)
    if "medical" in plan.domains:
        console.print(f'  curl {h} "{url}/v1/entities?q=marfan&type=Disease"',
                      highlight=False, soft_wrap=True)
    if "finance" in plan.domains:
        console.print(f'  curl {h} "{url}/v1/entities/finance:17/neighbors?'
                      'relation_type=CONTROL&direction=in"', highlight=False, soft_wrap=True)
    for domain in plan.domains:
        for question in EXAMPLE_QUESTIONS[domain]:
            console.print(f"  curl {h} -H 'content-type: application/json' -X POST {url}/v1/ask "
                          f"-d '{{\"question\": \"{question}\", \"domain\": \"{domain}\"}}'",
                          highlight=False, soft_wrap=True)
    if serve_api:
        serve(host, port, warm_up=True, workers=1, supervise=True)
