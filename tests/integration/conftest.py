"""Fixtures shared by several integration test modules (the server, driver and domain fixtures are
in tests/conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import Driver

from core.settings import Settings
from graph.encoder import train_domain as train_encoder
from graph.encoder.serve import drop_embeddings
from graph.lock import ModelLock, force_release
from tests.integration.models_support import TINY


@pytest.fixture
def clean_artifacts(settings: Settings, domain: str) -> Iterator[None]:
    """The QA and encoder versions a test trains for its domain are removed afterwards."""
    yield
    for kind in ("qa", "encoder"):
        shutil.rmtree(settings.artifacts_dir / kind / domain, ignore_errors=True)


@pytest.fixture
def mig_dir(tmp_path: Path) -> Path:
    """A test's own, empty migrations folder."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    return folder


@pytest.fixture
def two_encoders(driver: Driver, settings: Settings, toy_graph: dict[str, str],
                 domain: str) -> Iterator[tuple[str, str]]:
    """Two encoder versions of the toy domain, the second active and served."""
    first = train_encoder(settings, driver, domain, TINY)
    second = train_encoder(settings, driver, domain, TINY.model_copy(update={"seed": 1}))
    yield first, second
    drop_embeddings(driver, settings.neo4j_database, domain)
    for kind in ("qa", "encoder"):  # a lock record a failed test left
        force_release(driver, settings.neo4j_database, ModelLock.LABEL, f"{kind}:{domain}")
    for kind in ("qa", "encoder"):
        shutil.rmtree(settings.artifacts_dir / kind / domain, ignore_errors=True)

