"""Model versions: list a domain's stored encoder and QA versions, roll back, delete, prune."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.deps import AdminDep, DriverDep, JobsDep, ReaderDep, SettingsDep, StoreDep
from api.routes.ask import TRAIN_QA_JOB_KIND
from api.routes.embeddings import TRAIN_JOB_KIND as TRAIN_ENCODER_JOB_KIND
from fusion.versions import (
    Kind,
    VersionInfo,
    activate_version,
    delete_version,
    list_versions,
    prune_versions,
)

router = APIRouter(prefix="/v1/models", tags=["models"])

KindPath = Annotated[Kind, Path(description="encoder or qa")]
DomainPath = Annotated[str, Path(min_length=1, max_length=100)]
VersionPath = Annotated[str, Path(min_length=1, max_length=100)]
# the training job that publishes (and activates) versions of each kind
TRAINING_JOB: dict[Kind, str] = {"encoder": TRAIN_ENCODER_JOB_KIND, "qa": TRAIN_QA_JOB_KIND}


class ActivateRequest(BaseModel):
    version: str = Field(min_length=1, max_length=100,
                         description="a stored version (GET /v1/models/{kind}/{domain})")


class PruneRequest(BaseModel):
    keep: int = Field(default=3, ge=1, le=1000, description="how many of the newest to keep")


class PruneResponse(BaseModel):
    deleted: list[str] = Field(description="the versions removed, oldest first")


@router.get("/{kind}/{domain}", response_model=list[VersionInfo])
def list_models(kind: KindPath, domain: DomainPath, _: ReaderDep, settings: SettingsDep,
                driver: DriverDep, store: StoreDep) -> list[VersionInfo]:
    """Every stored version, oldest first; the active one is marked."""
    versions = list_versions(settings, driver, kind, domain)
    if not versions:
        store.check_domain(domain)  # 404 for a domain that is not in the graph
    return versions


@router.post("/{kind}/{domain}/active", response_model=VersionInfo)
def activate_model(kind: KindPath, domain: DomainPath, body: ActivateRequest, _: AdminDep,
                   settings: SettingsDep, driver: DriverDep, store: StoreDep,
                   jobs: JobsDep) -> VersionInfo:
    """Serve this version from the next question on. It is loaded first (422 if it does not
    load); an encoder version's embeddings are written back into Neo4j before it is served,
    which takes seconds for a large domain. 409 while this kind's training job runs for the
    domain: it would write the same embedding slot and flip the pointer when it ends."""
    store.check_domain(domain)
    jobs.check_idle(TRAINING_JOB[kind], domain)
    return activate_version(settings, driver, kind, domain, body.version)


@router.delete("/{kind}/{domain}/{version}", status_code=204)
def delete_model(kind: KindPath, domain: DomainPath, version: VersionPath, _: AdminDep,
                 settings: SettingsDep) -> None:
    """Remove a stored version; the active one gives 409."""
    delete_version(settings, kind, domain, version)


@router.post("/{kind}/{domain}/prune", response_model=PruneResponse)
def prune_models(kind: KindPath, domain: DomainPath, body: PruneRequest, _: AdminDep,
                 settings: SettingsDep) -> PruneResponse:
    """Remove all but the ``keep`` newest versions; the active one always stays."""
    return PruneResponse(deleted=prune_versions(settings, kind, domain, body.keep))
