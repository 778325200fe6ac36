"""The query forms for wide schemas (relationship types as parameters) read the same hops and
neighbours as the per-type forms, on the real Neo4j."""

from __future__ import annotations

import pytest
from neo4j import Driver

from core.settings import Settings
from fusion.serve.retrieval import Caps, Neo4jExpander, action_queries
from tests.family import family_triples, graph_of, load_family

pytestmark = pytest.mark.integration


def test_wide_and_narrow_queries_read_the_same_graph(driver: Driver, settings: Settings,
                                                     domain: str) -> None:
    load_family(driver, settings, domain)
    graph = graph_of(family_triples(), domain)
    types = graph.relation_types()
    assert not action_queries(types).wide and action_queries(
        [f"T{i}" for i in range(30)]).wide  # more than WIDE_SCHEMA_TYPES: the wide forms
    narrow = Neo4jExpander(driver, settings.neo4j_database, relation_types=types, wide=False)
    wide = Neo4jExpander(driver, settings.neo4j_database, relation_types=types, wide=True)
    uids = [f"{domain}:{u}" for u in sorted(graph.names)]
    hops = narrow.actions(uids)
    assert hops == wide.actions(uids)
    assert sum(len(h) for h in hops.values()) > len(uids)  # people have several kinds of hop
    requests = [(uid, action) for uid in uids[:40] for action in hops[uid]]
    caps = Caps(per_type=3, frontier=100, rows=10_000, beam=8)
    read = narrow.neighbours(requests, caps)
    assert read == wide.neighbours(requests, caps)
    # and what was read is the graph: person_10's parents, as recorded
    parents = read[f"{domain}:person_10"][("parents", "out")]
    assert {p.split(":", 1)[1] for p in parents} == \
        set(graph.adj["person_10"][("parents", "out")])
