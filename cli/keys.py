"""``kgr keys create|list``: API keys (only hashes are stored)."""

from __future__ import annotations

import typer

from api.security import create_key, load_keys
from cli.common import handle_errors, print_table, settings

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


@app.command("create")
@handle_errors
def create(
    role: str = typer.Option("admin", "--role", help="reader or admin"),
    name: str = typer.Option("local", "--name"),
) -> None:
    """Create a key, store its hash and print the key once."""
    key = create_key(settings(), role, name)  # type: ignore[arg-type]
    typer.echo(key)


@app.command("list")
@handle_errors
def list_keys() -> None:
    """Names and roles of the configured keys (never the keys)."""
    print_table("API keys", ["name", "role", "sha256 (prefix)"],
                [(k.name, k.role, k.sha256[:12]) for k in load_keys(settings())])
