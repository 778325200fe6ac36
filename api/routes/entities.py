"""/v1/entities: search, one entity, its neighbours (``async``, see ``api.responses``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from api.deps import ReaderStoreDep
from api.errors import errors
from api.responses import in_thread, json_response
from graph.models import Entity, EntityPage, Neighbor

router = APIRouter(prefix="/v1/entities", tags=["entities"])

Uid = Annotated[str, Path(min_length=1, max_length=512, description="'<domain>:<source id>'")]


@router.get("", response_model=EntityPage, summary="Search or list entities",
            responses=errors(404))
async def search_entities(
    store: ReaderStoreDep,
    q: Annotated[str | None, Query(max_length=500, description="Free text (fuzzy)",
                                   examples=["marfan"])] = None,
    type: Annotated[list[str] | None, Query(description="Entity type label(s)",
                                            examples=[["Disease"]])] = None,
    domain: Annotated[str | None, Query(max_length=100, examples=["medical"])] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    fuzzy: bool = True,
) -> Response:
    return json_response(await in_thread(store.search_entities, q, types=type, domain=domain,
                                         limit=limit, cursor=cursor, fuzzy=fuzzy))


@router.get("/{uid}", response_model=Entity, summary="One entity by uid",
            responses=errors(404))
async def get_entity(uid: Uid, store: ReaderStoreDep) -> Response:
    return json_response(await in_thread(store.get_entity, uid))


@router.get("/{uid}/neighbors", response_model=list[Neighbor], summary="Neighbours of an entity",
            responses=errors(404))
async def get_neighbors(
    uid: Uid,
    store: ReaderStoreDep,
    relation_type: Annotated[list[str] | None, Query(description="Relationship type(s)")] = None,
    direction: Literal["out", "in", "both"] = "both",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    neighbors = await in_thread(store.neighbors, uid, relation_types=relation_type,
                                direction=direction, limit=limit)
    return json_response(neighbors, Neighbor)
