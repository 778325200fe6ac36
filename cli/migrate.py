"""``kgr migrate`` (placeholder: filled in by the migrations work)."""

import typer

app = typer.Typer(help="Apply and inspect migrations.", no_args_is_help=True)
