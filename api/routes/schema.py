"""/v1/schema: entity types, relationship types and counts per domain."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ReaderStoreDep
from graph.models import SchemaSummary

router = APIRouter(prefix="/v1/schema", tags=["schema"])


@router.get("", response_model=SchemaSummary, summary="Schema summary")
def schema_summary(store: ReaderStoreDep) -> SchemaSummary:
    return store.schema_summary()
