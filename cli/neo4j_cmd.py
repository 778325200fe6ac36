"""``kgr neo4j start|stop|status|build``: the local Neo4j server."""

from __future__ import annotations

import typer

from cli.common import console, handle_errors, print_json, settings
from core.errors import InvalidInputError
from graph.server import LocalNeo4j

app = typer.Typer(help="Run the local Neo4j server (not used when NEO4J_URI is set).",
                  no_args_is_help=True)


def _local() -> LocalNeo4j:
    cfg = settings()
    if not cfg.uses_local_server:
        raise InvalidInputError(
            f"NEO4J_URI is set ({cfg.neo4j_uri}); kgr does not manage that server"
        )
    return LocalNeo4j(cfg)


@app.command()
@handle_errors
def build() -> None:
    """Fetch the Neo4j jars from Maven Central (done by start on first use)."""
    path = LocalNeo4j.build()
    console.print(f"Neo4j jars in {path}")


@app.command()
@handle_errors
def start(timeout: float = typer.Option(180.0, help="Seconds to wait for Bolt")) -> None:
    """Start the server in the background and wait until Bolt answers (idempotent)."""
    status = _local().start(timeout_s=timeout)
    console.print(f"Neo4j is running (pid {status.pid}) at {status.uri}; home {status.home}")


@app.command()
@handle_errors
def stop() -> None:
    """Stop the server cleanly; data stays in $KGR_HOME/neo4j/data."""
    was_running = _local().stop()
    console.print("Neo4j stopped" if was_running else "Neo4j was not running")


@app.command()
@handle_errors
def status(json_out: bool = typer.Option(False, "--json", help="JSON output")) -> None:
    """Show whether the local server runs (exit code 1 when it does not)."""
    st = _local().status()
    if json_out:
        print_json({"running": st.running, "pid": st.pid, "uri": st.uri, "home": str(st.home)})
    else:
        state = "running" if st.running else "stopped"
        console.print(f"Neo4j {state} (pid {st.pid}) at {st.uri}; home {st.home}")
    if not st.running:
        raise typer.Exit(1)
