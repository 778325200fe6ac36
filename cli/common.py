"""What every CLI command shares: settings, driver, output, and the error -> exit code mapping."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from neo4j import Driver
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from api.exceptions import AuthenticationError, PermissionDeniedError, ServerUnreachableError
from core.errors import (
    ConflictError,
    InvalidInputError,
    KgrError,
    ModelNotReadyError,
    NotFoundError,
    PayloadTooLargeError,
)
from core.settings import Settings, get_settings
from graph.driver import make_driver
from graph.exceptions import DatabaseUnavailableError, ServerLaunchError

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

# Exit codes by error class (2 is click's usage error).
EXIT_CODES: list[tuple[type[KgrError], int]] = [
    (NotFoundError, 3),
    (InvalidInputError, 4),
    (PayloadTooLargeError, 4),
    (ConflictError, 5),
    (ModelNotReadyError, 5),
    (DatabaseUnavailableError, 69),
    (ServerUnreachableError, 69),  # a kgr server (`--url`) that does not answer
    (AuthenticationError, 77),
    (PermissionDeniedError, 77),
    (ServerLaunchError, 70),
]


def exit_code_for(exc: KgrError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a kgr error as one clear line on stderr and exit with its code."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except KgrError as exc:
            err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
            if isinstance(exc, DatabaseUnavailableError) and get_settings().uses_local_server:
                err_console.print("hint: start the local server with `kgr neo4j start`")
            raise typer.Exit(exit_code_for(exc)) from None

    return wrapper


def settings() -> Settings:
    return get_settings()


@contextmanager
def open_driver(cfg: Settings | None = None) -> Iterator[Driver]:
    cfg = cfg or get_settings()
    driver = make_driver(cfg)
    try:
        yield driver
    finally:
        driver.close()


def print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
        text = json.dumps([v.model_dump(mode="json") for v in value], indent=2)
    else:
        text = json.dumps(value, indent=2, default=str)
    sys.stdout.write(text + "\n")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                no_wrap: Sequence[str] = ()) -> None:
    """A table for people; the ``no_wrap`` columns (identifiers) are never folded."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column in no_wrap)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
