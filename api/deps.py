"""Dependency aliases for the routers: settings, driver, store, jobs, the QA service, the
migration runner, metrics and the caller. A test that needs another runner or service
overrides the getter (``app.dependency_overrides[get_runner] = ...``), not ``app.state``.

The caller is a ``Principal`` (role, allowed domains, sensitive scope); the ``*StoreDep``
aliases give a route the graph as that caller may see it (``GraphStore.scoped``), so that the
domain confinement and the hiding of sensitive properties live in one place, not per route.

Every dependency here is ``async def`` although none awaits: FastAPI runs a plain ``def``
dependency in the thread pool, one thread hop per dependency and request (three on an entity
lookup before the route itself runs). None of them blocks: the key check hashes the key and
looks at the keys file's mtime at most once a second (``KeyRing.refresh``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from neo4j import Driver

from api.exceptions import PermissionDeniedError
from api.jobs import JobManager
from api.metrics import Metrics
from api.security import KeyRing, Principal, Role
from core.settings import Settings
from fusion.serve.pipeline import QAService
from graph.migrate.runner import MigrationRunner
from graph.store import GraphStore

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="An API key with the reader or admin role.")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_driver(request: Request) -> Driver:
    return request.app.state.driver


async def get_store(request: Request) -> GraphStore:
    return _store(request)


def _store(request: Request) -> GraphStore:
    store: GraphStore = request.app.state.store
    return store


async def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


async def get_qa_service(request: Request) -> QAService:
    """The app's QAService: models, alias indexes and neighbour caches loaded once."""
    return request.app.state.qa_service


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_runner(request: Request) -> MigrationRunner:
    """A runner of the built-in migrations and the uploads under ``$KGR_HOME``."""
    return MigrationRunner(request.app.state.driver, request.app.state.settings)


async def get_keyring(request: Request) -> KeyRing:
    return request.app.state.keyring


def _principal(request: Request, key: str | None, needed: Role) -> Principal:
    ring: KeyRing = request.app.state.keyring
    principal = ring.authenticate(key)
    # the audit trail (api.audit) names the key of every request, refused ones included
    request.state.principal = principal
    return ring.authorize(principal, needed)


async def require_reader(
    request: Request, key: Annotated[str | None, Security(api_key_header)]
) -> Principal:
    return _principal(request, key, "reader")


async def require_admin(
    request: Request, key: Annotated[str | None, Security(api_key_header)]
) -> Principal:
    return _principal(request, key, "admin")


async def require_global_admin(
    principal: Annotated[Principal, Depends(require_admin)],
) -> Principal:
    """An admin key for every domain (what concerns all domains at once)."""
    if principal.domains is not None:
        raise PermissionDeniedError("this needs an admin key for every domain; this key is "
                                    f"limited to {', '.join(sorted(principal.domains))}")
    return principal


async def reader_store(request: Request,
                 principal: Annotated[Principal, Depends(require_reader)]) -> GraphStore:
    return _store(request).scoped(principal.domain_list, principal.sensitive)


async def admin_store(request: Request,
                principal: Annotated[Principal, Depends(require_admin)]) -> GraphStore:
    return _store(request).scoped(principal.domain_list, principal.sensitive)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DriverDep = Annotated[Driver, Depends(get_driver)]
StoreDep = Annotated[GraphStore, Depends(get_store)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
QAServiceDep = Annotated[QAService, Depends(get_qa_service)]
RunnerDep = Annotated[MigrationRunner, Depends(get_runner)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ReaderDep = Annotated[Principal, Depends(require_reader)]
AdminDep = Annotated[Principal, Depends(require_admin)]
GlobalAdminDep = Annotated[Principal, Depends(require_global_admin)]
# the graph as the caller may see it (its domains, sensitive properties only with the scope)
ReaderStoreDep = Annotated[GraphStore, Depends(reader_store)]
AdminStoreDep = Annotated[GraphStore, Depends(admin_store)]
