"""Batched, parameterized writes of entities and relationships (``UNWIND`` over row batches).

Labels and relationship types are written with Neo4j 5.26 dynamic labels (``$(...)``), so they
stay parameters too; callers validate them first (labels: ``graph.schema.is_identifier``;
relationship types: ``graph.schema.relation_type_problem``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from neo4j import Driver

from core.errors import InvalidInputError
from graph.driver import translate_errors
from graph.schema import is_identifier, relation_type_problem
from graph.stamp import bump_graph_stamp

T = TypeVar("T")

UPSERT_ENTITIES_QUERY = """
UNWIND $rows AS row
MERGE (n:Entity {uid: row.uid})
SET n += row.props
SET n:$(row.labels)
"""

UPSERT_RELATIONS_QUERY = """
UNWIND $rows AS row
MATCH (a:Entity {uid: row.source})
MATCH (b:Entity {uid: row.target})
MERGE (a)-[r:$(row.type)]->(b)
SET r += row.props
"""

DELETE_DOMAIN_RELATIONS_BATCH_QUERY = """
MATCH (n:Entity {domain: $domain})-[r]-()
WITH DISTINCT r LIMIT $batch_size
DELETE r
RETURN count(*) AS deleted
"""

DELETE_DOMAIN_BATCH_QUERY = """
MATCH (n:Entity {domain: $domain})
WITH n LIMIT $batch_size
DETACH DELETE n
RETURN count(*) AS deleted
"""
# how the domain's questions name its relationship and entity types (``fusion.language.vocabulary``)
DELETE_DOMAIN_PHRASINGS_QUERY = """
MATCH (p) WHERE (p:_Phrasings OR p:_TypeWords OR p:_DomainPolicy) AND p.domain = $domain
DELETE p
"""


def batched(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def entity_row(
    uid: str, name: str, domain: str, types: list[str], **props: Any
) -> dict[str, Any]:
    """One row for ``write_entities``; ``props`` become node properties (None values dropped)."""
    for label in types:
        if not is_identifier(label):
            raise InvalidInputError(f"entity type {label!r} is not a valid label")
    properties = {"uid": uid, "name": name, "domain": domain}
    properties.update({k: v for k, v in props.items() if v is not None})
    return {"uid": uid, "labels": list(types), "props": properties}


def relation_row(head: str, rel_type: str, tail: str, **props: Any) -> dict[str, Any]:
    """One row for ``write_relations``."""
    problem = relation_type_problem(rel_type)
    if problem is not None:
        raise InvalidInputError(problem)
    return {
        "source": head, "target": tail, "type": rel_type,
        "props": {k: v for k, v in props.items() if v is not None},
    }


def _write_batches(
    driver: Driver, database: str, query: str, rows: Iterable[dict[str, Any]], batch_size: int,
    on_batch: Callable[[int], None] | None,
) -> int:
    total = 0
    try:
        with translate_errors():
            for batch in batched(rows, batch_size):
                driver.execute_query(query, {"rows": batch}, database_=database)
                total += len(batch)
                if on_batch:
                    on_batch(len(batch))
    finally:
        if total:  # after the data (a failed write may have committed some batches)
            bump_graph_stamp(driver, database)
    return total


def write_entities(
    driver: Driver, database: str, rows: Iterable[dict[str, Any]], batch_size: int = 10_000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """MERGE entities by uid in batches; returns the number of rows written."""
    return _write_batches(driver, database, UPSERT_ENTITIES_QUERY, rows, batch_size, on_batch)


def write_relations(
    driver: Driver, database: str, rows: Iterable[dict[str, Any]], batch_size: int = 10_000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """MERGE relationships between existing entities in batches; returns rows written."""
    return _write_batches(driver, database, UPSERT_RELATIONS_QUERY, rows, batch_size, on_batch)


def delete_domain(driver: Driver, database: str, domain: str, batch_size: int = 10_000) -> int:
    """Remove every entity of ``domain`` (and its relationships) in bounded transactions.

    Relationships go first, in batches, so that a dense node (thousands of relationships)
    never makes one transaction exceed Neo4j's transaction memory limit.
    """
    try:
        return _delete_domain(driver, database, domain, batch_size)
    finally:
        bump_graph_stamp(driver, database)  # after the deletes: see ``graph.stamp``


def _delete_domain(driver: Driver, database: str, domain: str, batch_size: int) -> int:
    deleted = 0
    with translate_errors():
        while True:
            records, _, _ = driver.execute_query(
                DELETE_DOMAIN_RELATIONS_BATCH_QUERY,
                {"domain": domain, "batch_size": batch_size}, database_=database,
            )
            if records[0]["deleted"] == 0:
                break
        while True:
            records, _, _ = driver.execute_query(
                DELETE_DOMAIN_BATCH_QUERY, {"domain": domain, "batch_size": batch_size},
                database_=database,
            )
            count = records[0]["deleted"]
            deleted += count
            if count == 0:
                break
        # and how its questions name its relationship types (``fusion.language.vocabulary``)
        driver.execute_query(DELETE_DOMAIN_PHRASINGS_QUERY, {"domain": domain},
                             database_=database)
    return deleted
