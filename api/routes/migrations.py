"""/v1/migrations: list migrations and their status; upload and apply a domain-graph package.

A package is a manifest (``manifest.yaml``/``.yml``/``.json``, see ``graph.migrate.manifest``)
plus the files it names, sent as several multipart ``files`` or as one ``.zip``/``.tar.gz``.
It is validated before anything is written (422 with every problem, file and line, in
``error.details``), stored as the next upload (U1, U2...: a chain of its own, beside the
built-in V1, V2...) under ``$KGR_HOME/migrations/`` and applied all-or-nothing.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import PurePosixPath
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, File, Form, Request, UploadFile, status
from pydantic import BaseModel, Field

from api.deps import AdminDep, DriverDep, GlobalAdminDep, SettingsDep
from api.errors import errors
from api.exceptions import PermissionDeniedError
from api.security import Principal
from core.errors import InvalidInputError, PayloadTooLargeError
from graph.migrate.discovery import PACKAGE_MANIFESTS
from graph.migrate.runner import MigrationRunner

router = APIRouter(prefix="/v1/migrations", tags=["migrations"])

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
READ_CHUNK = 1 << 20


class AppliedOut(BaseModel):
    """A history record: one applied migration."""

    version: int
    source: str = Field(default="builtin", description="'builtin' (V<n>) or 'upload' (U<n>)")
    label: str = Field(default="", description="the version with its chain: V3, U2")
    description: str
    script: str
    kind: str
    checksum: str
    applied_at: str
    duration_s: float
    nodes_created: int
    relationships_created: int


class MigrationOut(BaseModel):
    """A migration and its state: applied, pending, modified, missing or interrupted."""

    version: int
    source: str = Field(default="builtin", description="'builtin' (V<n>) or 'upload' (U<n>)")
    label: str = Field(default="", description="the version with its chain: V3, U2")
    description: str
    script: str
    kind: str
    state: str
    checksum: str | None
    applied: AppliedOut | None = None


class LockOut(BaseModel):
    pid: int
    host: str
    acquired_at: str
    heartbeat_age_s: int


class MigrationList(BaseModel):
    migrations: list[MigrationOut]
    lock: LockOut | None = None


class UploadResult(BaseModel):
    """What an upload applied (the package and any other pending migration)."""

    applied: list[AppliedOut] = Field(default_factory=list)


def get_runner(request: Request, driver: DriverDep, settings: SettingsDep) -> MigrationRunner:
    """The app's runner (tests install one with their own folders and namespace)."""
    runner = getattr(request.app.state, "migration_runner", None)
    if isinstance(runner, MigrationRunner):
        return runner
    return MigrationRunner(driver, settings)


def _applied(record: Any) -> AppliedOut:
    return AppliedOut.model_validate({**record.__dict__, "label": record.label})


@router.get("", response_model=MigrationList, summary="List migrations and their status")
def list_migrations(request: Request, _: GlobalAdminDep, driver: DriverDep,
                    settings: SettingsDep) -> MigrationList:
    runner = get_runner(request, driver, settings)
    rows = runner.status()
    holder = runner.lock_holder()
    return MigrationList(
        migrations=[MigrationOut(version=r.version, source=r.source, label=r.label,
                                 description=r.description, script=r.script,
                                 kind=r.kind, state=r.state, checksum=r.checksum,
                                 applied=_applied(r.applied) if r.applied else None)
                    for r in rows],
        lock=LockOut(pid=holder.pid, host=holder.host, acquired_at=holder.acquired_at,
                     heartbeat_age_s=holder.heartbeat_age_s) if holder else None)


def _read_limited(upload: UploadFile, budget: int) -> bytes:
    buffer = bytearray()
    while chunk := upload.file.read(READ_CHUNK):
        buffer.extend(chunk)
        if len(buffer) > budget:
            raise PayloadTooLargeError(f"the upload is over the limit of {budget:,} bytes")
    return bytes(buffer)


def _flat_name(name: str, what: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise InvalidInputError(f"{what}: {name!r} is not a safe file name")
    return path.name


def _check_members(name: str, sizes: list[int], limit: int, max_files: int) -> None:
    """Refuse an archive by its directory (zip) or headers (tar) alone, before any file of it
    is read: too many entries, or more than ``limit`` bytes once unpacked."""
    if len(sizes) > max_files:
        raise PayloadTooLargeError(f"{name} has more than {max_files:,} entries")
    if sum(sizes) > limit:
        raise PayloadTooLargeError(
            f"{name} unpacks to {sum(sizes):,} bytes, over the limit of {limit:,} bytes")


def _zip_files(name: str, data: bytes, limit: int, max_files: int) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        _check_members(name, [i.file_size for i in infos], limit, max_files)
        # ZipExtFile stops at the declared size, so a lying directory cannot unpack more
        return [(i.filename, archive.read(i)) for i in infos
                if not i.is_dir() and not PurePosixPath(i.filename).name.startswith(".")]


def _tar_files(name: str, data: bytes, limit: int, max_files: int) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members: list[tarfile.TarInfo] = []
        # header by header, so that a compressed bomb stops at the first header past a bound
        while (member := tar.next()) is not None:
            members.append(member)
            _check_members(name, [m.size for m in members], limit, max_files)
        out = []
        for member in members:
            if not member.isfile() or PurePosixPath(member.name).name.startswith("."):
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                out.append((member.name, handle.read()))
        return out


def _unpack(name: str, data: bytes, limit: int, max_files: int) -> dict[str, bytes]:
    """Files of an archive, flattened to their base names; at most ``max_files`` entries and
    ``limit`` bytes in total, both checked before any file is read."""
    try:
        members = (_zip_files if name.endswith(".zip") else _tar_files)(
            name, data, limit, max_files)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise InvalidInputError(f"{name} is not a readable archive: {exc}") from exc
    files: dict[str, bytes] = {}
    for member, content in members:
        base = _flat_name(member, name)
        if base in files:
            raise InvalidInputError(f"{name}: duplicate file {member!r}")
        files[base] = content
    if sum(len(c) for c in files.values()) > limit:  # the declared sizes were checked already
        raise PayloadTooLargeError(f"{name} unpacks to more than {limit:,} bytes")
    return files


def check_package_domain(principal: Principal, contents: dict[str, bytes]) -> None:
    """An admin key limited to some domains may load only those (403 otherwise). A manifest
    that does not parse is left to the runner's validation, which reports it in full."""
    if principal.domains is None:
        return
    for name in PACKAGE_MANIFESTS:
        if name in contents:
            try:
                data = yaml.safe_load(contents[name])  # YAML reads JSON too
            except yaml.YAMLError:
                return
            domain = data.get("domain") if isinstance(data, dict) else None
            if isinstance(domain, str) and not principal.allows(domain):
                raise PermissionDeniedError(f"this key may not load domain {domain!r}; it is "
                                            f"limited to {', '.join(sorted(principal.domains))}")
            return


@router.post("", response_model=UploadResult, status_code=status.HTTP_201_CREATED,
             summary="Upload and apply a domain-graph package (manifest plus files, or an "
                     "archive)", responses=errors(400, 409, 413))
def upload_package(
    request: Request, principal: AdminDep, driver: DriverDep, settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="manifest.yaml and its data files, "
                                                        "or one .zip/.tar.gz")],
    slug: Annotated[str | None, Form(description="name of the migration (default: "
                                                 "load_<domain>)", max_length=60)] = None,
) -> UploadResult:
    # the key, its role and the body's size were checked before the body was read
    # (``api.upload_guard.UploadGuard``); the per-file budget below is the second line
    limit = settings.max_upload_bytes
    contents: dict[str, bytes] = {}
    budget = limit
    for upload in files:
        name = _flat_name(upload.filename or "", "upload")
        if not name:
            raise InvalidInputError("every uploaded file needs a file name")
        data = _read_limited(upload, budget)
        budget -= len(data)
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            if len(files) != 1:
                raise InvalidInputError("send an archive alone, or the files without one")
            contents = _unpack(name, data, limit, settings.max_upload_files)
        else:
            if name in contents:
                raise InvalidInputError(f"file {name!r} was sent twice")
            contents[name] = data
    check_package_domain(principal, contents)
    applied = get_runner(request, driver, settings).add_package(contents, slug=slug)
    service = getattr(request.app.state, "qa_service", None)
    if applied and service is not None:  # /v1/ask must see the graph as it is now
        service.graph_changed()
    return UploadResult(applied=[_applied(a) for a in applied])
