"""Manifest packages (graph.migrate.manifest) against the real Neo4j: invalid files reported with
their lines, and a triples file loaded as a new domain.

Every test uses its own migrations folder (tmp_path), its own history namespace and a fresh
domain, so it never touches the built-in history or other tests' data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from neo4j import Driver

from core.settings import Settings
from graph.migrate.exceptions import (
    MigrationValidationError,
)
from graph.store import GraphStore
from tests.integration.migrations_support import (
    counts,
    make_runner,
    write_package,
)

pytestmark = pytest.mark.integration


BAD_NODES = (
    "id\tname\ttype\tcolour\tweight\n"                 # line 1: unknown column 'colour'
)
BAD_NODES_2 = (
    "id\tname\ttype\tweight\n"
    "A\tAlpha\tThing\t1.0\n"
    "\tNo id\tThing\t\n"                                # line 3: missing id
    "A\tAlpha again\tThing\t\n"                         # line 4: duplicate id
    "B\tBeta\tnot a label\t\n"                          # line 5: bad label
    "C\tGamma\tThing\theavy\n"                          # line 6: not a float
    "D\tDelta\tThing\n"                                 # line 7: wrong field count
)
BAD_RELS = (
    "source\ttarget\ttype\tscore\n"
    "A\tZ\tLINKS\t\n"                                   # line 2: Z does not exist
    "A\tC\thas-part\t\n"                                # line 3: bad relationship type
    "A\tC\tLINKS\tmany\n"                               # line 4: not an int
)


def test_invalid_files_report_every_problem_with_lines(driver: Driver, settings: Settings,
                                                        mig_dir: Path, namespace: str,
                                                        domain: str) -> None:
    write_package(mig_dir, "V1__bad.yaml", domain, BAD_NODES_2, BAD_RELS)
    with (mig_dir / "V1__bad_rels.tsv").open("ab") as handle:
        handle.write(b"A\t\xff\xfeC\tLINKS\t\n")      # line 5: not UTF-8
    runner = make_runner(driver, settings, mig_dir, namespace)
    problems = runner.validate()
    found = {(Path(p.file).name, p.line) for p in problems}
    expected = {("V1__bad_nodes.tsv", line) for line in (3, 4, 5, 6, 7)} | {
        ("V1__bad_rels.tsv", line) for line in (2, 3, 4, 5)}
    assert expected <= found, problems
    by_line = {(Path(p.file).name, p.line): p.message for p in problems}
    assert "duplicate id 'A'" in by_line[("V1__bad_nodes.tsv", 4)]
    assert "not a valid float" in by_line[("V1__bad_nodes.tsv", 6)]
    assert "neither in the node files nor in the graph" in by_line[("V1__bad_rels.tsv", 2)]
    assert "UTF-8" in by_line[("V1__bad_rels.tsv", 5)]

    with pytest.raises(MigrationValidationError) as excinfo:
        runner.migrate()
    assert len(excinfo.value.problems) == len(problems)
    assert counts(driver, settings, domain) == (0, 0)
    assert runner.history() == [] and runner.attempts() == []

    # Unknown columns in a header, and a dry run, report too.
    write_package(mig_dir, "V1__bad.yaml", domain, BAD_NODES, "source\ttarget\ttype\n")
    with pytest.raises(MigrationValidationError, match="unknown column 'colour'"):
        runner.plan()
    assert counts(driver, settings, domain) == (0, 0)


def test_triples_file_loads_as_a_new_domain(driver: Driver, settings: Settings, mig_dir: Path,
                                            namespace: str, domain: str) -> None:
    (mig_dir / "kinship.tsv").write_text(
        "# head\trelation\ttail\n"
        "alice\tparent_of\tbob\n"
        "bob\tparent_of\tcarol\n"
        "alice\tmarried_to\tdave\n"
        "alice\tparent_of\tbob\n")                      # duplicate triple: one relationship
    (mig_dir / "people.tsv").write_text(
        "id\tname\ttype\nalice\tAlice\tPerson\nbob\tBob\tPerson\n")
    (mig_dir / "V1__kinship.yaml").write_text(
        f"domain: {domain}\nnodes:\n  - file: people.tsv\ntriples:\n  - file: kinship.tsv\n")
    [applied] = make_runner(driver, settings, mig_dir, namespace).migrate()
    assert (applied.nodes_created, applied.relationships_created) == (4, 3)
    store = GraphStore(driver, settings.neo4j_database)
    assert store.get_entity(f"{domain}:alice").name == "Alice"
    assert store.get_entity(f"{domain}:carol").types == ["Thing"]
    rel_types = {n.relation.type for n in store.neighbors(f"{domain}:alice", direction="out")}
    assert rel_types == {"PARENT_OF", "MARRIED_TO"}
