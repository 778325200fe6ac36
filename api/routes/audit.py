"""/v1/audit: this host's audit trail (admin keys for every domain only)."""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.audit import audit_path, read_audit
from api.deps import GlobalAdminDep, SettingsDep

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", summary="Requests to this API host, oldest first (admin for every domain)")
def audit_records(
    settings: SettingsDep, _: GlobalAdminDep,
    since: Annotated[datetime | None, Query(description="ISO time with a zone")] = None,
    key_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The records of this host only: every API process writes its own host's file."""
    return list(islice(read_audit(audit_path(settings), since, key_id), limit))
