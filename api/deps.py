"""Dependency aliases for the routers: settings, driver, store, jobs and the caller's role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from neo4j import Driver

from api.jobs import JobManager
from api.security import KeyRing, Principal
from graph.settings import Settings
from graph.store import GraphStore

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="An API key with the reader or admin role.")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_driver(request: Request) -> Driver:
    return request.app.state.driver


def get_store(request: Request) -> GraphStore:
    return request.app.state.store


def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


def get_keyring(request: Request) -> KeyRing:
    return request.app.state.keyring


def require_reader(
    request: Request, key: Annotated[str | None, Security(api_key_header)]
) -> Principal:
    ring = get_keyring(request)
    return ring.authorize(ring.authenticate(key), "reader")


def require_admin(
    request: Request, key: Annotated[str | None, Security(api_key_header)]
) -> Principal:
    ring = get_keyring(request)
    return ring.authorize(ring.authenticate(key), "admin")


SettingsDep = Annotated[Settings, Depends(get_settings)]
DriverDep = Annotated[Driver, Depends(get_driver)]
StoreDep = Annotated[GraphStore, Depends(get_store)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
ReaderDep = Annotated[Principal, Depends(require_reader)]
AdminDep = Annotated[Principal, Depends(require_admin)]
