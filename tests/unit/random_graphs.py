"""Random typed graphs for the property tests of the beam search."""

from __future__ import annotations

import random

from fusion.model.graphdata import DomainGraph

TYPES = ["P", "Q", "R"]
RELATIONS = ["A", "B", "C", "D"]


def random_typed_graph(rng: random.Random, num_nodes: int = 40, num_edges: int = 160,
                       unique: bool = False) -> DomainGraph:
    """``num_nodes`` nodes ``n0..`` of random types, ``num_edges`` random relationships (with
    ``unique``, a repeated (head, relation, tail) is drawn but not added)."""
    nodes = [f"n{i}" for i in range(num_nodes)]
    graph = DomainGraph("toy", names={u: u for u in nodes},
                        types={u: rng.choice(TYPES) for u in nodes})
    adj: dict[str, dict[tuple[str, str], list[str]]] = {}
    for _ in range(num_edges):
        a, b = rng.sample(nodes, 2)
        rel = rng.choice(RELATIONS)
        if unique and b in adj.get(a, {}).get((rel, "out"), []):
            continue
        adj.setdefault(a, {}).setdefault((rel, "out"), []).append(b)
        adj.setdefault(b, {}).setdefault((rel, "in"), []).append(a)
    graph.adj = adj
    return graph
