"""/v1/paths: shortest paths between two entities."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ReaderStoreDep
from api.errors import errors
from graph.models import GraphPath
from graph.store import MAX_PATH_HOPS, MAX_PATHS

router = APIRouter(prefix="/v1/paths", tags=["paths"])


@router.get("", response_model=list[GraphPath], summary="Shortest paths between two entities",
            responses=errors(404))
def shortest_paths(
    store: ReaderStoreDep,
    source: Annotated[str, Query(min_length=1, max_length=512)],
    target: Annotated[str, Query(min_length=1, max_length=512)],
    max_hops: Annotated[int, Query(ge=1, le=MAX_PATH_HOPS)] = 3,
    relation_type: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PATHS)] = 10,
) -> list[GraphPath]:
    return store.shortest_paths(source, target, max_hops=max_hops, relation_types=relation_type,
                                limit=limit)
