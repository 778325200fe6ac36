"""``kgr keys create|list|revoke``: API keys (only hashes are stored)."""

from __future__ import annotations

import typer

from api.security import ROLES, create_key, describe, load_keys, revoke_key
from cli.common import console, handle_errors, print_json, print_table, settings
from core.errors import InvalidInputError

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


@app.command("create")
@handle_errors
def create(
    role: str = typer.Option("admin", "--role", help="reader or admin"),
    name: str = typer.Option("local", "--name"),
    domains: str | None = typer.Option(
        None, "--domains", help="Comma-separated domains the key may see (default: all)"),
    sensitive: bool = typer.Option(
        False, "--sensitive", help="The key may see the properties domains declare sensitive"),
) -> None:
    """Create a key, store its hash and print the key once (its id goes to stderr)."""
    if role not in ROLES:
        raise InvalidInputError(f"--role must be one of {', '.join(ROLES)}")
    created = create_key(settings(), role, name,
                         domains=domains.split(",") if domains is not None else None,
                         sensitive=sensitive)
    typer.echo(f"key id {created.key_id} (for `kgr keys revoke` and `kgr audit`)", err=True)
    typer.echo(created.key)


@app.command("list")
@handle_errors
def list_keys(as_json: bool = typer.Option(False, "--json", help="JSON for scripts")) -> None:
    """Every key's id, name, role, domains, scopes and dates (never the key or its hash)."""
    columns = ["id", "name", "role", "domains", "sensitive", "created", "revoked"]
    rows = [describe(k) for k in load_keys(settings())]
    if as_json:
        print_json(rows)
        return
    print_table("API keys", columns, [[str(r[c]) for c in columns] for r in rows],
                no_wrap=("id",))


@app.command("revoke")
@handle_errors
def revoke(key_id: str = typer.Argument(..., help="The key's id (`kgr keys list`)")) -> None:
    """Revoke a key: every running API refuses it (401) within about a second."""
    key = revoke_key(settings(), key_id)
    console.print(f"revoked {key.id} ({key.name}, {key.role}) at {key.revoked_at}")
