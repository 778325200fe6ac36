"""Upload a migration package (``POST /v1/migrations``): a manifest plus the files it names,
sent as files or as one ``.zip``/``.tar.gz``, validated, stored as the next upload (U1, U2...)
and applied all-or-nothing (``graph.migrate.runner.MigrationRunner.add_package``)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import yaml

from core.errors import InvalidInputError, PayloadTooLargeError
from graph.migrate.discovery import PACKAGE_MANIFESTS
from graph.migrate.history import AppliedMigration
from graph.migrate.runner import MigrationRunner

if TYPE_CHECKING:
    from fusion.serve.pipeline import QAService

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True)
class PackageFile:
    """One file as sent: its name (a base name, or an archive's) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class PackageUpload:
    """A package to apply. ``max_bytes``/``max_files``: what it may unpack to.
    ``authorize``: called with the manifest's domain before anything is written; it raises
    where the caller may not load that domain (None: every domain)."""

    files: Sequence[PackageFile]
    max_bytes: int
    max_files: int
    slug: str | None = None
    authorize: Callable[[str], None] | None = None


def upload_package(runner: MigrationRunner, upload: PackageUpload,
                   service: QAService | None = None) -> list[AppliedMigration]:
    """Apply the package (and any other pending migration); what was applied, in order. A
    ``service`` that serves questions forgets what it read of the graph when anything was."""
    contents = package_contents(upload.files, upload.max_bytes, upload.max_files)
    domain = manifest_domain(contents)
    if domain is not None and upload.authorize is not None:
        upload.authorize(domain)
    applied = runner.add_package(contents, slug=upload.slug)
    if applied and service is not None:  # questions must see the graph as it is now
        service.graph_changed()
    return applied


def package_contents(files: Sequence[PackageFile], limit: int,
                     max_files: int) -> dict[str, bytes]:
    """The package's files by base name: the files sent, or the one archive's, unpacked."""
    contents: dict[str, bytes] = {}
    for sent in files:
        name = flat_name(sent.name, "upload")
        if not name:
            raise InvalidInputError("every uploaded file needs a file name")
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            if len(files) != 1:
                raise InvalidInputError("send an archive alone, or the files without one")
            return unpack(name, sent.data, limit, max_files)
        if name in contents:
            raise InvalidInputError(f"file {name!r} was sent twice")
        contents[name] = sent.data
    return contents


def manifest_domain(contents: dict[str, bytes]) -> str | None:
    """The domain the package's manifest names; None where there is none or it does not
    parse (the runner's validation then reports it in full)."""
    for name in PACKAGE_MANIFESTS:
        if name in contents:
            try:
                data = yaml.safe_load(contents[name])  # YAML reads JSON too
            except yaml.YAMLError:
                return None
            domain = data.get("domain") if isinstance(data, dict) else None
            return domain if isinstance(domain, str) else None
    return None


def flat_name(name: str, what: str) -> str:
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


def unpack(name: str, data: bytes, limit: int, max_files: int) -> dict[str, bytes]:
    """Files of an archive, flattened to their base names; at most ``max_files`` entries and
    ``limit`` bytes in total, both checked before any file is read."""
    try:
        members = (_zip_files if name.endswith(".zip") else _tar_files)(
            name, data, limit, max_files)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise InvalidInputError(f"{name} is not a readable archive: {exc}") from exc
    files: dict[str, bytes] = {}
    for member, content in members:
        base = flat_name(member, name)
        if base in files:
            raise InvalidInputError(f"{name}: duplicate file {member!r}")
        files[base] = content
    if sum(len(c) for c in files.values()) > limit:  # the declared sizes were checked already
        raise PayloadTooLargeError(f"{name} unpacks to more than {limit:,} bytes")
    return files
