"""Questions over a user's own graph, whose relationship types kgr ships no words for: the
phrasings are read from the types' names (``fusion.language.relwords``), against the real Neo4j."""

from __future__ import annotations

import pytest
from neo4j import Driver

from core.settings import Settings
from fusion.language.verbalize import phrasings
from fusion.serve.pipeline import QAService
from graph.writer import entity_row, relation_row, write_entities, write_relations

pytestmark = pytest.mark.integration

# (id, name, type): one type for the concepts, as in UMLS, so that the answer type cannot tell
# the relations apart; the question's relation words must
LAB_ENTITIES = [
    ("labproc", "laboratory procedure", "Concept"),
    ("bloodtest", "blood test", "Concept"),
    ("result", "test result", "Concept"),
    ("organfn", "organ function", "Concept"),
    ("cellfn", "cell function", "Concept"),
    ("chemical", "chemical", "Concept"),
    ("enzyme", "enzyme", "Concept"),
    ("hormone", "hormone", "Concept"),
    ("organism", "organism", "Organism"),
    ("mammal", "mammal", "Organism"),
    ("virus", "virus", "Organism"),
]
LAB_RELATIONS = [
    ("labproc", "MEASURES", "organfn"),
    ("bloodtest", "ISA", "labproc"),
    ("bloodtest", "MEASURES", "cellfn"),
    ("result", "MEASUREMENT_OF", "organfn"),
    ("enzyme", "ISA", "chemical"),
    ("hormone", "ISA", "chemical"),
    ("chemical", "AFFECTS", "organfn"),
    ("chemical", "AFFECTS", "cellfn"),
    ("enzyme", "INTERACTS_WITH", "hormone"),
    ("mammal", "ISA", "organism"),
    ("virus", "ISA", "organism"),
    ("mammal", "INTERACTS_WITH", "virus"),
    ("virus", "LOCATED_IN", "mammal"),
]


@pytest.fixture
def lab_graph(driver: Driver, settings: Settings, domain: str) -> dict[str, str]:
    uids = {i: f"{domain}:{i}" for i, _, _ in LAB_ENTITIES}
    write_entities(driver, settings.neo4j_database, [
        entity_row(uids[i], name, domain, [etype]) for i, name, etype in LAB_ENTITIES])
    write_relations(driver, settings.neo4j_database, [
        relation_row(uids[s], rel, uids[t]) for s, rel, t in LAB_RELATIONS])
    return uids


@pytest.mark.parametrize(("question", "answer", "path"), [
    # "measure" is the verb of MEASURES, not the noun of MEASUREMENT_OF (the fixed frames
    # kgr used before read it as MEASUREMENT_OF)
    ("What can measure organ function?", "labproc", ["^MEASURES"]),
    ("What measures organ function?", "labproc", ["^MEASURES"]),
    # ISA reads as "is a kind of", not as the letters "isa" (before: INTERACTS_WITH, AFFECTS)
    ("What is a mammal a kind of?", "organism", ["ISA"]),
    ("Which concepts are subtypes of chemical?", "enzyme", ["^ISA"]),
    ("What is a blood test a kind of?", "labproc", ["ISA"]),
    # a state of the head: "located in"
    ("Where is the virus located?", "mammal", ["LOCATED_IN"]),
])
def test_a_users_relation_names_are_read_as_english(
        driver: Driver, settings: Settings, domain: str, lab_graph: dict[str, str],
        question: str, answer: str, path: list[str]) -> None:
    response = QAService(settings, driver).ask(question, domain, top_k=3, mode="zero-shot")
    assert response.answers, response.reason
    best = response.answers[0]
    assert best.relation_path == path, [(a.name, a.relation_path) for a in response.answers]
    if answer == "enzyme":  # two subtypes, tied
        assert {a.uid for a in response.answers[:2]} == {lab_graph["enzyme"],
                                                         lab_graph["hormone"]}
    else:
        assert best.uid == lab_graph[answer]


def test_the_words_of_a_users_relations_are_no_entity_words_for_linking(
        driver: Driver, settings: Settings, domain: str, lab_graph: dict[str, str]) -> None:
    linker = QAService(settings, driver).domain(domain).linker
    # read from MEASURES, LOCATED_IN and INTERACTS_WITH; kgr's own vocabulary has none of them
    for word in ("measure", "measures", "located", "interacts"):
        assert linker.question_word(word), word
    assert not linker.question_word("blood") and not linker.question_word("virus")


def test_the_generator_words_a_users_relations_in_their_grammar() -> None:
    # the phrasings the question generator and the zero-shot scorer read for these types
    assert phrasings("MEASURES", "in")[0] == "that measure {x}"
    assert "that {x} is a measurement of" in phrasings("MEASUREMENT_OF", "out")
    assert phrasings("ISA", "in")[0] == "that are a kind of {x}"
