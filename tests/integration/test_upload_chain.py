"""Uploaded domain packages are a version chain of their own (U1, U2... in the history
namespace "<namespace>/upload", records marked source "upload"): a later built-in migration
never collides with an upload, and a host without an upload's files still validates and
migrates its built-ins. Checksums still guard uploaded packages."""

from __future__ import annotations

from pathlib import Path

import pytest
from neo4j import Driver

from core.settings import Settings
from graph.migrate.exceptions import MigrationValidationError
from graph.migrate.runner import MigrationRunner

pytestmark = pytest.mark.integration

HISTORY_QUERY = """
MATCH (m:_Migration) WHERE m.namespace STARTS WITH $namespace
RETURN m.namespace AS namespace, m.version AS version, m.source AS source, m.script AS script
ORDER BY namespace, version
"""


def builtin(folder: Path, version: int, domain: str) -> None:
    (folder / f"V{version}__step{version}.cypher").write_text(
        f"CREATE (:Entity:Thing {{uid: '{domain}:v{version}', name: 'v{version}', "
        f"domain: '{domain}', _mig: $tag}});\n")


def package(domain: str) -> dict[str, bytes]:
    return {"manifest.yaml": f"domain: {domain}\ntriples:\n  - file: triples.tsv\n".encode(),
            "triples.tsv": b"a\tKNOWS\tb\n"}


def test_uploads_have_their_own_chain(driver: Driver, settings: Settings, tmp_path: Path,
                                      namespace: str, domain: str) -> None:
    builtins = tmp_path / "builtin"
    builtins.mkdir()
    builtin(builtins, 1, domain)
    host_a = MigrationRunner(driver, settings, locations=[builtins],
                             upload_dir=tmp_path / "a" / "migrations", namespace=namespace)
    applied = host_a.add_package(package(domain), slug="people")
    assert [(a.label, a.script, a.source) for a in applied] == [
        ("V1", "V1__step1.cypher", "builtin"), ("U1", "U1__people", "upload")]
    assert (tmp_path / "a" / "migrations" / "U1__people" / "triples.tsv").is_file()

    # the next built-in is V2: no collision with the upload (which once took V2 itself)
    builtin(builtins, 2, domain)
    assert host_a.validate() == []
    assert [a.label for a in host_a.migrate()] == ["V2"]
    assert [(r.label, r.state) for r in host_a.status()] == [
        ("V1", "applied"), ("V2", "applied"), ("U1", "applied")]
    records, _, _ = driver.execute_query(HISTORY_QUERY, {"namespace": namespace},
                                         database_=settings.neo4j_database)
    assert [(r["namespace"], r["version"], r["source"]) for r in records] == [
        (namespace, 1, "builtin"), (namespace, 2, "builtin"),
        (f"{namespace}/upload", 1, "upload")]

    # another host shares the database but not host A's $KGR_HOME: the upload is missing
    # there, which is no reason to refuse its built-ins
    host_b = MigrationRunner(driver, settings, locations=[builtins],
                             upload_dir=tmp_path / "b" / "migrations", namespace=namespace)
    builtin(builtins, 3, domain)
    assert [(r.label, r.state) for r in host_b.status()] == [
        ("V1", "applied"), ("V2", "applied"), ("V3", "pending"), ("U1", "missing")]
    assert host_b.validate() == []
    assert [a.label for a in host_b.migrate()] == ["V3"]
    # and its next upload is U2, after the one it has no files of
    assert [a.label for a in host_b.add_package(package(f"{domain}b"), slug="more")] == ["U2"]

    # checksums still guard an upload: an edited one is refused, the built-ins still apply
    (tmp_path / "a" / "migrations" / "U1__people" / "triples.tsv").write_bytes(b"a\tX\tb\n")
    assert any("U1 was changed after it was applied" in p.message for p in host_a.validate())
    builtin(builtins, 4, domain)
    with pytest.raises(MigrationValidationError, match="uploaded packages do not validate"):
        host_a.migrate()
    assert [(r.label, r.state) for r in host_a.status()][:4] == [
        ("V1", "applied"), ("V2", "applied"), ("V3", "applied"), ("V4", "applied")]
    driver.execute_query("MATCH (n:Entity {domain: $d}) DETACH DELETE n",
                         {"d": f"{domain}b"}, database_=settings.neo4j_database)


def test_a_legacy_v_named_upload_stays_in_the_builtin_chain(driver: Driver, settings: Settings,
                                                           tmp_path: Path, namespace: str,
                                                           domain: str) -> None:
    """Packages uploaded before uploads had a chain are V-named folders in the upload folder,
    with their record in the built-in history: they still read as applied."""
    uploads = tmp_path / "migrations"
    legacy = uploads / "V1__load_old"
    legacy.mkdir(parents=True)
    for name, data in package(domain).items():
        (legacy / name).write_bytes(data)
    runner = MigrationRunner(driver, settings, locations=[], upload_dir=uploads,
                             namespace=namespace)
    assert [a.label for a in runner.migrate()] == ["V1"]
    assert [a.label for a in runner.add_package(package(f"{domain}n"), slug="new")] == ["U1"]
    assert [(r.label, r.state) for r in runner.status()] == [("V1", "applied"),
                                                              ("U1", "applied")]
    driver.execute_query("MATCH (n:Entity {domain: $d}) DETACH DELETE n",
                         {"d": f"{domain}n"}, database_=settings.neo4j_database)
