"""``kgr migrate`` against the real Neo4j, on its own folder and history namespace."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import Driver
from typer.testing import CliRunner

from cli.main import app
from core.settings import Settings, get_settings
from tests.conftest import CLEANUP_NAMESPACE_QUERY

pytestmark = pytest.mark.integration



@pytest.fixture
def cli(settings: Settings, driver: Driver, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Iterator[tuple[CliRunner, list[str]]]:
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("KGR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KGR_BOLT_PORT", str(settings.bolt_port))
    monkeypatch.setenv("NEO4J_PASSWORD", settings.resolved_password())
    monkeypatch.setenv("NEO4J_URI", settings.resolved_uri)
    get_settings.cache_clear()
    (tmp_path / "migrations").mkdir()
    yield CliRunner(), ["migrate", "--dir", str(tmp_path / "migrations"),
                        "--namespace", namespace]
    get_settings.cache_clear()
    driver.execute_query(CLEANUP_NAMESPACE_QUERY, {"namespace": namespace},
                         database_=settings.neo4j_database)


def test_migrate_commands(cli: tuple[CliRunner, list[str]], tmp_path: Path,
                          domain: str) -> None:
    runner, base = cli
    folder = tmp_path / "migrations"
    (folder / "triples.tsv").write_text("a\tlinks\tb\nb\tlinks\tc\n")
    (folder / "V1__links.yaml").write_text(f"domain: {domain}\ntriples:\n  - file: triples.tsv\n")

    dry = runner.invoke(app, [*base, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    [plan] = json.loads(dry.stdout)
    assert (plan["version"], plan["nodes"], plan["relationships"]) == (1, 3, 2)

    applied = runner.invoke(app, base)
    assert applied.exit_code == 0, applied.output
    assert "1 migration(s) applied: 3 nodes, 2 relationships" in " ".join(applied.output.split())

    status = runner.invoke(app, [*base, "status", "--json"])
    [row] = json.loads(status.stdout)["migrations"]
    assert row["state"] == "applied" and row["applied"]["nodes_created"] == 3
    assert "nothing to apply" in runner.invoke(app, base).output
    assert runner.invoke(app, [*base, "validate"]).exit_code == 0

    (folder / "triples.tsv").write_text("a\tlinks\tb\n")
    invalid = runner.invoke(app, [*base, "validate"])
    assert invalid.exit_code == 4 and "changed after it was applied" in invalid.output
    assert runner.invoke(app, base).exit_code == 4
    assert "no lock was held" in runner.invoke(app, [*base, "unlock"]).output
