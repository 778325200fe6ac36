"""V1: the constraints and indexes of the store (entity uid, domain, name, full-text)."""

from graph.migrate.loader import MigrationContext
from graph.schema import bootstrap_schema


def apply(ctx: MigrationContext) -> None:
    bootstrap_schema(ctx.driver, ctx.database)
