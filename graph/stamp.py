"""The graph's write stamp: one ``_GraphStamp`` node whose counter every kgr write path bumps.

Readers that cache what they read of the graph (the ask service's alias indexes and
neighbour lists) compare the stamp instead of node and relationship counts: a delete and an
add of the same size leave the counts as they were, but bump the stamp twice. Each bump also
sets a fresh random token, so a stamp node that was deleted and made again (counter back at
1) still reads as a change. A write must bump AFTER its data is committed: a reader that saw
the new stamp with the old data would keep the old data.

Writes that bypass kgr (raw Cypher in a console) do not bump it; ``kgr`` writes do:
``graph.writer`` (entities, relationships, domain deletes) and every migration the runner
applies, fails or rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass

from neo4j import Driver, RoutingControl

from graph.driver import translate_errors

STAMP_ID = "graph"
# MERGE is safe under concurrent bumps: the node is unique by id (graph_stamp_id constraint)
BUMP_GRAPH_STAMP_QUERY = """
MERGE (s:_GraphStamp {id: $id})
SET s.counter = coalesce(s.counter, 0) + 1, s.token = randomUUID(), s.changed_at = datetime()
RETURN s.counter AS counter, s.token AS token
"""
READ_GRAPH_STAMP_QUERY = """
OPTIONAL MATCH (s:_GraphStamp {id: $id})
RETURN coalesce(max(s.counter), 0) AS counter, max(s.token) AS token
"""


@dataclass(frozen=True)
class GraphStamp:
    """The stamp as read: equal stamps mean no kgr write happened in between."""

    counter: int
    token: str | None


def bump_graph_stamp(driver: Driver, database: str) -> GraphStamp:
    with translate_errors():
        records, _, _ = driver.execute_query(BUMP_GRAPH_STAMP_QUERY, {"id": STAMP_ID},
                                             database_=database)
    return GraphStamp(int(records[0]["counter"]), records[0]["token"])


def read_graph_stamp(driver: Driver, database: str) -> GraphStamp:
    with translate_errors():
        records, _, _ = driver.execute_query(READ_GRAPH_STAMP_QUERY, {"id": STAMP_ID},
                                             database_=database, routing_=RoutingControl.READ)
    return GraphStamp(int(records[0]["counter"]), records[0]["token"])
