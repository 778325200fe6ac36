"""Subgraph exports through networkx: GraphML (Gephi, Cytoscape, yEd) and node-link JSON
(d3, ``networkx.node_link_graph``).

The graph is a ``MultiDiGraph``: relationships keep their stored direction, and two entities
may be linked by several relationship types (the edge key is the type, unique per pair in a
``Subgraph``).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from graph.models import Entity, Subgraph

if TYPE_CHECKING:
    import networkx as nx

GRAPHML_MEDIA_TYPE = "application/graphml+xml"
JSON_MEDIA_TYPE = "application/json"
# attributes every node has; an entity property of the same name is prefixed, not lost
NODE_FIELDS = ("name", "domain", "types", "aliases", "description", "seed")
EDGE_FIELDS = ("type",)
PROPERTY_PREFIX = "property_"


class ExportFormat(StrEnum):
    """How a subgraph is written: kgr's own JSON, networkx node-link JSON, or GraphML."""

    KGR = "kgr"
    NODE_LINK = "node-link"
    GRAPHML = "graphml"


def to_networkx(sub: Subgraph) -> nx.MultiDiGraph:
    """The subgraph as a networkx graph: nodes by uid, one edge per relationship."""
    import networkx as nx  # here: every `kgr` command imports this module, few export

    graph = nx.MultiDiGraph(seeds=list(sub.seeds), truncated=sub.truncated)
    seeds = set(sub.seeds)
    for entity in sub.nodes:
        graph.add_node(entity.uid, **_node_attributes(entity, entity.uid in seeds))
    for rel in sub.relations:
        graph.add_edge(rel.source, rel.target, key=rel.type, type=rel.type,
                       **_properties(rel.properties, EDGE_FIELDS))
    return graph


def node_link(sub: Subgraph) -> dict[str, Any]:
    """networkx's node-link JSON (``nodes`` and ``edges``), JSON-safe."""
    import networkx as nx

    data = nx.node_link_data(to_networkx(sub), edges="edges")
    # neo4j temporal and spatial values are not JSON: their text form is
    return json.loads(json.dumps(data, default=str))


def graphml(sub: Subgraph) -> str:
    """GraphML text. GraphML attributes are scalars: lists (types, aliases, list properties)
    are written as JSON arrays in a string; missing values are left out."""
    import networkx as nx

    graph = to_networkx(sub)
    flat = nx.MultiDiGraph()
    # graph-level attributes: GraphML keeps scalars only
    flat.graph.update(seeds=json.dumps(graph.graph["seeds"]), truncated=sub.truncated)
    for uid, attrs in graph.nodes(data=True):
        flat.add_node(uid, **_scalars(attrs))
    for source, target, key, attrs in graph.edges(keys=True, data=True):
        flat.add_edge(source, target, key=key, **_scalars(attrs))
    return "\n".join(nx.generate_graphml(flat, encoding="utf-8", prettyprint=True)) + "\n"


def _node_attributes(entity: Entity, seed: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {"name": entity.name, "domain": entity.domain,
                             "types": list(entity.types), "aliases": list(entity.aliases),
                             "seed": seed}
    if entity.description is not None:
        attrs["description"] = entity.description
    attrs.update(_properties(entity.properties, NODE_FIELDS))
    return attrs


def _properties(properties: dict[str, Any], reserved: tuple[str, ...]) -> dict[str, Any]:
    return {(PROPERTY_PREFIX + k if k in reserved or k in ("key", "source", "target", "id")
             else k): v for k, v in properties.items() if v is not None}


def _scalars(attrs: dict[str, Any]) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {}
    for name, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, str | int | float | bool):
            out[name] = value
        elif isinstance(value, list | tuple | dict):
            out[name] = json.dumps(value, default=str, ensure_ascii=False)
        else:  # dates, times, points
            out[name] = str(value)
    return out
