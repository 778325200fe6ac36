"""Neighbour retrieval (fusion.serve.retrieval.Neo4jExpander) against the real Neo4j: its caps and
cache,
and exact path reads that agree with the in-memory graph."""

from __future__ import annotations

import random

import pytest
from neo4j import Driver

from core.settings import Settings
from fusion.serve.retrieval import Caps, MemoryExpander, Neo4jExpander, beam_search
from graph.writer import entity_row, relation_row, write_entities, write_relations
from tests.unit.random_graphs import RELATIONS, random_typed_graph

pytestmark = pytest.mark.integration


def test_retrieval_respects_its_caps(driver: Driver, settings: Settings, domain: str) -> None:
    hub = f"{domain}:hub"
    leaves = [f"{domain}:a{i:02d}" for i in range(40)] + [f"{domain}:b{i}" for i in range(3)]
    write_entities(driver, settings.neo4j_database,
                   [entity_row(hub, "Hub", domain, ["Company"])]
                   + [entity_row(u, u.split(":")[1], domain, ["Person"]) for u in leaves])
    write_relations(driver, settings.neo4j_database,
                    [relation_row(u, "CONTROL" if ":a" in u else "INVESTS_IN", hub)
                     for u in leaves])
    expander = Neo4jExpander(driver, settings.neo4j_database)
    rows = expander.expand([hub], Caps(per_type=10))[hub]
    assert len([r for r in rows if r[0] == "CONTROL"]) == 10  # capped per relation type...
    assert len([r for r in rows if r[0] == "INVESTS_IN"]) == 3  # ...so rare ones survive
    assert all(r[1] == "in" for r in rows)
    assert len(Neo4jExpander(driver, settings.neo4j_database).expand(
        [hub], Caps(per_type=50, rows=12))[hub]) == 12

    # the row cap counts in frontier order whatever the cache holds: a leaf (1 row) cached
    # first, then [leaf, hub] with 12 rows gives what one fresh query gives, and asking again
    # reads nothing more from Neo4j
    small = Caps(per_type=50, rows=12)
    fresh = Neo4jExpander(driver, settings.neo4j_database).expand([leaves[0], hub], small)
    warm = Neo4jExpander(driver, settings.neo4j_database)
    warm.expand([leaves[0]], small)
    assert warm.expand([leaves[0], hub], small) == fresh
    assert sum(len(r) for r in fresh.values()) == 12
    before = warm.queries
    assert warm.expand([leaves[0], hub], small) == fresh
    assert warm.queries == before  # the hub's first rows were kept for the same cut
    assert len(warm.expand([hub], Caps(per_type=50, rows=40))[hub]) == 40  # more: read again
    assert warm.queries == before + 1

    def uniform(items, candidates):  # type: ignore[no-untyped-def]
        return [[0.0] * len(c) for c in candidates]

    before = expander.queries
    finals = beam_search(expander, uniform, [(hub, 0.0)], 2, Caps(per_type=50, frontier=7))
    assert finals and all(len(back) <= 7 for f in finals for back in f.back)
    assert all(len(f.answers) <= 7 for f in finals)
    # per hop one degree query and one neighbour query at most (the hub's hops were cached)
    assert expander.queries - before <= 3

    # the degree counts tell which hops exist without reading them; a typed read of one hop
    # does not touch the other
    assert set(expander.actions([hub])[hub]) == {("CONTROL", "in"), ("INVESTS_IN", "in")}
    only = Neo4jExpander(driver, settings.neo4j_database).neighbours(
        [(hub, ("INVESTS_IN", "in"))], Caps(per_type=50))
    assert only == {hub: {("INVESTS_IN", "in"): [f"{domain}:b{i}" for i in range(3)]}}


def test_exact_path_reads_agree_with_the_in_memory_graph(
    driver: Driver, settings: Settings, domain: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Neo4jExpander.common_targets / paths_to (what coordinated questions read beyond the
    # capped lists) against the in-memory walks over the same random graph
    rng = random.Random(3)
    graph = random_typed_graph(rng, num_nodes=30, num_edges=300, unique=True)
    uid = {n: f"{domain}:{n}" for n in graph.names}
    write_entities(driver, settings.neo4j_database, [
        entity_row(uid[n], n, domain, [graph.types[n]]) for n in graph.names])
    write_relations(driver, settings.neo4j_database, [
        relation_row(uid[a], rel, uid[b]) for a, hops in graph.adj.items()
        for (rel, direction), targets in hops.items() if direction == "out" for b in targets])
    memory = MemoryExpander(graph)
    neo = Neo4jExpander(driver, settings.neo4j_database).for_types(RELATIONS)
    nodes = sorted(graph.names)
    compared = 0
    counts: list[tuple[list[str], list[tuple[str, str]], str, int]] = []
    for _ in range(40):
        steps: list[tuple[str, str]] = []
        for _hop in range(rng.randint(1, 3)):
            step = (rng.choice(RELATIONS), rng.choice(["out", "in"]))
            if steps and step[0] == steps[-1][0] and step[1] != steps[-1][1]:
                continue  # straight back over the relationship just taken
            steps.append(step)
        groups = [rng.sample(nodes, rng.randint(1, 3)) for _ in range(rng.randint(2, 3))]
        expected = memory.common_targets(groups, steps, 1000)
        got = neo.common_targets([[uid[n] for n in g] for g in groups], steps, 1000)
        assert sorted(got) == sorted(uid[n] for n in expected)
        compared += bool(expected)
        in_memory = memory.paths_to(groups[0], steps, nodes)
        read = neo.paths_to([uid[n] for n in groups[0]], steps, [uid[n] for n in nodes])
        back = {v: k for k, v in uid.items()}
        assert {back[t] for t in read} <= set(in_memory)
        if len(steps) <= 2:  # no walk of <= 2 such hops takes one relationship twice
            assert {back[t] for t in read} == set(in_memory)
        for target, path in read.items():
            plain = [back[u] for u in path]
            assert plain[0] in groups[0] and path[-1] == target and len(path) == len(steps) + 1
            for (rel, direction), a, b in zip(steps, plain[:-1], plain[1:], strict=True):
                assert b in graph.adj[a][(rel, direction)]
        # counts ("How many ...?"): every entity of the type the path reaches, sources aside
        etype = rng.choice(sorted(set(graph.types.values())))
        counted = memory.count_targets(groups[0], steps, etype)
        assert neo.count_targets([uid[n] for n in groups[0]], steps, etype) == counted
        counts.append((groups[0], steps, etype, counted[0]))
    assert compared >= 10  # the draws did find shared targets
    assert sum(1 for *_, n in counts if n > 0) >= 10
    assert neo.common_targets([[uid[nodes[0]]]], [("NOT_IN_SCHEMA", "out")], 10) == []
    # a type or relation outside the schema is never put into the query: nothing is counted
    assert neo.count_targets([uid[nodes[0]]], [(RELATIONS[0], "out")],
                             "Gene`) DETACH DELETE (x") == (0, True)
    assert neo.count_targets([uid[nodes[0]]], [("NOT_IN_SCHEMA", "out")], etype) == (0, True)
    # a hop frontier past the cap is cut: the count is then a lower bound, and says so
    monkeypatch.setattr("fusion.serve.retrieval.COUNT_FRONTIER", 2)
    cut = 0
    for sources, steps, etype, exact_value in counts:
        value, exact = neo.count_targets([uid[n] for n in sources], steps, etype)
        assert value <= exact_value and (exact or len(steps) > 1)
        if exact:
            assert value == exact_value
        cut += not exact
    assert cut > 0
