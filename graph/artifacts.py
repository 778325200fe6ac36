"""Versioned model artifacts: ``<root>/<kind>/<domain>/<version>/`` plus an ``ACTIVE`` pointer.

A version folder is written under a temporary name and renamed when complete, and the ``ACTIVE``
file is replaced atomically, so a reader never sees a half-written model or a torn pointer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConflictError, InvalidInputError, ModelNotReadyError, NotFoundError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
ACTIVE_FILE = "ACTIVE"


def _check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise InvalidInputError(f"invalid {what} {value!r}")
    return value


class ArtifactStore:
    """Versioned artifacts of one kind (e.g. 'encoder', 'qa') per domain."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root = Path(root) / _check_name(kind, "artifact kind")

    def domain_dir(self, domain: str) -> Path:
        return self.root / _check_name(domain, "domain")

    def new_version_name(self) -> str:
        return datetime.now(UTC).strftime("v%Y%m%d-%H%M%S-%f")

    def staging_dir(self, domain: str, version: str) -> Path:
        """A folder to write a new version into; ``publish`` renames it into place."""
        path = self.domain_dir(domain) / f".staging-{_check_name(version, 'version')}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def publish(self, domain: str, version: str, staging: Path, activate: bool = True) -> Path:
        final = self.domain_dir(domain) / version
        if final.exists():
            raise InvalidInputError(f"version {version} of {domain} exists already")
        staging.rename(final)
        if activate:
            self.activate(domain, version)
        return final

    def activate(self, domain: str, version: str) -> None:
        path = self.path(domain, version)
        pointer = self.domain_dir(domain) / ACTIVE_FILE
        tmp = pointer.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(path.name + "\n")
        tmp.replace(pointer)

    def active_version(self, domain: str) -> str | None:
        pointer = self.domain_dir(domain) / ACTIVE_FILE
        if not pointer.exists():
            return None
        return pointer.read_text().strip() or None

    def active_path(self, domain: str) -> Path:
        version = self.active_version(domain)
        if version is None:
            raise ModelNotReadyError(
                f"no {self.root.name} model is active for domain {domain!r}; train one first"
            )
        return self.path(domain, version)

    def path(self, domain: str, version: str) -> Path:
        path = self.domain_dir(domain) / _check_name(version, "version")
        if not path.is_dir():
            raise NotFoundError(f"no {self.root.name} version {version!r} for domain {domain!r}")
        return path

    def versions(self, domain: str) -> list[str]:
        folder = self.domain_dir(domain)
        if not folder.exists():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def delete(self, domain: str, version: str) -> None:
        """Remove a version that is not active (``ConflictError`` for the active one).

        The folder is renamed out of the listing first, so a reader never lists a version that
        is half deleted."""
        path = self.path(domain, version)
        if self.active_version(domain) == version:
            raise ConflictError(
                f"{self.root.name} version {version} is the active one of {domain!r}; activate "
                "another version first")
        trash = path.with_name(f".deleting-{version}-{os.getpid()}")
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    def prune(self, domain: str, keep: int) -> list[str]:
        """Delete all but the ``keep`` newest versions, never the active one; returns the
        versions deleted, oldest first."""
        if keep < 1:
            raise InvalidInputError("keep must be at least 1")
        active = self.active_version(domain)
        # names are UTC timestamps (``new_version_name``): their order is their age
        kept = set(self.versions(domain)[-keep:]) | {active}
        deleted = [v for v in self.versions(domain) if v not in kept]
        for version in deleted:
            self.delete(domain, version)
        return deleted

    @staticmethod
    def write_json(path: Path, data: dict[str, Any]) -> None:
        path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))

    @staticmethod
    def read_json(path: Path) -> dict[str, Any]:
        return json.loads(path.read_text())
