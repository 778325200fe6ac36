"""A user's own triples graph and labelled questions, against the real Neo4j: the reasoner
learns hop counts and relation words that no rule knows ("dad", "heir", "darling"), the ask
pipeline answers with evidence paths of the learnt length, and unusable rows are reported."""

from __future__ import annotations

import pytest
from neo4j import Driver

from core.settings import Settings
from fusion.exceptions import TrainingDataError
from fusion.reasoner.model import ReasonerConfig
from fusion.serve.checkpoint import qa_artifacts
from fusion.serve.pipeline import QAService
from tests.family import load_family, questions
from usecases.train_qa import QATrainingRequest, train_qa

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_reasoner_learns_hops_and_words_and_the_pipeline_answers(
        driver: Driver, settings: Settings, domain: str) -> None:
    graph = load_family(driver, settings, domain)
    people = sorted(u for u in graph.names if u.startswith("person_"))
    train_topics, test_topics = people[4:44], people[44:]
    rows = questions(graph, train_topics)
    rows += [{"question": "the gender of nobody_known 's dad ?", "answers": ["male"]},
             {"question": "what is the gender of person_5 's dad ?", "answers": ["no_such"]}]
    request = QATrainingRequest(rows=rows, model="reasoner", epochs=10, seed=0)
    assert request.kind() == "reasoner"
    result = train_qa(settings, driver, domain, request)
    assert result["model"] == "reasoner"
    assert result["rows"]["rows"] == len(rows)
    assert result["rows"]["skipped_by_reason"] == {"topic not found": 1, "answer not found": 1}
    assert [e["line"] for e in result["rows"]["skipped_examples"]["topic not found"]] == \
        [len(rows) - 1]
    assert len(result["history"]) == result["epochs_run"] >= 1
    assert qa_artifacts(settings).active_version(domain) == result["version"]

    service = QAService(settings, driver)
    qa = service.domain(domain)
    assert qa.default_mode() == "fine-tuned"
    test_rows = questions(graph, test_topics, seed=1)
    right = same_hops = 0
    for row in test_rows:
        response = service.ask(row["question"], domain)
        if response.answers and response.answers[0].name in row["answers"]:
            right += 1
            top = response.answers[0]
            # the evidence is a recorded path of the reading's length, from the topic
            evidence = top.evidence[0].relations
            assert len(evidence) == len(top.relation_path)
            assert row["topic_entities"][0] in (evidence[0].source_name,
                                                evidence[0].target_name)
            same_hops += len(top.relation_path) == row["hops"]
    # nothing in the wording counts hops for it: the hop count is learnt (a 3-hop "offspring
    # of X's wife's father" may also be answered right by the 1-hop "wife")
    assert right / len(test_rows) >= 0.9, f"{right} of {len(test_rows)}"
    assert same_hops / len(test_rows) >= 0.8, f"{same_hops} of {len(test_rows)}"
    assert response.models["reasoner"] is True


def test_rows_of_which_none_is_usable_publish_nothing(
        driver: Driver, settings: Settings, domain: str) -> None:
    load_family(driver, settings, domain)
    rows = [{"question": "who is the dad of nobody_known ?", "answers": ["person_1"]}]
    with pytest.raises(TrainingDataError, match="topic not found"):
        train_qa(settings, driver, domain, QATrainingRequest(rows=rows, model="reasoner"))
    assert qa_artifacts(settings).active_version(domain) is None


def test_a_short_training_keeps_its_config(driver: Driver, settings: Settings,
                                           domain: str) -> None:
    from fusion.reasoner.train import train_reasoner

    graph = load_family(driver, settings, domain)
    rows = questions(graph, ["person_10", "person_11", "person_12"])
    result = train_reasoner(settings, driver, domain, rows,
                            ReasonerConfig(epochs=1, tuned_layers=0), activate=False)
    assert qa_artifacts(settings).active_version(domain) is None  # stored, not served
    folder = qa_artifacts(settings).path(domain, result["version"])
    from fusion.serve.checkpoint import load_checkpoint

    loaded = load_checkpoint(folder)
    assert loaded.config["kind"] == "reasoner"
    assert loaded.config["config"]["tuned_layers"] == 0
