"""/v1/migrations: list migrations and their status; upload and apply a domain-graph package.

A package is a manifest (``manifest.yaml``/``.yml``/``.json``, see ``graph.migrate.manifest``)
plus the files it names, sent as several multipart ``files`` or as one ``.zip``/``.tar.gz``.
It is validated before anything is written (422 with every problem, file and line, in
``error.details``), stored as the next upload (U1, U2...: a chain of its own, beside the
built-in V1, V2...) under ``$KGR_HOME/migrations/`` and applied all-or-nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from pydantic import BaseModel, Field

from api.deps import AdminDep, GlobalAdminDep, QAServiceDep, RunnerDep, SettingsDep
from api.errors import errors
from api.responses import served_from
from core.errors import PayloadTooLargeError
from graph.lock import LockInfo
from graph.migrate.history import AppliedMigration
from graph.migrate.runner import MigrationStatus
from usecases import packages
from usecases.packages import PackageFile, PackageUpload

router = APIRouter(prefix="/v1/migrations", tags=["migrations"])

READ_CHUNK = 1 << 20

SOURCE_FIELD = (str, Field(default="builtin", description="'builtin' (V<n>) or 'upload' (U<n>)"))
LABEL_FIELD = (str, Field(default="", description="the version with its chain: V3, U2"))


AppliedOut = served_from(AppliedMigration, "AppliedOut", "A history record: one applied "
                         "migration.", ("namespace", "installed_by"),
                         source=SOURCE_FIELD, label=LABEL_FIELD)
MigrationOut = served_from(MigrationStatus, "MigrationOut", "A migration and its state: "
                           "applied, pending, modified, missing or interrupted.",
                           source=SOURCE_FIELD, label=LABEL_FIELD,
                           applied=(AppliedOut | None, None))
LockOut = served_from(LockInfo, "LockOut", "Who holds the migration lock.", ("owner",))


class MigrationList(BaseModel):
    migrations: list[MigrationOut]  # type: ignore[valid-type]
    lock: LockOut | None = None  # type: ignore[valid-type]


class UploadResult(BaseModel):
    """What an upload applied (the package and any other pending migration)."""

    applied: list[AppliedOut] = Field(default_factory=list)  # type: ignore[valid-type]


@router.get("", response_model=MigrationList, summary="List migrations and their status")
def list_migrations(_: GlobalAdminDep, runner: RunnerDep) -> MigrationList:
    return MigrationList.model_validate(
        {"migrations": runner.status(), "lock": runner.lock_holder()}, from_attributes=True)


def _read_limited(upload: UploadFile, budget: int) -> bytes:
    buffer = bytearray()
    while chunk := upload.file.read(READ_CHUNK):
        buffer.extend(chunk)
        if len(buffer) > budget:
            raise PayloadTooLargeError(f"the upload is over the limit of {budget:,} bytes")
    return bytes(buffer)


@router.post("", response_model=UploadResult, status_code=status.HTTP_201_CREATED,
             summary="Upload and apply a domain-graph package (manifest plus files, or an "
                     "archive)", responses=errors(400, 409, 413))
def upload_package(
    principal: AdminDep, runner: RunnerDep, service: QAServiceDep, settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="manifest.yaml and its data files, "
                                                        "or one .zip/.tar.gz")],
    slug: Annotated[str | None, Form(description="name of the migration (default: "
                                                 "load_<domain>)", max_length=60)] = None,
) -> UploadResult:
    # the key, its role and the body's size were checked before the body was read
    # (``api.upload_guard.UploadGuard``); the per-file budget below is the second line
    budget = settings.max_upload_bytes
    sent: list[PackageFile] = []
    for part in files:
        data = _read_limited(part, budget)
        budget -= len(data)
        sent.append(PackageFile(part.filename or "", data))
    applied = packages.upload_package(runner, PackageUpload(
        sent, max_bytes=settings.max_upload_bytes, max_files=settings.max_upload_files,
        slug=slug, authorize=principal.check_may_load), service)
    return UploadResult.model_validate({"applied": applied}, from_attributes=True)
