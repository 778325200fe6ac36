"""Answers of the QA service (fusion.serve.pipeline) against the real Neo4j: evidence that exists,
ties, a changing graph, coordinated topics and predicted links."""

from __future__ import annotations

import pytest
from neo4j import Driver

from core.errors import ModelNotReadyError
from core.settings import Settings
from fusion.model.graphdata import DomainGraph
from fusion.serve.linkpred import LinkPredictor
from fusion.serve.pipeline import QAService
from graph.encoder.checkpoint import load_active_encoder
from graph.writer import entity_row, relation_row, write_entities, write_relations
from tests.integration.fusion_support import edge_exists, toy_encoder_and_questions

pytestmark = pytest.mark.integration


def test_zero_shot_answers_with_evidence_that_exists(
    driver: Driver, settings: Settings, toy_graph: dict[str, str], domain: str
) -> None:
    service = QAService(settings, driver)
    response = service.ask("Which genes are associated with Marfan syndrome?", domain,
                           mode="zero-shot")
    assert response.mode == "zero-shot" and response.reason is None
    assert response.answers[0].uid == toy_graph["NCBIGene:2200"]
    assert response.linked_entities[0].candidates[0].uid == toy_graph["OMIM:154700"]
    phenotypes = service.ask("What phenotypes does Marfan syndrome present?", domain,
                             mode="zero-shot", top_k=3)
    assert {a.uid for a in phenotypes.answers} == {
        toy_graph["HP:0001166"], toy_graph["HP:0000098"], toy_graph["HP:0001382"]}
    for answer in response.answers + phenotypes.answers:
        assert answer.evidence and answer.explanation
        for path in answer.evidence:
            hops = path.relations
            assert hops and (answer.uid in (hops[-1].source, hops[-1].target))
            for hop in hops:
                assert edge_exists(driver, settings, hop.source, hop.type, hop.target)
    nothing = service.ask("Who is the mayor of Springfield?", domain)
    assert nothing.answers == [] and "no entity" in (nothing.reason or "")


def test_answers_tied_in_score_come_strongest_relationship_first(
    driver: Driver, settings: Settings, domain: str
) -> None:
    # three people control one company; the one seen most often (count) comes first, in the
    # served path (Neo4j) and in the in-memory graph that training and generation use
    write_entities(driver, settings.neo4j_database, [
        entity_row(f"{domain}:tesla", "Tesla Inc.", domain, ["Company"]),
        entity_row(f"{domain}:a", "Ann Able", domain, ["Person"]),
        entity_row(f"{domain}:m", "Elon Musk", domain, ["Person"]),
        entity_row(f"{domain}:z", "Zed Zee", domain, ["Person"]),
    ])
    write_relations(driver, settings.neo4j_database, [
        relation_row(f"{domain}:a", "CONTROL", f"{domain}:tesla", count=1),
        relation_row(f"{domain}:m", "CONTROL", f"{domain}:tesla", count=109),
        relation_row(f"{domain}:z", "CONTROL", f"{domain}:tesla", count=3),
    ])
    response = QAService(settings, driver).ask("Who controls Tesla Inc.?", domain,
                                               mode="zero-shot")
    assert [a.name for a in response.answers] == ["Elon Musk", "Zed Zee", "Ann Able"]
    assert len({a.score for a in response.answers}) == 1  # a tie broken by the evidence
    graph = DomainGraph.load(driver, settings.neo4j_database, domain)
    assert graph.adj[f"{domain}:tesla"][("CONTROL", "in")] == [
        f"{domain}:m", f"{domain}:z", f"{domain}:a"]


def test_answers_follow_the_graph_after_it_changes(
    driver: Driver, settings: Settings, toy_graph: dict[str, str], domain: str
) -> None:
    service = QAService(settings, driver)
    service.graph_check_ttl_s = 3600.0  # no look at the graph's stamp in the first part
    question = "Which genes are associated with Marfan syndrome?"
    assert [a.name for a in service.ask(question, domain, mode="zero-shot").answers] == ["FBN1"]
    write_entities(driver, settings.neo4j_database,
                   [entity_row(f"{domain}:NCBIGene:7042", "TGFB2", domain, ["Gene"])])
    write_relations(driver, settings.neo4j_database, [relation_row(
        f"{domain}:NCBIGene:7042", "ASSOCIATED_WITH", toy_graph["OMIM:154700"], count=3)])
    # between looks the neighbour cache holds what it read; a migration (POST /v1/migrations)
    # tells the service, which then reads the graph as it is
    assert "TGFB2" not in {a.name for a in service.ask(question, domain,
                                                       mode="zero-shot").answers}
    service.graph_changed()
    answers = service.ask(question, domain, mode="zero-shot").answers
    assert [a.name for a in answers] == ["TGFB2", "FBN1"]  # the stronger relationship first

    # a write by another process (kgr migrate, graph.writer) bumps the graph's write stamp,
    # which the service looks at (here: on every question)
    service.graph_check_ttl_s = 0.0
    service.ask(question, domain, mode="zero-shot")
    write_entities(driver, settings.neo4j_database,
                   [entity_row(f"{domain}:NCBIGene:4133", "MFAP2", domain, ["Gene"])])
    write_relations(driver, settings.neo4j_database, [relation_row(
        f"{domain}:NCBIGene:4133", "ASSOCIATED_WITH", toy_graph["OMIM:154700"], count=2)])
    answers = service.ask(question, domain, mode="zero-shot").answers
    assert [a.name for a in answers] == ["TGFB2", "MFAP2", "FBN1"]

    # and so does a write that adds a relationship alone
    service.ask(question, domain, mode="zero-shot")
    write_entities(driver, settings.neo4j_database,
                   [entity_row(f"{domain}:NCBIGene:1277", "COL1A1", domain, ["Gene"])])
    write_relations(driver, settings.neo4j_database, [relation_row(
        f"{domain}:NCBIGene:1277", "ASSOCIATED_WITH", toy_graph["OMIM:154700"], count=1)])
    answers = service.ask(question, domain, mode="zero-shot").answers
    assert {a.name for a in answers} == {"TGFB2", "MFAP2", "FBN1", "COL1A1"}


def test_an_answer_named_like_the_topic_is_left_out(
    driver: Driver, settings: Settings, toy_graph: dict[str, str], domain: str
) -> None:
    # "Marfan syndrome" also names a phenotype, which the disease of that name presents: asked
    # which diseases present it, "Marfan syndrome" (the disease) is true but says nothing
    phenotype = f"{domain}:HP:9999999"
    write_entities(driver, settings.neo4j_database,
                   [entity_row(phenotype, "Marfan syndrome", domain, ["Phenotype"])])
    write_relations(driver, settings.neo4j_database, [
        relation_row(toy_graph["OMIM:154700"], "HAS_PHENOTYPE", phenotype),
        relation_row(toy_graph["OMIM:130000"], "HAS_PHENOTYPE", phenotype)])
    response = QAService(settings, driver).ask("Which diseases present Marfan syndrome?",
                                               domain, mode="zero-shot")
    assert response.answers[0].name == "Ehlers-Danlos syndrome"
    assert response.answers[0].relation_path == ["^HAS_PHENOTYPE"]
    assert "Marfan syndrome" not in {a.name for a in response.answers}


def test_a_question_that_names_no_type_is_answered_in_one_hop(
    driver: Driver, settings: Settings, toy_graph: dict[str, str], domain: str
) -> None:
    # "What causes X?" names no type noun, so the parse gives no hop count; every hop used to
    # be scored from the whole question and the best path grew to max_hops
    service = QAService(settings, driver)
    for question, answer in (("What causes Marfan syndrome?", "FBN1"),
                             ("What are the symptoms of Ehlers-Danlos syndrome?",
                              "Joint hypermobility")):
        response = service.ask(question, domain, mode="zero-shot")
        assert response.answers[0].name == answer
        assert len(response.answers[0].relation_path) == 1


def test_coordinated_topics_answer_what_all_or_any_of_them_reach(
    driver: Driver, settings: Settings, toy_graph: dict[str, str], domain: str
) -> None:
    service = QAService(settings, driver)
    marfan, eds = toy_graph["OMIM:154700"], toy_graph["OMIM:130000"]
    arachnodactyly, hypermobile = toy_graph["HP:0001166"], toy_graph["HP:0001382"]
    both = service.ask("Which diseases present both arachnodactyly and joint hypermobility?",
                       domain, mode="zero-shot")
    assert both.coordination == "all"
    assert [a.uid for a in both.answers] == [marfan, eds]  # EDS lacks arachnodactyly
    assert both.answers[0].reached_from == [arachnodactyly, hypermobile]
    assert both.answers[1].reached_from == [hypermobile]
    assert "2 of the 2" in both.answers[0].explanation
    assert "not from Arachnodactyly" in both.answers[1].explanation
    assert both.answers[0].score > both.answers[1].score
    for answer in both.answers:  # one evidence path per topic that reaches it, all recorded
        assert len(answer.evidence) == len(answer.reached_from or [])
        for path in answer.evidence:
            for hop in path.relations:
                assert edge_exists(driver, settings, hop.source, hop.type, hop.target)
    alone = service.ask("Which diseases present joint hypermobility?", domain, mode="zero-shot")
    assert alone.coordination is None and {a.uid for a in alone.answers} == {marfan, eds}
    either = service.ask("Which diseases present arachnodactyly or joint hypermobility?",
                         domain, mode="zero-shot")
    assert either.coordination == "any" and [a.uid for a in either.answers] == [marfan, eds]
    # what no topic shares: the answers of each, and the explanation says which lacks them
    genes = service.ask("Which genes are associated with Marfan syndrome and Ehlers-Danlos "
                        "syndrome?", domain, mode="zero-shot")
    assert {a.name for a in genes.answers[:2]} == {"FBN1", "COL5A1"}
    assert all(len(a.reached_from or []) == 1 for a in genes.answers[:2])


def test_predicted_links_extend_answers_without_changing_the_recorded_ones(
    driver: Driver, settings: Settings, toy_graph: dict[str, str], domain: str,
    clean_artifacts: None,
) -> None:
    service = QAService(settings, driver)
    question = "What phenotypes does Marfan syndrome present?"
    with pytest.raises(ModelNotReadyError, match="no encoder"):
        service.ask(question, domain, mode="zero-shot", predicted_links=True)
    toy_encoder_and_questions(driver, settings, domain)
    service = QAService(settings, driver)
    # every entity that is not a recorded phenotype of Marfan syndrome is a predicted one
    service.domain(domain).link_predictor = LinkPredictor.from_bundle(
        load_active_encoder(settings, domain), top_m=8)
    plain = service.ask(question, domain, mode="zero-shot", top_k=50)
    extended = service.ask(question, domain, mode="zero-shot", top_k=50, predicted_links=True)
    assert extended.models["link_predictor"]
    marked = [a for a in extended.answers
              if any(h.predicted for e in a.evidence for h in e.relations)]
    assert toy_graph["HP:0000924"] in {a.uid for a in marked}  # the one phenotype not linked
    # predicted links only add: every answer of the recorded links is still there, at least
    # as likely, and one of the best of them comes first (the three recorded phenotypes tie,
    # and a predicted link to one of them may break the tie)
    scores = {a.uid: a.score for a in extended.answers}
    for answer in plain.answers:
        assert scores[answer.uid] >= answer.score - 1e-9
    best = {a.uid for a in plain.answers if a.score == plain.answers[0].score}
    assert extended.answers[0].uid in best
    for answer in extended.answers:
        for path in answer.evidence:
            for hop in path.relations:
                exists = edge_exists(driver, settings, hop.source, hop.type, hop.target)
                assert exists is not hop.predicted, hop
                assert (hop.probability is not None) is hop.predicted
                if hop.predicted:
                    assert 0.0 < hop.probability < 1.0  # type: ignore[operator]
    for answer in extended.answers:
        guessed = any(h.predicted for h in answer.evidence[0].relations)
        assert ("predicted by the graph encoder" in answer.explanation) is guessed
