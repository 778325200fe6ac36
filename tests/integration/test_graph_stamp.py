"""The graph's write stamp (graph.stamp): every kgr write path bumps it, so the ask service
notices a delete and an add of the same size (which leave the node and relationship counts
as they were) and reads the graph again."""

from __future__ import annotations

from pathlib import Path

import pytest
from neo4j import Driver

from core.settings import Settings
from fusion.serve.pipeline import QAService
from graph.migrate.exceptions import MigrationFailedError
from graph.migrate.runner import MigrationRunner
from graph.stamp import read_graph_stamp
from graph.writer import delete_domain, entity_row, relation_row, write_entities, write_relations

pytestmark = pytest.mark.integration

COUNTS_QUERY = """
CALL { MATCH (n) RETURN count(n) AS nodes }
CALL { MATCH ()-[r]->() RETURN count(r) AS relationships }
RETURN nodes, relationships
"""
QUESTION = "Which genes are associated with Marfan syndrome?"


def counts(driver: Driver, settings: Settings) -> tuple[int, int]:
    records, _, _ = driver.execute_query(COUNTS_QUERY, database_=settings.neo4j_database)
    return records[0]["nodes"], records[0]["relationships"]


def test_delete_and_add_of_the_same_size_is_seen(driver: Driver, settings: Settings,
                                                 toy_graph: dict[str, str], domain: str) -> None:
    db = settings.neo4j_database
    other = f"{domain}x"
    try:
        write_entities(driver, db, [entity_row(f"{other}:a", "A", other, ["Thing"]),
                                    entity_row(f"{other}:b", "B", other, ["Thing"])])
        write_relations(driver, db, [relation_row(f"{other}:a", "LINKS", f"{other}:b")])
        service = QAService(settings, driver)
        service.graph_check_ttl_s = 0.0  # a look at the stamp on every question
        assert [a.name for a in service.ask(QUESTION, domain, mode="zero-shot").answers] == [
            "FBN1"]
        before, stamp = counts(driver, settings), read_graph_stamp(driver, db)

        delete_domain(driver, db, other)  # 2 nodes and 1 relationship less ...
        write_entities(driver, db, [  # ... and 2 nodes and 1 relationship more
            entity_row(f"{domain}:NCBIGene:7042", "TGFB2", domain, ["Gene"]),
            entity_row(f"{domain}:NCBIGene:4133", "MFAP2", domain, ["Gene"])])
        write_relations(driver, db, [relation_row(
            f"{domain}:NCBIGene:7042", "ASSOCIATED_WITH", toy_graph["OMIM:154700"], count=3)])

        assert counts(driver, settings) == before  # what the old stamp compared
        assert read_graph_stamp(driver, db).counter == stamp.counter + 3
        answers = service.ask(QUESTION, domain, mode="zero-shot").answers
        assert [a.name for a in answers] == ["TGFB2", "FBN1"]
    finally:
        delete_domain(driver, db, other)


def test_migrations_bump_the_stamp_applied_or_rolled_back(driver: Driver, settings: Settings,
                                                          tmp_path: Path, namespace: str,
                                                          domain: str) -> None:
    db = settings.neo4j_database
    folder = tmp_path / "migrations"
    folder.mkdir()
    runner = MigrationRunner(driver, settings, locations=[folder],
                             upload_dir=tmp_path / "uploads", namespace=namespace)
    (folder / "V1__add.cypher").write_text(
        f"CREATE (:Entity:Thing {{uid: '{domain}:n', name: 'N', domain: '{domain}', "
        "_mig: $tag});\n")
    stamp = read_graph_stamp(driver, db)
    [applied] = runner.migrate()
    assert applied.version == 1
    after_apply = read_graph_stamp(driver, db)
    assert after_apply.counter > stamp.counter and after_apply.token != stamp.token

    (folder / "V2__fails.cypher").write_text(
        f"CREATE (:Entity:Thing {{uid: '{domain}:m', name: 'M', domain: '{domain}', "
        "_mig: $tag})\nWITH 1 AS one RETURN one / 0;\n")
    with pytest.raises(MigrationFailedError):
        runner.migrate()
    assert read_graph_stamp(driver, db).counter > after_apply.counter  # rolled back: bumped
    records, _, _ = driver.execute_query("MATCH (n:Entity {uid: $uid}) RETURN count(n) AS n",
                                         {"uid": f"{domain}:m"}, database_=db)
    assert records[0]["n"] == 0
