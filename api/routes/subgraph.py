"""/v1/subgraph: a bounded k-hop neighbourhood around seed entities, as kgr's JSON or exported
through networkx (node-link JSON, GraphML)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ReaderStoreDep
from api.errors import errors
from graph.export import GRAPHML_MEDIA_TYPE, ExportFormat, graphml, node_link
from graph.models import Subgraph
from graph.store import MAX_SUBGRAPH_HOPS

router = APIRouter(prefix="/v1/subgraph", tags=["subgraph"])


class SubgraphRequest(BaseModel):
    # a misspelt field is an error, not ignored
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"seeds": ["medical:OMIM:154700"], "hops": 2, "max_nodes": 100},
        {"seeds": ["finance:17"], "hops": 1, "relation_types": ["CONTROL"],
         "format": "node-link"},
    ]})

    seeds: list[str] = Field(min_length=1, max_length=100)
    hops: int = Field(default=2, ge=1, le=MAX_SUBGRAPH_HOPS)
    max_nodes: int = Field(default=200, ge=1, le=5000)
    max_edges: int = Field(default=1000, ge=1, le=20000)
    relation_types: list[str] | None = None
    format: ExportFormat = Field(
        default=ExportFormat.KGR, description="kgr (this schema), node-link (networkx "
        "node-link JSON: nodes and edges, for d3 or networkx) or graphml (GraphML XML, for "
        "Gephi, Cytoscape or yEd)")


@router.post("", response_model=Subgraph, summary="k-hop subgraph around seed entities",
             responses={200: {"content": {GRAPHML_MEDIA_TYPE: {}}}, **errors(404)})
def subgraph(body: SubgraphRequest, store: ReaderStoreDep) -> Subgraph | Response:
    sub = store.subgraph(body.seeds, hops=body.hops, max_nodes=body.max_nodes,
                         max_edges=body.max_edges, relation_types=body.relation_types)
    if body.format is ExportFormat.NODE_LINK:
        return JSONResponse(node_link(sub))
    if body.format is ExportFormat.GRAPHML:
        return Response(graphml(sub), media_type=GRAPHML_MEDIA_TYPE)
    return sub
