"""MigrationContext.create_relations against the real Neo4j: concurrent writers, rows grouped
by start node, properties, ends matched by elementId or by uid, and the guards that keep a
failed load removable by its tag.
"""

from __future__ import annotations

import uuid

import pytest
from neo4j import Driver

from core.settings import Settings
from graph.migrate.exceptions import MigrationFailedError
from graph.migrate.loader import MigrationContext, count_tagged, entity, rollback

pytestmark = pytest.mark.integration

RELATIONS_QUERY = """
MATCH (a:Entity {domain: $domain})-[r]->(b:Entity)
RETURN a.uid AS s, type(r) AS type, b.uid AS t, properties(r) AS p
ORDER BY s, t
"""
CREATE_FOREIGN_QUERY = """
CREATE (n:Entity:Thing {uid: $uid, name: 'foreign', domain: $domain})
RETURN elementId(n) AS id
"""


def make_context(driver: Driver, settings: Settings, writers: int, batch_size: int
                 ) -> MigrationContext:
    settings = settings.model_copy(update={"load_writers": writers})
    tag = f"test-{uuid.uuid4().hex[:10]}:1"
    return MigrationContext(driver, settings.neo4j_database, settings, tag, 1, "V1__test.py",
                            batch_size)


def relations(driver: Driver, settings: Settings, domain: str) -> list[tuple]:
    records, _, _ = driver.execute_query(RELATIONS_QUERY, {"domain": domain},
                                         database_=settings.neo4j_database)
    return [(r["s"], r["type"], r["t"], r["p"]) for r in records]


@pytest.mark.parametrize("writers", [1, 3])
def test_relations_grouped_by_start_node_with_concurrent_writers(
        driver: Driver, settings: Settings, domain: str, writers: int) -> None:
    database = settings.neo4j_database
    # One node that existed before the load: its relationships are matched by uid and tagged.
    driver.execute_query(CREATE_FOREIGN_QUERY, {"uid": f"{domain}:old", "domain": domain},
                         database_=database)
    ctx = make_context(driver, settings, writers, batch_size=5)
    ctx.create_entities(entity(f"{domain}:n{i}", f"n{i}", domain, ["Thing"]) for i in range(8))
    # Start nodes repeat inside and across batches, some rows carry properties, some not.
    rows = [{"s": f"{domain}:n{i % 3}", "t": f"{domain}:n{i}", "p": {"w": i} if i % 2 else {}}
            for i in range(3, 8)]
    rows += [{"s": f"{domain}:n{i % 3}", "t": f"{domain}:n{(i + 4) % 8}", "p": {"w": i}}
             for i in range(3, 8)]
    rows += [{"s": f"{domain}:n1", "t": f"{domain}:old"}, {"s": f"{domain}:old",
                                                           "t": f"{domain}:n2", "p": {"w": 99}}]
    progress: list[int] = []
    ctx.progress = lambda task, done, total: progress.append(done)

    assert ctx.create_relations("LINKS", iter(rows), total=len(rows)) == len(rows)

    expected = sorted((r["s"], "LINKS", r["t"], r.get("p") or {}) for r in rows)
    got = relations(driver, settings, domain)
    # Only the two relationships with a pre-existing end carry the tag.
    assert [(s, k, t, {k2: v for k2, v in p.items() if k2 != "_mig"}) for s, k, t, p in got] \
        == expected
    assert sorted((s, t) for s, _, t, p in got if p.get("_mig") == ctx.tag) == sorted(
        [(f"{domain}:n1", f"{domain}:old"), (f"{domain}:old", f"{domain}:n2")])
    assert ctx.relationships_created == len(rows)
    assert progress == [0, 5, 10, 12]

    rollback(driver, database, ctx.tag)
    assert count_tagged(driver, database, ctx.tag) == (0, 0)
    assert relations(driver, settings, domain) == []


def test_missing_end_in_a_later_batch_fails_and_rolls_back(driver: Driver, settings: Settings,
                                                           domain: str) -> None:
    database = settings.neo4j_database
    ctx = make_context(driver, settings, writers=2, batch_size=4)
    ctx.create_entities(entity(f"{domain}:n{i}", f"n{i}", domain, ["Thing"]) for i in range(20))
    rows = [{"s": f"{domain}:n{i}", "t": f"{domain}:n{i + 1}"} for i in range(19)]
    rows.insert(13, {"s": f"{domain}:n3", "t": f"{domain}:missing", "line": "rels.tsv:14"})

    with pytest.raises(MigrationFailedError, match=r"rels.tsv:14.*'.*:missing' does not exist"):
        ctx.create_relations("LINKS", rows)

    # No batch is still running: the rollback leaves nothing behind.
    rollback(driver, database, ctx.tag)
    assert count_tagged(driver, database, ctx.tag) == (0, 0)
    assert relations(driver, settings, domain) == []


def test_end_node_that_is_no_longer_this_migrations_fails(driver: Driver, settings: Settings,
                                                          domain: str) -> None:
    """An elementId that now names another node (ours deleted, its id reused) is caught."""
    database = settings.neo4j_database
    ctx = make_context(driver, settings, writers=2, batch_size=2)
    ctx.create_entities(entity(f"{domain}:n{i}", f"n{i}", domain, ["Thing"]) for i in range(3))
    records, _, _ = driver.execute_query(
        CREATE_FOREIGN_QUERY, {"uid": f"{domain}:other", "domain": domain}, database_=database)
    ctx._created[f"{domain}:n2"] = records[0]["id"]  # as if n2 were deleted and its id reused

    with pytest.raises(MigrationFailedError, match="deleted while"):
        ctx.create_relations("LINKS", [{"s": f"{domain}:n0", "t": f"{domain}:n1"},
                                       {"s": f"{domain}:n1", "t": f"{domain}:n2"}])

    # Every relationship written hangs on a node of this migration, so the rollback takes it.
    rollback(driver, database, ctx.tag)
    assert relations(driver, settings, domain) == []
