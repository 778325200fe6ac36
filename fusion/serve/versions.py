"""The stored versions of both model kinds (graph encoder, QA): list, activate, delete, prune.

Training publishes a new version and makes it active; this is the rest of a version's life: go
back to an earlier one when a retrained model answers worse, and remove the ones no longer
needed. Activation checks first that the version loads, so a broken folder is never served:

- a QA version flips the ``ACTIVE`` pointer; the ask service reads the pointer on every question
  and loads the new checkpoint on the next one;
- an encoder version also writes its embeddings back into Neo4j (the vector slot the domain does
  not serve, then the atomic flip of ``graph.encoder.serve.write_embeddings``) before its
  pointer flips, as training does, so the vector index and the artifact always agree.

A QA version's graph head only works with the encoder version it was trained with
(``encoder_version``); with another encoder active, the ask service answers with its text head
(``fusion.serve.pipeline.DomainQA``), and ``VersionInfo.graph_head_usable`` says so beforehand.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from neo4j import Driver
from pydantic import BaseModel, Field, ValidationError

from core.errors import InvalidInputError
from core.settings import Settings
from graph.artifacts import ArtifactStore
from graph.encoder.checkpoint import encoder_artifacts
from graph.encoder.checkpoint import load_checkpoint as load_encoder
from graph.encoder.serve import active_embedding, write_embeddings
from graph.lock import ModelLock

Kind = Literal["encoder", "qa"]
KINDS: tuple[Kind, ...] = ("encoder", "qa")
CONFIG_FILE = "config.json"  # both kinds keep their configuration and metrics here


class EpochRecord(BaseModel):
    """One training epoch of an encoder version, as stored with it (config.json metrics)."""

    epoch: int
    loss: float | None = Field(description="mean training loss per query; null if not finite")
    valid_mrr: float | None = Field(
        default=None, description="filtered validation MRR; null when not evaluated")
    seconds: float | None = Field(default=None, description="training plus validation")
    diverged: bool = Field(default=False, description="training stopped here: NaN weights")


class VersionInfo(BaseModel):
    """One stored model version."""

    kind: Kind
    domain: str
    version: str
    active: bool = Field(description="the version the service uses now")
    created_at: str | None = Field(description="UTC, ISO 8601 (from the version's name)")
    size_bytes: int
    metrics: dict[str, Any] = Field(
        description="a summary: encoder test MRR and Hits@10; QA validation Hits@1 per head")
    encoder_version: str | None = Field(
        default=None, description="QA: the encoder version its graph head was trained with")
    graph_head_usable: bool | None = Field(
        default=None, description="QA: it has a graph head and that head's encoder is active "
        "(else the text head answers); None without a graph head")
    served: bool | None = Field(
        default=None, description="encoder: Neo4j's vector index holds this version's embeddings")
    best_epoch: int | None = Field(
        default=None, description="encoder: the epoch whose weights were kept")
    history: list[EpochRecord] | None = Field(
        default=None, description="encoder: every training epoch; null for versions trained "
        "before the history was stored")


def check_kind(value: str) -> Kind:
    """``value`` as a model kind, or ``InvalidInputError``."""
    if value not in KINDS:
        raise InvalidInputError(f"unknown model kind {value!r}; expected one of {list(KINDS)}")
    return cast(Kind, value)


def artifacts_of(settings: Settings, kind: str) -> ArtifactStore:
    if check_kind(kind) == "encoder":
        return encoder_artifacts(settings)
    from fusion.serve.checkpoint import qa_artifacts

    return qa_artifacts(settings)


def _created_at(version: str) -> str | None:
    try:
        stamp = datetime.strptime(version, "v%Y%m%d-%H%M%S-%f").replace(tzinfo=UTC)
    except ValueError:
        return None
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


def _config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _summary(kind: Kind, config: dict[str, Any]) -> dict[str, Any]:
    metrics = config.get("metrics") or {}
    if kind == "encoder":
        test = (metrics.get("test") or {}).get("both") or {}
        return {k: round(float(test[k]), 4) for k in ("mrr", "hits_at_10") if k in test}
    return {f"{head}_val_hits@1": metrics[head]["val_hits@1"]
            for head in sorted(config.get("heads") or {})
            if isinstance(metrics.get(head), dict) and "val_hits@1" in metrics[head]}


def list_versions(settings: Settings, driver: Driver | None, kind: Kind,
                  domain: str) -> list[VersionInfo]:
    """Every stored version of ``kind`` for ``domain``, oldest first. With a ``driver`` an
    encoder version says whether Neo4j serves its embeddings."""
    store = artifacts_of(settings, kind)
    active = store.active_version(domain)
    active_encoder = encoder_artifacts(settings).active_version(domain)
    served = None
    if kind == "encoder" and driver is not None:
        pointer = active_embedding(driver, settings.neo4j_database, domain)
        served = pointer.version if pointer is not None else None
    out = []
    for version in store.versions(domain):
        folder = store.path(domain, version)
        config = _config(folder)
        info = VersionInfo(
            kind=kind, domain=domain, version=version, active=version == active,
            created_at=_created_at(version),
            size_bytes=sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
            metrics=_summary(kind, config))
        if kind == "qa":
            info.encoder_version = config.get("encoder_version")
            heads = config.get("heads") or {}
            if "graph" in heads and (heads["graph"] or {}).get("graph_dim"):
                info.graph_head_usable = info.encoder_version == active_encoder
        else:
            metrics = config.get("metrics") or {}
            if isinstance(metrics.get("history"), list):
                try:
                    info.history = [EpochRecord.model_validate(row)
                                    for row in metrics["history"]]
                except ValidationError:  # a hand-edited file: list the version without it
                    info.history = None
            if isinstance(metrics.get("best_epoch"), int):
                info.best_epoch = metrics["best_epoch"]
            if driver is not None:
                info.served = version == served
        out.append(info)
    return out


def activate_version(settings: Settings, driver: Driver, kind: Kind, domain: str,
                     version: str) -> VersionInfo:
    """Make ``version`` the one served; it is loaded first, so one that does not load is refused
    (``InvalidInputError``) and the served version stays. Holds the kind's ``ModelLock`` of
    the domain: while a training run or another activation holds it, ``ModelBusyError``."""
    with ModelLock(driver, settings.neo4j_database, kind, domain) as lock:
        return _activate_locked(settings, driver, kind, domain, version, lock)


def _activate_locked(settings: Settings, driver: Driver, kind: Kind, domain: str,
                     version: str, lock: ModelLock) -> VersionInfo:
    store = artifacts_of(settings, kind)
    folder = store.path(domain, version)  # NotFoundError for an unknown version
    try:
        if kind == "qa":
            from fusion.serve.checkpoint import load_checkpoint as load_qa

            load_qa(folder)
        else:
            bundle = load_encoder(folder, domain, version)
    except Exception as exc:  # whatever the reason, it cannot be served
        raise InvalidInputError(f"{kind} version {version} of {domain!r} does not load: "
                                f"{type(exc).__name__}: {exc}") from exc
    if kind == "encoder":
        write_embeddings(driver, settings.neo4j_database, domain, version, bundle.uids,
                         bundle.entity_embeddings, fence=lock)
    with lock.fenced():  # the pointer flips only while the lock is still this run's
        store.activate(domain, version)
    return next(v for v in list_versions(settings, driver, kind, domain) if v.version == version)


def delete_version(settings: Settings, kind: Kind, domain: str, version: str) -> None:
    """Remove a stored version; the active one cannot be removed (``ConflictError``)."""
    artifacts_of(settings, kind).delete(domain, version)


def prune_versions(settings: Settings, kind: Kind, domain: str, keep: int) -> list[str]:
    """Remove all but the ``keep`` newest versions and the active one; returns those removed."""
    return artifacts_of(settings, kind).prune(domain, keep)
