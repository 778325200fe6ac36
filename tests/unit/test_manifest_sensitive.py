"""``sensitive:`` in a migration manifest: only declared node properties, never core ones."""

from __future__ import annotations

from pathlib import Path

from graph.migrate.manifest import parse_load, read_manifest


def write(tmp_path: Path, sensitive: str) -> Path:
    (tmp_path / "nodes.tsv").write_text("id\tname\tmrn\np1\tAlpha\tM-1\n")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("domain: clinic\nnodes:\n  - file: nodes.tsv\n    type: Patient\n"
                        f"    properties: {{mrn: str}}\nsensitive: {sensitive}\n")
    return manifest


def test_declared_property_is_accepted_and_carried(tmp_path: Path) -> None:
    path = write(tmp_path, "[mrn, mrn]")
    manifest, problems = read_manifest(path)
    assert problems == [] and manifest is not None
    assert parse_load(path, manifest).sensitive == ["mrn"]


def test_core_or_undeclared_properties_are_problems(tmp_path: Path) -> None:
    _, problems = read_manifest(write(tmp_path, "[name, dob]"))
    messages = [p.message for p in problems]
    assert any("'name' is a core property" in m for m in messages)
    assert any("'dob' is not a property declared" in m for m in messages)
