"""Subgraph exports (graph/export.py) read back with networkx."""

from __future__ import annotations

import json
from datetime import date

import networkx as nx

from graph.export import graphml, node_link
from graph.models import Entity, Relation, Subgraph


def example() -> Subgraph:
    def entity(uid: str, name: str, kind: str, properties: dict[str, object] | None = None
               ) -> Entity:
        return Entity(uid=uid, name=name, domain="med", types=[kind],
                      properties=properties or {})

    return Subgraph(
        seeds=["med:M"],
        nodes=[entity("med:M", "Marfan <syndrome> & co", "Disease", {
                   "aliases_count": 2, "name": "shadowed", "onset": date(2020, 1, 2),
                   "codes": ["a", "b"]}),
               entity("med:A", "Arachnodactyly", "Phenotype"),
               entity("med:F", "FBN1", "Gene", {"score": 0.5})],
        relations=[Relation(type="HAS_PHENOTYPE", source="med:M", target="med:A",
                            properties={"source": "hpo", "weight": 2}),
                   Relation(type="ASSOCIATED_WITH", source="med:F", target="med:M"),
                   Relation(type="ASSOCIATED_PHENOTYPE", source="med:F", target="med:A"),
                   Relation(type="CAUSES", source="med:F", target="med:A")],
        truncated=False)


def test_graphml_parses_back_with_the_nodes_and_edges() -> None:
    sub = example()
    text = graphml(sub)
    back = nx.parse_graphml(text, force_multigraph=True)
    assert back.is_directed()
    assert set(back.nodes) == {"med:M", "med:A", "med:F"}
    assert sorted((s, t, d["type"]) for s, t, d in back.edges(data=True)) == sorted(
        (r.source, r.target, r.type) for r in sub.relations)
    marfan = back.nodes["med:M"]
    assert marfan["name"] == "Marfan <syndrome> & co" and marfan["seed"] is True
    assert json.loads(marfan["types"]) == ["Disease"]
    # a property named like a field is kept under a prefix; lists and dates become text
    assert marfan["property_name"] == "shadowed" and json.loads(marfan["codes"]) == ["a", "b"]
    assert marfan["onset"] == "2020-01-02" and marfan["aliases_count"] == 2
    assert back.nodes["med:A"]["seed"] is False
    edge = back.get_edge_data("med:M", "med:A")
    assert [(d["property_source"], d["weight"]) for d in edge.values()] == [("hpo", 2)]


def test_node_link_json_round_trips() -> None:
    sub = example()
    data = node_link(sub)
    json.dumps(data)  # plain JSON: the date became text
    back = nx.node_link_graph(data, edges="edges")
    assert back.is_multigraph() and back.is_directed()
    assert set(back.nodes) == {e.uid for e in sub.nodes}
    assert back.number_of_edges() == len(sub.relations)
    assert set(back.get_edge_data("med:F", "med:A")) == {"ASSOCIATED_PHENOTYPE", "CAUSES"}
    assert back.nodes["med:M"]["types"] == ["Disease"]
    assert back.graph == {"seeds": ["med:M"], "truncated": False}
