"""Errors of the migration system: each derives from ``MigrationError`` (a ``GraphError``) and from
the ``core.errors`` category whose HTTP status it takes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.errors import ConflictError, InvalidInputError
from graph.exceptions import GraphError


@dataclass(frozen=True)
class Problem:
    """One problem found in a migration file: where (file, line) and why."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class MigrationError(GraphError):
    """Root of the migration system's errors (``except MigrationError`` catches them all).

    Each subclass also derives from the ``core.errors`` category whose HTTP status it takes
    in ``api/errors.py``: this root maps to none of its own."""


class MigrationValidationError(MigrationError, InvalidInputError):
    """Migration files (or the set of migrations) failed validation; ``problems`` lists all."""

    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(message, details=[p.as_dict() for p in problems])
        self.problems = problems


class MigrationFailedError(MigrationError, InvalidInputError):
    """A migration failed while applying; the graph was rolled back to before it."""


class MigrationLockedError(MigrationError, ConflictError):
    """Another process holds the migration lock (or a stale lock must be released first)."""


class MigrationChecksumError(MigrationError, ConflictError):
    """An applied migration's file changed since it was applied, or applied files are missing."""


def summarize(problems: list[Problem], limit: int = 20) -> str:
    """Problems as text, one per line, at most ``limit`` lines plus a count of the rest."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more problem(s)")
    return "\n".join(lines)
