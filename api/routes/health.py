"""/healthz (the process), /readyz (Neo4j reachable) and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import DriverDep, SettingsDep
from api.metrics import MEDIA_TYPE
from graph.driver import translate_errors

router = APIRouter(tags=["health"])

READY_QUERY = "RETURN 1 AS ok"


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Neo4j answers")
def readyz(request: Request, driver: DriverDep, settings: SettingsDep) -> dict[str, Any]:
    """Ready when Neo4j answers; ``qa_warm_up`` says whether the QA models have been loaded
    and run once ("off", "running", seconds per domain, or "failed")."""
    from neo4j import RoutingControl

    with translate_errors():
        driver.execute_query(READY_QUERY, database_=settings.neo4j_database,
                             routing_=RoutingControl.READ)
    return {"status": "ready", "neo4j": settings.resolved_uri,
            "qa_warm_up": getattr(request.app.state, "warm_up", "off")}


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {MEDIA_TYPE: {}}}})
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=MEDIA_TYPE)
