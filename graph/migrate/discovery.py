"""Finding migrations on disk: ``V<number>__<slug>.<ext>`` files and ``V<number>__<slug>/``
folders (built-in migrations), and ``U<number>__<slug>/`` folders (uploaded domain packages:
a chain of their own, see ``graph.migrate.runner``).

Kinds: ``.cypher`` (Cypher statements separated by ``;``), ``.yaml``/``.yml``/``.json`` (a
declarative load manifest, see ``graph.migrate.manifest``), ``.py`` (a module with
``apply(ctx)``), and a folder holding ``manifest.yaml``/``manifest.json`` plus its data files
(what the API stores for an uploaded domain package).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from graph.migrate.exceptions import Problem

MigrationKind = Literal["cypher", "manifest", "python"]

BUILTIN_PREFIX = "V"
UPLOAD_PREFIX = "U"


def name_re(prefix: str) -> re.Pattern[str]:
    """``<prefix><number>__<slug>[.<ext>]``."""
    return re.compile(rf"^{prefix}(?P<version>[0-9]+)__(?P<slug>[A-Za-z0-9][A-Za-z0-9_-]*)"
                      r"(?P<ext>\.[a-z]+)?$")


NAME_RE = name_re(BUILTIN_PREFIX)
KIND_BY_EXT: dict[str, MigrationKind] = {
    ".cypher": "cypher", ".yaml": "manifest", ".yml": "manifest", ".json": "manifest",
    ".py": "python",
}
DATA_EXTENSIONS = (".tsv", ".csv", ".txt", ".md")  # data files next to the manifests: skipped
PACKAGE_MANIFESTS = ("manifest.yaml", "manifest.yml", "manifest.json")


@dataclass(frozen=True)
class Migration:
    """One migration found on disk."""

    version: int
    slug: str
    kind: MigrationKind
    path: Path
    manifest_path: Path | None = None  # the manifest file for 'manifest' kind
    prefix: str = BUILTIN_PREFIX  # "V" built in, "U" uploaded

    @property
    def label(self) -> str:
        """``V3``, ``U2``: the version with its chain."""
        return f"{self.prefix}{self.version}"

    @property
    def description(self) -> str:
        return self.slug.replace("_", " ")

    @property
    def script(self) -> str:
        return self.path.name

    def checksum(self) -> str:
        """SHA-256 over the migration's file, or its manifest plus every file it reads."""
        digest = hashlib.sha256()
        for path in self.checksum_files():
            digest.update(path.name.encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
        return digest.hexdigest()

    def checksum_files(self) -> list[Path]:
        if self.kind != "manifest" or self.manifest_path is None:
            return [self.path]
        from graph.migrate.manifest import referenced_files  # local: avoids an import cycle

        return [self.manifest_path, *referenced_files(self.manifest_path)]


def _manifest_of(folder: Path) -> Path | None:
    for name in PACKAGE_MANIFESTS:
        if (folder / name).is_file():
            return folder / name
    return None


def discover(locations: Iterable[Path], prefix: str = BUILTIN_PREFIX
             ) -> tuple[list[Migration], list[Problem]]:
    """All migrations named ``<prefix><number>__...`` in ``locations`` sorted by version, plus
    naming problems (bad names, duplicate versions)."""
    pattern = name_re(prefix)
    looks_like = re.compile(rf"^[{prefix}{prefix.lower()}][0-9]")
    found: list[Migration] = []
    problems: list[Problem] = []
    for location in locations:
        if not location.is_dir():
            continue
        for path in sorted(location.iterdir()):
            name = path.name
            if name.startswith((".", "_")) or not looks_like.match(name):
                continue
            if path.is_file() and path.suffix.lower() in DATA_EXTENSIONS:
                continue
            match = pattern.match(name)
            if match is None:
                problems.append(Problem(str(path), None, "bad migration name: expected "
                                                         f"{prefix}<number>__<slug>.<ext>"))
                continue
            version, slug, ext = int(match["version"]), match["slug"], match["ext"]
            if path.is_dir():
                if ext:
                    problems.append(Problem(str(path), None, "a package folder has no extension"))
                    continue
                manifest = _manifest_of(path)
                if manifest is None:
                    problems.append(Problem(str(path), None,
                                            "package folder without manifest.yaml/manifest.json"))
                    continue
                found.append(Migration(version, slug, "manifest", path, manifest, prefix))
                continue
            kind = KIND_BY_EXT.get(ext or "")
            if kind is None:
                problems.append(Problem(str(path), None,
                                        f"unknown migration type {ext!r}; use "
                                        f"{', '.join(sorted(KIND_BY_EXT))}"))
                continue
            found.append(Migration(version, slug, kind, path,
                                   path if kind == "manifest" else None, prefix))
    found.sort(key=lambda m: (m.version, str(m.path)))
    seen: dict[int, Migration] = {}
    for migration in found:
        if migration.version in seen:
            problems.append(Problem(str(migration.path), None,
                                    f"duplicate version {migration.label} "
                                    f"(also {seen[migration.version].path})"))
        else:
            seen[migration.version] = migration
    return [m for m in found if seen.get(m.version) is m], problems
