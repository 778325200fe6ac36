"""Assembles the FastAPI application: settings, driver, routers, error handlers, metrics."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from neo4j import Driver

from api.audit import AuditLog, AuditMiddleware
from api.errors import document_errors, install_error_handlers
from api.jobs import JobManager
from api.limits import KeyLimits, RateLimit
from api.metrics import Metrics, MetricsMiddleware
from api.routes import (
    ask,
    audit,
    embeddings,
    entities,
    health,
    jobs,
    migrations,
    models,
    paths,
    schema,
    subgraph,
    ui,
)
from api.security import KeyRing
from api.upload_guard import UploadGuard
from core.errors import KgrError
from core.logs import configure_logging
from core.settings import Settings, get_settings
from fusion.serve import threads
from fusion.serve.pipeline import QAService
from graph.driver import make_driver
from graph.store import GraphStore

log = logging.getLogger("kgr.api")

# set by ``kgr serve --workers N`` for the worker processes it spawns (they build their app
# from the import string ``api.main:create_served_app`` and inherit the environment)
WARM_UP_ENV = "KGR_SERVE_WARM_UP"

ROUTERS = (health, entities, paths, subgraph, schema, jobs, migrations, embeddings, models, ask,
           audit, ui)


def create_app(settings: Settings | None = None, driver: Driver | None = None,
               warm_up: bool = False) -> FastAPI:
    """Build the app; the driver is made from settings unless one is passed in (tests). With
    ``warm_up`` (``kgr serve``) the QA models are loaded and run once in the background at
    startup (``QAService.warm_up``)."""
    settings = settings or get_settings()
    owns_driver = driver is None
    neo4j_driver = driver or make_driver(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threads.serve(settings.serve_torch_threads)
        try:  # jobs cut short by a stopped process; a server without Neo4j still starts
            app.state.jobs.recover()
        except KgrError as exc:
            log.warning("jobs not recovered at startup: %s", exc.message)
        if warm_up:
            app.state.warm_up = "running"
            threading.Thread(target=_warm_up, args=(app,), name="kgr-warm-up",
                             daemon=True).start()
        yield
        if getattr(app.state, "audit", None) is not None:
            app.state.audit.close()
        if owns_driver:
            neo4j_driver.close()

    app = FastAPI(
        title="kgr",
        version="0.1.0",
        description="Knowledge-graph reasoning service: query domain graphs in Neo4j, embed "
        "them with a relation-aware GNN and answer multi-hop questions with evidence paths. "
        "Send an API key in the `X-API-Key` header.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.warm_up = "off"  # "running", then the seconds per domain or "failed"
    app.state.driver = neo4j_driver
    app.state.store = GraphStore(neo4j_driver, settings.neo4j_database)
    app.state.jobs = JobManager(
        neo4j_driver, settings.neo4j_database, max_training_jobs=settings.max_training_jobs,
        stale_after=timedelta(minutes=settings.job_stale_minutes),
        retention=timedelta(days=settings.job_retention_days))
    app.state.keyring = KeyRing.from_settings(settings)
    # one per app: the models, alias indexes and neighbour caches are loaded once
    app.state.qa_service = QAService(settings, neo4j_driver)
    app.state.metrics = Metrics()
    app.state.limits = KeyLimits.from_settings(settings)  # per key, in this process only
    # inside the metrics middleware, so that their 401/413/429 answers are counted too; the
    # rate limit outside the upload guard, so that a refused upload still costs a request
    app.add_middleware(UploadGuard)
    app.add_middleware(RateLimit)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if settings.audit_enabled:
        app.state.audit = AuditLog.from_settings(settings)
        app.add_middleware(AuditMiddleware, log=app.state.audit)
    install_error_handlers(app)
    for module in ROUTERS:
        document_errors(module.router.routes)
        app.include_router(module.router)
    ui.mount_static(app)
    return app


def create_served_app() -> FastAPI:
    """The app of one ``kgr serve`` worker process (``uvicorn`` factory): settings from the
    environment, its own driver, QA warm-up unless ``KGR_SERVE_WARM_UP=0``. What the workers
    share lives in Neo4j (graphs, job records, sensitive-property policies) or on disk (the
    keys file, re-read when it changes; model versions and their active pointers)."""
    configure_logging()
    return create_app(warm_up=os.environ.get(WARM_UP_ENV, "1") != "0")


def _warm_up(app: FastAPI) -> None:
    started = time.perf_counter()
    try:
        seconds = app.state.qa_service.warm_up()
    except Exception as exc:  # noqa: BLE001 - a failed warm-up only costs the first question
        app.state.warm_up = "failed"
        log.warning("QA warm-up failed (%s): %s", type(exc).__name__, exc)
        return
    app.state.warm_up = seconds
    log.info("QA warm-up done in %.1f s: %s", time.perf_counter() - started, seconds)
