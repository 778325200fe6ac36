"""Assembles the FastAPI application: settings, driver, routers, error handlers, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from neo4j import Driver

from api.errors import install_error_handlers
from api.jobs import JobManager
from api.metrics import Metrics
from api.routes import ask, embeddings, entities, health, jobs, migrations, paths, schema, subgraph
from api.security import KeyRing, load_keys
from graph.driver import make_driver
from graph.settings import Settings, get_settings
from graph.store import GraphStore

ROUTERS = (health, entities, paths, subgraph, schema, jobs, migrations, embeddings, ask)


def create_app(settings: Settings | None = None, driver: Driver | None = None) -> FastAPI:
    """Build the app; the driver is made from settings unless one is passed in (tests)."""
    settings = settings or get_settings()
    owns_driver = driver is None
    neo4j_driver = driver or make_driver(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
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
    app.state.driver = neo4j_driver
    app.state.store = GraphStore(neo4j_driver, settings.neo4j_database)
    app.state.jobs = JobManager()
    app.state.keyring = KeyRing(load_keys(settings))
    app.state.metrics = Metrics()
    app.middleware("http")(app.state.metrics.middleware)
    install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    return app
