"""A load declares how questions name its relationship types (``phrasings:`` in the manifest):
kept in the graph by the migration, read by every process that serves the domain
(``fusion.language.vocabulary``), and used by zero-shot answers, yes/no checks and question
generation,
against the real Neo4j."""

from __future__ import annotations

import shutil
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver

from api.main import create_app
from core.settings import Settings
from fusion.language.parse import parse_question
from fusion.language.verbalize import phrasings
from fusion.learn.questions import generate_questions
from fusion.learn.train import train_domain
from fusion.model.config import TrainConfig
from fusion.model.graphdata import DomainGraph
from fusion.serve.pipeline import QAService
from graph.migrate.exceptions import MigrationValidationError
from graph.migrate.runner import MigrationRunner
from graph.writer import delete_domain

pytestmark = pytest.mark.integration

PHRASING_NODES_QUERY = "MATCH (p:_Phrasings {domain: $domain}) RETURN count(p) AS n"
TYPE_WORD_NODES_QUERY = "MATCH (w:_TypeWords {domain: $domain}) RETURN count(w) AS n"

# Wikidata-style coded relationship types: their names say nothing a question could match
# (P2176: drug used for treatment, P1909: side effect)
NODES = (
    "id\tname\ttype\n"
    "aspirin\taspirin\tDrug\n"
    "ibuprofen\tibuprofen\tDrug\n"
    "headache\theadache\tCondition\n"
    "fever\tfever\tCondition\n"
    "ulcer\tstomach ulcer\tCondition\n"
    "tinnitus\ttinnitus\tCondition\n"
)
TRIPLES = (
    "aspirin\tP2176\theadache\n"
    "aspirin\tP2176\tfever\n"
    "ibuprofen\tP2176\theadache\n"
    "aspirin\tP1909\tulcer\n"
    "aspirin\tP1909\ttinnitus\n"
    "ibuprofen\tP1909\tulcer\n"
)
PHRASINGS = """\
phrasings:
  P2176:
    forward: ["that {x} treats", "treated by {x}", "that {x} is used for"]
    backward: ["that treat {x}", "used against {x}", "given for {x}"]
  P1909:
    forward: ["that are side effects of {x}", "caused by {x}"]
    backward: ["that cause {x}", "with the side effect {x}"]
type_words:
  Drug: [medications, medication, medicines]
"""
QUESTIONS = [
    ("What does aspirin treat?", {"headache", "fever"}, ["P2176"]),
    ("What are the side effects of aspirin?", {"ulcer", "tinnitus"}, ["P1909"]),
    ("Which drugs are used against headache?", {"aspirin", "ibuprofen"}, ["^P2176"]),
]


@pytest.fixture
def plain_domain(driver: Driver, settings: Settings) -> Iterator[str]:
    """A second fresh domain: the same graph without declared phrasings."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    delete_domain(driver, settings.neo4j_database, name)


def write_load(folder: Path, name: str, domain: str, nodes: str, triples: str,
               extra: str = "") -> None:
    stem = name.split(".")[0]
    (folder / f"{stem}_nodes.tsv").write_text(nodes)
    (folder / f"{stem}_triples.tsv").write_text(triples)
    (folder / name).write_text(textwrap.dedent(f"""\
        domain: {domain}
        nodes:
          - file: {stem}_nodes.tsv
        triples:
          - file: {stem}_triples.tsv
        """) + extra)


def runner_for(driver: Driver, settings: Settings, folder: Path, namespace: str
               ) -> MigrationRunner:
    return MigrationRunner(driver, settings, locations=[folder],
                           upload_dir=folder.parent / "uploads", namespace=namespace)


def phrasing_nodes(driver: Driver, settings: Settings, domain: str) -> int:
    records, _, _ = driver.execute_query(PHRASING_NODES_QUERY, {"domain": domain},
                                         database_=settings.neo4j_database)
    return int(records[0]["n"])


def best_answer(service: QAService, question: str, domain: str) -> tuple[set[str], list[str]]:
    response = service.ask(question, domain, top_k=5, mode="zero-shot")
    assert response.answers, response.reason
    best = response.answers[0]
    names = {a.uid.split(":", 1)[1] for a in response.answers
             if a.relation_path == best.relation_path}
    return names, best.relation_path


def test_declared_phrasings_name_coded_relationship_types(
        driver: Driver, settings: Settings, tmp_path: Path, namespace: str, domain: str,
        plain_domain: str) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    write_load(folder, "V1__drugs.yaml", domain, NODES, TRIPLES, PHRASINGS)
    other = tmp_path / "plain"
    other.mkdir()
    write_load(other, "V1__drugs.yaml", plain_domain, NODES, TRIPLES)
    runner_for(driver, settings, folder, namespace).migrate()
    runner_for(driver, settings, other, namespace + "-plain").migrate()
    assert phrasing_nodes(driver, settings, domain) == 2
    assert driver.execute_query(TYPE_WORD_NODES_QUERY, {"domain": domain},
                                database_=settings.neo4j_database).records[0]["n"] == 1
    assert phrasing_nodes(driver, settings, plain_domain) == 0

    service = QAService(settings, driver)
    for question, answers, path in QUESTIONS:
        assert best_answer(service, question, domain) == (answers, path), question
    # the same graph without them: its questions read "p2176" in fixed frames, and at least
    # one of the three goes wrong
    plain = [best_answer(service, q, plain_domain) for q, _, _ in QUESTIONS]
    assert any(got != (answers, path) for got, (_, answers, path) in zip(plain, QUESTIONS,
                                                                          strict=True))
    # the declared phrasings are the domain's own: another domain keeps the derived ones
    assert phrasings("P2176", "in", domain) == ["that treat {x}", "used against {x}",
                                                 "given for {x}"]
    assert "used against {x}" not in phrasings("P2176", "in", plain_domain)

    # a declared word for a type is a type noun of that domain's questions: "medications"
    # names the Drug hop of a 2-hop question
    question = "Which conditions are side effects of the medications used against headache?"
    response = service.ask(question, domain, top_k=5, mode="zero-shot")
    assert response.answers and response.answers[0].relation_path == ["^P2176", "P1909"]
    assert {a.name for a in response.answers[:2]} == {"stomach ulcer", "tinnitus"}
    masked = "Which conditions are side effects of the medications used against [MASK]?"
    assert "Drug" in [t for _, _, t in parse_question(masked, ["Condition", "Drug"],
                                                      domain=domain).nouns]
    assert "Drug" not in [t for _, _, t in parse_question(masked, ["Condition", "Drug"],
                                                          domain=plain_domain).nouns]

    # a yes/no question names the declared relation, and its direction
    response = service.ask("Does aspirin treat fever?", domain)
    assert response.check is not None and response.check.asked_relation == "P2176"
    assert response.check.asked_forward is True and response.check.holds is True

    # generated training questions word the hops with them
    graph = DomainGraph.load(driver, settings.neo4j_database, domain)
    rows = generate_questions(graph, {1: 6}, "all", seed=1)
    declared_words = ("treat", "used against", "given for", "side effect", "caused by",
                      "cause", "used for")
    assert rows and all(any(w in r["question"] for w in declared_words) for r in rows)

    # a later load of the domain declares anew: its phrasings win
    (folder / "more_nodes.tsv").write_text("id\tname\ttype\nparacetamol\tparacetamol\tDrug\n")
    (folder / "more_rels.tsv").write_text("source\ttarget\ttype\nparacetamol\tfever\tP2176\n")
    (folder / "V2__more.yaml").write_text(textwrap.dedent(f"""\
        domain: {domain}
        nodes:
          - file: more_nodes.tsv
        relationships:
          - file: more_rels.tsv
        phrasings:
          P2176:
            backward: ["prescribed for {{x}}"]
        """))
    runner_for(driver, settings, folder, namespace).migrate()
    service.graph_changed()
    response = service.ask("Which drugs are prescribed for fever?", domain, mode="zero-shot")
    assert {a.name for a in response.answers} == {"aspirin", "paracetamol"}
    assert phrasings("P2176", "in", domain) == ["prescribed for {x}"]
    assert phrasings("P2176", "out", domain) == phrasings("P2176", "out")  # not declared now

    delete_domain(driver, settings.neo4j_database, domain)
    assert phrasing_nodes(driver, settings, domain) == 0
    assert driver.execute_query(TYPE_WORD_NODES_QUERY, {"domain": domain},
                                database_=settings.neo4j_database).records[0]["n"] == 0


def test_the_api_shows_each_types_phrasings_and_whether_the_model_learnt_them(
        driver: Driver, settings: Settings, tmp_path: Path, namespace: str,
        domain: str) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    # P1909 is declared one way only; MARRIED_TO reads as English; SPOUSE has no known shape
    write_load(folder, "V1__drugs.yaml", domain, NODES,
               TRIPLES + "aspirin\tMARRIED_TO\tibuprofen\naspirin\tSPOUSE\tibuprofen\n",
               'phrasings:\n  P1909:\n    forward: ["that are side effects of {x}"]\n'
               'type_words:\n  Drug: [medicines]\n')
    runner_for(driver, settings, folder, namespace).migrate()
    app_settings = settings.model_copy(update={"api_keys": "admin:a-key,reader:r-key"})
    reader = {"X-API-Key": "r-key"}
    try:
        with TestClient(create_app(app_settings, driver)) as client:
            got = client.get("/v1/ask/phrasings", params={"domain": domain}, headers=reader)
            assert got.status_code == 200, got.text
            body = got.json()
            by_type = {r["relation"]: r for r in body["relations"]}
            assert set(by_type) == {"P1909", "P2176", "MARRIED_TO", "SPOUSE"}
            assert by_type["P1909"]["forward"] == ["that are side effects of {x}"]
            assert (by_type["P1909"]["forward_source"], by_type["P1909"]["backward_source"]) \
                == ("declared", "frames")
            assert by_type["MARRIED_TO"]["forward_source"] == "name"
            assert by_type["SPOUSE"]["backward_source"] == "frames"
            assert body["model"] is None and body["model_current"] is None
            assert body["type_words"] == {"Drug": ["medicines"]}
            assert client.get("/v1/ask/phrasings", params={"domain": "no-such-domain"},
                              headers=reader).status_code == 404
            assert client.get("/v1/ask/phrasings", params={"domain": domain}).status_code == 401

            # a model trained now learns these phrasings; a later declaration outdates it
            graph = DomainGraph.load(driver, settings.neo4j_database, domain)
            train_domain(settings, driver, domain, generate_questions(graph, {1: 12}, "all"),
                         TrainConfig(epochs=1, hidden=16), graph=graph, use_graph=False)
            client.post("/v1/ask/refresh", headers={"X-API-Key": "a-key"})
            body = client.get("/v1/ask/phrasings", params={"domain": domain},
                              headers=reader).json()
            assert body["model"] is not None and body["model_current"] is True
            # a migration may declare phrasings alone, for types the domain has
            (folder / "V2__more.yaml").write_text(textwrap.dedent(f"""\
                domain: {domain}
                phrasings:
                  SPOUSE:
                    forward: ["married to {{x}}"]
                    backward: ["married to {{x}}"]
                """))
            runner_for(driver, settings, folder, namespace).migrate()
            client.post("/v1/ask/refresh", headers={"X-API-Key": "a-key"})
            body = client.get("/v1/ask/phrasings", params={"domain": domain},
                              headers=reader).json()
            spouse = next(r for r in body["relations"] if r["relation"] == "SPOUSE")
            assert spouse["forward_source"] == "declared"
            assert body["model_current"] is False
    finally:
        shutil.rmtree(settings.artifacts_dir / "qa" / domain, ignore_errors=True)


def test_bad_phrasings_are_refused_before_anything_is_written(
        driver: Driver, settings: Settings, tmp_path: Path, namespace: str,
        domain: str) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    write_load(folder, "V1__drugs.yaml", domain, NODES, TRIPLES, textwrap.dedent("""\
        phrasings:
          P2176:
            forward: ["treated by", "that {x} treats {x}", "given {for} {x}"]
            backward: ["that treat {x}", "taken as medicines for {x}"]
          P9999:
            backward: ["linked to {x}"]
          P1909: {}
        type_words:
          Drug: [Medications, medicines]
          Pill: [pills]
        """))
    runner = runner_for(driver, settings, folder, namespace)
    with pytest.raises(MigrationValidationError) as excinfo:
        runner.migrate()
    messages = "\n".join(p.message for p in excinfo.value.problems)
    assert "'treated by' needs exactly one {x}" in messages
    assert "'that {x} treats {x}' needs exactly one {x}" in messages
    assert "braces other than {x}" in messages
    assert "phrasings.P1909: give forward and/or backward phrasings" in messages
    assert "'Medications' is not a lower-case word or phrase" in messages
    assert "'medicines' occurs in phrasing 'taken as medicines for {x}' of P2176" in messages
    records, _, _ = driver.execute_query("MATCH (n:Entity {domain: $domain}) RETURN count(n) AS n",
                                         {"domain": domain}, database_=settings.neo4j_database)
    assert records[0]["n"] == 0 and phrasing_nodes(driver, settings, domain) == 0
    assert runner.history() == []

    # well-formed phrasings of a type the load does not create
    write_load(folder, "V1__drugs.yaml", domain, NODES, TRIPLES,
               'phrasings:\n  P9999:\n    backward: ["linked to {x}"]\n'
               'type_words:\n  Pill: [pills]\n')
    with pytest.raises(MigrationValidationError) as excinfo:
        runner.migrate()
    messages = "\n".join(p.message for p in excinfo.value.problems)
    assert "has P9999 relationships" in messages and "has Pill entities" in messages
    assert phrasing_nodes(driver, settings, domain) == 0
