"""GraphStore against the real Neo4j: search, lookup, neighbours, paths, subgraph, schema."""

from __future__ import annotations

import pytest
from neo4j import Driver

from core.errors import InvalidInputError, NotFoundError
from core.settings import Settings
from graph.store import GraphStore

pytestmark = pytest.mark.integration


def test_get_entity_returns_the_node_model(store: GraphStore, toy_graph: dict[str, str]) -> None:
    entity = store.get_entity(toy_graph["OMIM:154700"])
    assert entity.name == "Marfan syndrome"
    assert entity.types == ["Disease"]
    assert "MFS" in entity.aliases
    assert entity.uid.endswith(":OMIM:154700")


def test_unknown_uid_is_not_found(store: GraphStore, toy_graph: dict[str, str]) -> None:
    with pytest.raises(NotFoundError):
        store.get_entity("nope:does-not-exist")


def test_search_is_fuzzy_and_filters_by_type_and_domain(
    store: GraphStore, toy_graph: dict[str, str], domain: str
) -> None:
    page = store.search_entities("marfn syndrom", domain=domain)  # two typos
    assert page.items and page.items[0].uid == toy_graph["OMIM:154700"]
    by_alias = store.search_entities("fibrillin", domain=domain)
    assert [e.uid for e in by_alias.items] == [toy_graph["NCBIGene:2200"]]
    genes = store.search_entities(None, types=["Gene"], domain=domain)
    assert {e.name for e in genes.items} == {"FBN1", "COL5A1"}


def test_search_paginates_with_a_cursor(store: GraphStore, toy_graph: dict[str, str],
                                        domain: str) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = store.search_entities(None, domain=domain, limit=3, cursor=cursor)
        seen += [e.uid for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(toy_graph.values())
    assert len(seen) == len(set(seen))


def test_neighbors_filter_by_type_and_direction(store: GraphStore,
                                                toy_graph: dict[str, str]) -> None:
    marfan = toy_graph["OMIM:154700"]
    out = store.neighbors(marfan, relation_types=["HAS_PHENOTYPE"], direction="out")
    assert {n.entity.name for n in out} == {"Arachnodactyly", "Tall stature", "Joint hypermobility"}
    assert all(n.direction == "out" and n.relation.source == marfan for n in out)
    incoming = store.neighbors(marfan, direction="in")
    assert [(n.relation.type, n.entity.name) for n in incoming] == [("ASSOCIATED_WITH", "FBN1")]
    assert len(store.neighbors(marfan, limit=2)) == 2


def test_injection_in_relation_type_is_rejected_and_changes_nothing(
    store: GraphStore, toy_graph: dict[str, str], domain: str
) -> None:
    before = store.schema_summary()
    for bad in ["X`]) DETACH DELETE n //", "HAS_PHENOTYPE` DETACH DELETE n", "NOT_A_TYPE"]:
        with pytest.raises(InvalidInputError):
            store.neighbors(toy_graph["OMIM:154700"], relation_types=[bad])
    with pytest.raises(InvalidInputError):
        store.search_entities("marfan", types=["X`) DETACH DELETE n //"])
    after = store.schema_summary()
    assert [d for d in after.domains if d.domain == domain] == [
        d for d in before.domains if d.domain == domain
    ]


def test_shortest_paths_between_gene_and_phenotype(store: GraphStore,
                                                   toy_graph: dict[str, str]) -> None:
    gene, phen = toy_graph["NCBIGene:2200"], toy_graph["HP:0001382"]
    paths = store.shortest_paths(gene, phen, max_hops=4)
    assert paths and all(p.length == 2 for p in paths)
    assert [n.name for n in paths[0].nodes] == ["FBN1", "Marfan syndrome", "Joint hypermobility"]
    with pytest.raises(InvalidInputError):
        store.shortest_paths(gene, phen, max_hops=5)
    assert store.shortest_paths(gene, phen, max_hops=1) == []


def test_subgraph_respects_hops_and_caps(store: GraphStore, toy_graph: dict[str, str]) -> None:
    marfan = toy_graph["OMIM:154700"]
    one_hop = store.subgraph([marfan], hops=1)
    assert {n.name for n in one_hop.nodes} == {
        "Marfan syndrome", "Arachnodactyly", "Tall stature", "Joint hypermobility", "FBN1"}
    assert not one_hop.truncated
    capped = store.subgraph([marfan], hops=3, max_nodes=3)
    assert len(capped.nodes) <= 3 and capped.truncated
    node_uids = {n.uid for n in capped.nodes}
    assert all(r.source in node_uids and r.target in node_uids for r in capped.relations)
    with pytest.raises(NotFoundError):
        store.subgraph(["nope:x"])


def test_schema_summary_counts_the_domain(store: GraphStore, toy_graph: dict[str, str],
                                          domain: str) -> None:
    summary = store.schema_summary()
    mine = next(d for d in summary.domains if d.domain == domain)
    assert mine.node_count == 8
    assert mine.types == {"Disease": 2, "Gene": 2, "Phenotype": 4}
    assert mine.relation_types["HAS_PHENOTYPE"] == 4
    assert mine.relationship_count == 9
    assert "HAS_PHENOTYPE" in summary.relation_types and "Disease" in summary.entity_types


def test_local_server_keeps_the_configured_number_of_query_plans(
    driver: Driver, settings: Settings
) -> None:
    # every relation-path shape is its own query text, so the server kgr starts keeps far more
    # plans than Neo4j's default of 1,000 (core.settings.Settings.neo4j_query_cache_entries)
    if settings.neo4j_uri:
        pytest.skip("an external server (NEO4J_URI) has its own configuration")
    records, _, _ = driver.execute_query(
        "CALL dbms.listConfig('server.memory.query_cache.per_db_cache_num_entries') "
        "YIELD name, value RETURN name, value", database_="system")
    assert [(r["name"], int(r["value"])) for r in records] == [
        ("server.memory.query_cache.per_db_cache_num_entries", settings.neo4j_query_cache_entries)]
    assert settings.neo4j_query_cache_entries > 1000
