"""Helpers of the migration runner tests: a runner on a test's own folder and namespace, a domain's
node and relationship counts, and a small manifest package."""

from __future__ import annotations

import textwrap
from pathlib import Path

from neo4j import Driver

from core.settings import Settings
from graph.migrate.runner import MigrationRunner

DOMAIN_COUNTS_QUERY = """
MATCH (n:Entity {domain: $domain})
OPTIONAL MATCH (n)-[r]->()
RETURN count(DISTINCT n) AS nodes, count(r) AS rels
"""


def make_runner(driver: Driver, settings: Settings, mig_dir: Path, namespace: str,
                **kwargs: object) -> MigrationRunner:
    return MigrationRunner(driver, settings, locations=[mig_dir],
                           upload_dir=mig_dir.parent / "uploads", namespace=namespace,
                           **kwargs)  # type: ignore[arg-type]


def counts(driver: Driver, settings: Settings, domain: str) -> tuple[int, int]:
    records, _, _ = driver.execute_query(DOMAIN_COUNTS_QUERY, {"domain": domain},
                                         database_=settings.neo4j_database)
    return records[0]["nodes"], records[0]["rels"]


def write_package(folder: Path, name: str, domain: str, nodes: str, rels: str,
                  extra: str = "") -> None:
    """A manifest ``name`` plus its node and relationship files (tab-separated text)."""
    stem = name.split(".")[0]
    (folder / f"{stem}_nodes.tsv").write_text(nodes)
    (folder / f"{stem}_rels.tsv").write_text(rels)
    (folder / name).write_text(textwrap.dedent(f"""\
        domain: {domain}
        nodes:
          - file: {stem}_nodes.tsv
            properties: {{weight: float}}
        relationships:
          - file: {stem}_rels.tsv
            properties: {{score: int}}
        {extra}"""))


GOOD_NODES = (
    "id\tname\ttype\taliases\tweight\n"
    "D1\tMarfan syndrome\tDisease\tMFS|Marfan's\t0.5\n"
    "P1\tArachnodactyly\tPhenotype\t\t\n"
    "P2\tTall stature\tPhenotype\t\t1.5\n"
)
GOOD_RELS = (
    "source\ttarget\ttype\tscore\n"
    "D1\tP1\tHAS_PHENOTYPE\t3\n"
    "D1\tP2\tHAS_PHENOTYPE\t\n"
    "P1\tP2\tIS_A\t\n"
)
