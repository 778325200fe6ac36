"""Schema bootstrap, the live allow-list of labels and relationship types, identifier quoting."""

from __future__ import annotations

import re
from collections.abc import Iterable

from neo4j import Driver, RoutingControl

from core.errors import InvalidInputError
from graph.driver import translate_errors

ENTITY_LABEL = "Entity"
# Labels kgr uses for its own bookkeeping (migration history, locks); never entity types.
INTERNAL_LABEL_PREFIX = "_"

IDENTIFIER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# Relationship types take any name Neo4j stores (Freebase's "/people/person/nationality",
# "__people__person__nationality", long ones): backtick-quoted, a backtick doubled. Refused:
# control characters and whitespace at either end (invisible, and always a file's mistake),
# and the backslash (Cypher 5 still reads \u0060 inside backticks as a backtick).
RELATION_TYPE_MAX_CHARS = 512
RELATION_TYPE_BAD_RE = re.compile(r"[\x00-\x1f\x7f\\]")

BOOTSTRAP_QUERIES: tuple[str, ...] = (
    "CREATE CONSTRAINT entity_uid IF NOT EXISTS FOR (n:Entity) REQUIRE n.uid IS UNIQUE",
    "CREATE INDEX entity_domain IF NOT EXISTS FOR (n:Entity) ON (n.domain)",
    # the one write-stamp node (``graph.stamp``): unique, so concurrent MERGEs make one
    "CREATE CONSTRAINT graph_stamp_id IF NOT EXISTS FOR (s:_GraphStamp) REQUIRE s.id IS UNIQUE",
    "CREATE INDEX entity_name IF NOT EXISTS FOR (n:Entity) ON (n.name)",
    # background job records (``api.jobs``), shared by every API process
    "CREATE CONSTRAINT job_id IF NOT EXISTS FOR (j:_Job) REQUIRE j.id IS UNIQUE",
    "CREATE CONSTRAINT job_lock_id IF NOT EXISTS FOR (l:_JobLock) REQUIRE l.id IS UNIQUE",
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


def relation_type_problem(name: str) -> str | None:
    """Why ``name`` cannot be a relationship type, or None when it can."""
    if not name or not name.strip():
        return "a relationship type needs a name"
    if len(name) > RELATION_TYPE_MAX_CHARS:
        return f"a relationship type has at most {RELATION_TYPE_MAX_CHARS} characters"
    if name != name.strip():
        return f"relationship type {name!r} starts or ends with whitespace"
    if RELATION_TYPE_BAD_RE.search(name):
        return f"relationship type {name!r} holds a control character or a backslash"
    return None


def is_relation_type(name: str) -> bool:
    return relation_type_problem(name) is None


def quote_relation_type(name: str) -> str:
    """Backtick-quote a relationship type after checking it (``relation_type_problem``); a
    backtick in the name is doubled, so the name can never end the quoting."""
    problem = relation_type_problem(name)
    if problem is not None:
        raise InvalidInputError(problem)
    return "`" + name.replace("`", "``") + "`"


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
    """Relationship types in use. Unlike labels, none is internal: kgr's bookkeeping nodes
    have no relationships, and a loaded type may well start with '_' (Freebase's
    "__people__person__nationality")."""
    with translate_errors():
        records, _, _ = driver.execute_query(
            RELATIONSHIP_TYPES_QUERY, database_=database, routing_=RoutingControl.READ
        )
    return sorted(records[0]["types"] if records else [])


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
