"""The local Neo4j's config: the HTTP connector stays off unless KGR_NEO4J_HTTP_PORT asks."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from graph.server import LocalNeo4j


def conf(tmp_path: Path, **settings: object) -> dict[str, str]:
    server = LocalNeo4j(Settings(home=tmp_path, **settings))  # type: ignore[arg-type]
    server.conf_dir.mkdir(parents=True)
    server._write_conf()
    lines = (server.conf_dir / "neo4j.conf").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_http_is_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KGR_NEO4J_HTTP_PORT", raising=False)
    written = conf(tmp_path)
    assert written["server.http.enabled"] == "false"
    assert "server.http.listen_address" not in written


def test_http_port_opens_on_loopback_only(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGR_NEO4J_HTTP_PORT", "7475")
    written = conf(tmp_path, bolt_port=7690)
    assert written["server.http.enabled"] == "true"
    assert written["server.http.listen_address"] == "127.0.0.1:7475"
    assert written["server.https.enabled"] == "false"
    assert written["server.bolt.listen_address"] == "127.0.0.1:7690"
