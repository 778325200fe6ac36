"""``kgr serve`` (the API) and ``kgr up`` (the main job: Neo4j, schema, graphs, models, API)."""

from __future__ import annotations

import typer

from cli.common import console, handle_errors, open_driver, settings
from graph.schema import bootstrap_schema
from graph.server import LocalNeo4j


@handle_errors
def serve(
    host: str | None = typer.Option(None, "--host", help="Default: KGR_API_HOST (127.0.0.1)"),
    port: int | None = typer.Option(None, "--port", help="Default: KGR_API_PORT (8000)"),
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.main import create_app

    cfg = settings()
    uvicorn.run(create_app(cfg), host=host or cfg.api_host, port=port or cfg.api_port,
                log_level="info")


@handle_errors
def up(
    serve_api: bool = typer.Option(True, "--serve/--no-serve", help="Serve the API at the end"),
) -> None:
    """Start Neo4j, bootstrap the schema, load the built-in graphs, train, then serve."""
    cfg = settings()
    if cfg.uses_local_server:
        status = LocalNeo4j(cfg).start()
        console.print(f"Neo4j running at {status.uri}")
    with open_driver(cfg) as driver:
        bootstrap_schema(driver, cfg.neo4j_database)
        console.print("schema ready")
    if serve_api:
        serve(None, None)
