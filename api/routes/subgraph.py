"""/v1/subgraph: a bounded k-hop neighbourhood around seed entities."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ReaderStoreDep
from graph.models import Subgraph
from graph.store import MAX_SUBGRAPH_HOPS

router = APIRouter(prefix="/v1/subgraph", tags=["subgraph"])


class SubgraphRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    seeds: list[str] = Field(min_length=1, max_length=100)
    hops: int = Field(default=2, ge=1, le=MAX_SUBGRAPH_HOPS)
    max_nodes: int = Field(default=200, ge=1, le=5000)
    max_edges: int = Field(default=1000, ge=1, le=20000)
    relation_types: list[str] | None = None


@router.post("", response_model=Subgraph, summary="k-hop subgraph around seed entities")
def subgraph(body: SubgraphRequest, store: ReaderStoreDep) -> Subgraph:
    return store.subgraph(body.seeds, hops=body.hops, max_nodes=body.max_nodes,
                          max_edges=body.max_edges, relation_types=body.relation_types)
