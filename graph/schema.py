"""Schema bootstrap, the live allow-list of labels and relationship types, identifier quoting."""

from __future__ import annotations

import re
from collections.abc import Iterable

from neo4j import Driver, RoutingControl

from graph.driver import translate_errors
from graph.exceptions import InvalidInputError

ENTITY_LABEL = "Entity"
# Labels kgr uses for its own bookkeeping (migration history, locks); never entity types.
INTERNAL_LABEL_PREFIX = "_"

IDENTIFIER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

BOOTSTRAP_QUERIES: tuple[str, ...] = (
    "CREATE CONSTRAINT entity_uid IF NOT EXISTS FOR (n:Entity) REQUIRE n.uid IS UNIQUE",
    "CREATE INDEX entity_domain IF NOT EXISTS FOR (n:Entity) ON (n.domain)",
    "CREATE INDEX entity_name IF NOT EXISTS FOR (n:Entity) ON (n.name)",
    "CREATE FULLTEXT INDEX entity_fulltext IF NOT EXISTS FOR (n:Entity) ON EACH [n.name, n.aliases]"
    " OPTIONS {indexConfig: {`fulltext.analyzer`: 'standard-no-stop-words'}}",
)
AWAIT_INDEXES_QUERY = "CALL db.awaitIndexes($timeout_s)"
LABELS_QUERY = "CALL db.labels() YIELD label RETURN collect(label) AS labels"
RELATIONSHIP_TYPES_QUERY = (
    "CALL db.relationshipTypes() YIELD relationshipType "
    "RETURN collect(relationshipType) AS types"
)


def bootstrap_schema(driver: Driver, database: str, timeout_s: int = 120) -> None:
    """Create the constraints and indexes the store needs; running it again changes nothing."""
    with translate_errors():
        for query in BOOTSTRAP_QUERIES:
            driver.execute_query(query, database_=database)
        driver.execute_query(AWAIT_INDEXES_QUERY, {"timeout_s": timeout_s}, database_=database)


def is_identifier(name: str) -> bool:
    return bool(IDENTIFIER_RE.match(name))


def quote_identifier(name: str) -> str:
    """Backtick-quote a label, relationship type or property key after checking its shape."""
    if not is_identifier(name):
        raise InvalidInputError(
            f"{name!r} is not a valid identifier (letters, digits and '_', starting with a letter)"
        )
    return f"`{name}`"


def live_entity_types(driver: Driver, database: str) -> list[str]:
    """Type labels in use on entities (all labels but ``Entity`` and internal ones)."""
    with translate_errors():
        records, _, _ = driver.execute_query(
            LABELS_QUERY, database_=database, routing_=RoutingControl.READ
        )
    labels = records[0]["labels"] if records else []
    return sorted(
        label for label in labels
        if label != ENTITY_LABEL and not label.startswith(INTERNAL_LABEL_PREFIX)
    )


def live_relation_types(driver: Driver, database: str) -> list[str]:
    """Relationship types in use (internal ones, starting with '_', left out)."""
    with translate_errors():
        records, _, _ = driver.execute_query(
            RELATIONSHIP_TYPES_QUERY, database_=database, routing_=RoutingControl.READ
        )
    types = records[0]["types"] if records else []
    return sorted(t for t in types if not t.startswith(INTERNAL_LABEL_PREFIX))


def check_allowed(values: Iterable[str], allowed: Iterable[str], kind: str) -> list[str]:
    """Return ``values`` if each is a known ``kind`` (label or relationship type), else 422."""
    allowed_set = set(allowed)
    values = list(values)
    unknown = [v for v in values if v not in allowed_set]
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5])
        raise InvalidInputError(
            f"unknown {kind}: {shown}; known {kind}s are: {', '.join(sorted(allowed_set)[:50])}",
            details={"unknown": unknown},
        )
    return values
