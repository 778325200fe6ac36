"""Model versions (``kgr models ...`` and ``/v1/models``): list a domain's stored encoder or
QA versions, show one's training history, activate (roll back to) one. Storing and loading
versions is ``fusion.serve.versions``'s; this is what a user asks of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.settings import Settings
from fusion.serve.versions import Kind, VersionInfo, activate_version, artifacts_of, list_versions
from graph.exceptions import DatabaseUnavailableError

if TYPE_CHECKING:
    from neo4j import Driver

ProgressFn = Callable[[float, str], None]


def list_models(settings: Settings, driver: Driver | None, kind: Kind,
                domain: str) -> list[VersionInfo]:
    """Every stored version, oldest first, the active one marked. Without Neo4j (no
    ``driver``, or one that does not answer) the files alone still say what is stored; an
    encoder version's ``served`` is then unknown (None)."""
    if driver is not None:
        try:
            return list_versions(settings, driver, kind, domain)
        except DatabaseUnavailableError:
            pass
    return list_versions(settings, None, kind, domain)


def check_stored(settings: Settings, kind: Kind, domain: str, version: str) -> None:
    """``NotFoundError`` for a version that is not stored (``InvalidInputError`` for a
    malformed name): checked before an activation job is queued, not in it."""
    artifacts_of(settings, kind).path(domain, version)


def activate_model(settings: Settings, driver: Driver, kind: Kind, domain: str, version: str,
                   progress: ProgressFn | None = None) -> VersionInfo:
    """Serve ``version`` from the next question on (an encoder's embeddings go back into
    Neo4j first); it is loaded before it is served, so one that does not load is refused and
    the served version stays."""
    if progress is not None:
        progress(0.0, f"loading {kind} version {version}")
    return activate_version(settings, driver, kind, domain, version)


def show_model(settings: Settings, kind: Kind, domain: str,
               version: str) -> dict[str, list[dict[str, Any]]]:
    """A version's training history, epoch by epoch, per trained head."""
    from fusion.learn.curves import read_histories, version_folder

    return read_histories(version_folder(settings, kind, domain, version))
