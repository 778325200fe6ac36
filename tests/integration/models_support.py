"""Helpers of the model version and model lock tests: API keys, a tiny encoder configuration and
the in-process `kgr` settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from core.settings import Settings, get_settings
from graph.encoder import EncoderConfig

ADMIN, READER = "admin-key-models-123", "reader-key-models-456"
TINY = EncoderConfig(dim=16, epochs=10, eval_every=5, device="cpu", amp=False,
                     valid_fraction=0.0, test_fraction=0.0)


@contextmanager
def cli_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[None]:
    """The ``kgr`` command run in-process talks to the test run's server and home."""
    monkeypatch.setenv("KGR_HOME", str(settings.home))
    monkeypatch.setenv("KGR_BOLT_PORT", str(settings.bolt_port))
    if settings.neo4j_uri:
        monkeypatch.setenv("NEO4J_URI", settings.neo4j_uri)
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()
