"""Model versions: list a domain's stored encoder and QA versions, roll back, delete, prune."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AdminDep, AdminStoreDep, DriverDep, JobsDep, ReaderStoreDep, SettingsDep
from api.errors import errors
from api.jobs import ACTIVATE_ENCODER, ACTIVATE_QA, Job, ProgressFn
from fusion.serve.versions import Kind, VersionInfo, delete_version, prune_versions
from usecases.models import activate_model as activate
from usecases.models import check_stored
from usecases.models import list_models as listed

router = APIRouter(prefix="/v1/models", tags=["models"])

KindPath = Annotated[Kind, Path(description="encoder or qa")]
DomainPath = Annotated[str, Path(min_length=1, max_length=100)]
VersionPath = Annotated[str, Path(min_length=1, max_length=100)]
ACTIVATION_JOB: dict[Kind, str] = {"encoder": ACTIVATE_ENCODER, "qa": ACTIVATE_QA}


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    version: str = Field(min_length=1, max_length=100,
                         description="a stored version (GET /v1/models/{kind}/{domain})")


class PruneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    keep: int = Field(default=3, ge=1, le=1000, description="how many of the newest to keep")


class PruneResponse(BaseModel):
    deleted: list[str] = Field(description="the versions removed, oldest first")


@router.get("/{kind}/{domain}", response_model=list[VersionInfo], responses=errors(404))
def list_models(kind: KindPath, domain: DomainPath, settings: SettingsDep,
                driver: DriverDep, store: ReaderStoreDep) -> list[VersionInfo]:
    """Every stored version, oldest first; the active one is marked."""
    store.check_visible(domain)
    versions = listed(settings, driver, kind, domain)
    if not versions:
        store.check_domain(domain)  # 404 for a domain that is not in the graph
    return versions


@router.post("/{kind}/{domain}/active", response_model=Job, status_code=202,
             responses=errors(404, 409))
def activate_model(kind: KindPath, domain: DomainPath, body: ActivateRequest,
                   settings: SettingsDep, driver: DriverDep, store: AdminStoreDep,
                   jobs: JobsDep) -> Job:
    """Serve this version from the next question on, as a background job (an encoder's
    embeddings are written back into Neo4j first: 10-25 s for the medical graph); poll
    `/v1/jobs/{id}`, whose result is the version's listing. The version is loaded before it is
    served: one that does not load fails the job and the served version stays. 404 for a
    version that is not stored; 409 while this kind's training or activation runs for the
    domain, here or in another process (both write the served version)."""
    store.check_domain(domain)
    check_stored(settings, kind, domain, body.version)

    def run(progress: ProgressFn) -> dict[str, Any]:
        return activate(settings, driver, kind, domain, body.version,
                        progress).model_dump(mode="json")

    return jobs.submit_for_model(ACTIVATION_JOB[kind], kind, domain, run)


@router.delete("/{kind}/{domain}/{version}", status_code=204, responses=errors(404, 409))
def delete_model(kind: KindPath, domain: DomainPath, version: VersionPath,
                 principal: AdminDep, settings: SettingsDep) -> None:
    """Remove a stored version; the active one gives 409."""
    principal.check_domain(domain)
    delete_version(settings, kind, domain, version)


@router.post("/{kind}/{domain}/prune", response_model=PruneResponse,
             responses=errors(404, 409))
def prune_models(kind: KindPath, domain: DomainPath, body: PruneRequest, principal: AdminDep,
                 settings: SettingsDep) -> PruneResponse:
    """Remove all but the ``keep`` newest versions; the active one always stays."""
    principal.check_domain(domain)
    return PruneResponse(deleted=prune_versions(settings, kind, domain, body.keep))
