"""Questions about two entities and the paths that connect them (fusion.serve.check). No
database."""

from __future__ import annotations

import math

import torch

from fusion.language.linking import Candidate, Mention
from fusion.language.verbalize import phrasings
from fusion.serve.check import (
    PATH_TEMPERATURE,
    Pair,
    asked_direction,
    check_pair,
    hypotheses,
    path_text,
    placeholders,
    rank_paths,
    shared_words,
    stem,
)
from fusion.serve.pipeline import graph_evidence, path_steps
from graph.models import Entity, GraphPath, Relation


def test_questions_about_two_entities_are_recognised() -> None:
    def mention(text: str, question: str, uid: str) -> Mention:
        start = question.index(text)
        return Mention(text, start, start + len(text), "name",
                       [Candidate(uid, text, "Disease", 1.0)])

    for question, first, second in (
            ("Does Marfan syndrome present arachnodactyly?", "Marfan syndrome", "arachnodactyly"),
            ("Is FBN1 associated with Marfan syndrome?", "FBN1", "Marfan syndrome"),
            ("How is FBN1 related to Marfan syndrome?", "FBN1", "Marfan syndrome"),
            ("What links FBN1 and Marfan syndrome?", "FBN1", "Marfan syndrome"),
            ("the connection between FBN1 and Marfan syndrome", "FBN1", "Marfan syndrome")):
        a, b = mention(second, question, "b"), mention(first, question, "a")
        pair = check_pair(question, [a, b])  # the longer mention may come first
        assert pair is not None and (pair.subject.text, pair.object.text) == (first, second)
        assert placeholders(question, pair) in (
            "Does X present Y?", "Is X associated with Y?", "How is X related to Y?",
            "What links X and Y?", "the connection between X and Y")
    # a relation's hypotheses are its phrasings about X and Y, both directions, the ones the
    # benchmarks hold out too (served models learn every phrasing)
    assert "Y that X presents" in hypotheses("HAS_PHENOTYPE")
    assert "Y that present X" in hypotheses("HAS_PHENOTYPE")
    assert "Y characterized by X" in hypotheses("HAS_PHENOTYPE")
    assert len(hypotheses("HAS_PHENOTYPE")) == sum(
        len(phrasings("HAS_PHENOTYPE", d)) for d in ("out", "in"))
    question = "Which genes are associated with Marfan syndrome and arachnodactyly?"
    assert check_pair(question, [mention("Marfan syndrome", question, "a"),
                                 mention("arachnodactyly", question, "b")]) is None
    question = "Can you tell me the genes of Marfan syndrome and arachnodactyly?"  # a request
    assert check_pair(question, [mention("Marfan syndrome", question, "a"),
                                 mention("arachnodactyly", question, "b")]) is None
    question = "Is Marfan syndrome a disease?"  # one entity: nothing to check
    assert check_pair(question, [mention("Marfan syndrome", question, "a")]) is None
    question = "Does Marfan syndrome present tall stature?"  # overlapping mentions: one
    assert check_pair(question, [mention("Marfan syndrome", question, "a"),
                                 mention("Marfan", question, "c")]) is None


def test_the_words_of_a_yes_no_question_give_the_asked_direction() -> None:
    def pair(question: str, first: str, second: str) -> Pair:
        a = question.index(first)
        b = question.index(second)
        return Pair(Mention(first, a, a + len(first), "name", [Candidate("a", first, "T", 1.0)]),
                    Mention(second, b, b + len(second), "name",
                            [Candidate("b", second, "T", 1.0)]))

    # (question, relation, whether it asks first -relation-> second)
    for question, first, second, relation, forward in (
            ("Does Marfan syndrome present arachnodactyly?", "Marfan syndrome",
             "arachnodactyly", "HAS_PHENOTYPE", True),
            ("Does arachnodactyly present Marfan syndrome?", "arachnodactyly",
             "Marfan syndrome", "HAS_PHENOTYPE", True),  # as asked; the graph says no
            ("Is arachnodactyly seen in Marfan syndrome?", "arachnodactyly",
             "Marfan syndrome", "HAS_PHENOTYPE", False),
            ("Is arachnodactyly a feature of Marfan syndrome?", "arachnodactyly",
             "Marfan syndrome", "HAS_PHENOTYPE", False),
            ("Does Marfan syndrome have arachnodactyly as a feature?", "Marfan syndrome",
             "arachnodactyly", "HAS_PHENOTYPE", True),
            ("Is Tesla controlled by Elon Musk?", "Tesla", "Elon Musk", "CONTROL", False),
            ("Is Elon Musk in charge of Tesla?", "Elon Musk", "Tesla", "CONTROL", True),
            ("Does Elon Musk lead Tesla?", "Elon Musk", "Tesla", "CONTROL", True),
            ("Is hypotonia a kind of abnormality of the muscles?", "hypotonia",
             "abnormality of the muscles", "IS_A", True),
            ("Does FBN1 cause Marfan syndrome?", "FBN1", "Marfan syndrome", "ASSOCIATED_WITH",
             True),
            ("Is Marfan syndrome caused by FBN1?", "Marfan syndrome", "FBN1",
             "ASSOCIATED_WITH", False),
            # a user's own type, read from its name
            ("Is Paris the capital of France?", "Paris", "France", "CAPITAL_OF", True),
            ("Is Acme headquartered in Paris?", "Acme", "Paris", "HEADQUARTERED_IN", True)):
        assert asked_direction(question, pair(question, first, second), relation) is forward, \
            question
    # words that read both ways, or none of the relation's, tell nothing
    question = "Is FBN1 associated with Marfan syndrome?"
    assert asked_direction(question, pair(question, "FBN1", "Marfan syndrome"),
                           "ASSOCIATED_WITH") is None
    question = "Are Tesla and Elon Musk linked?"
    assert asked_direction(question, pair(question, "Tesla", "Elon Musk"), "CONTROL") is None
    # the relation whose phrasings share a content word with the question's
    question = "Is Elon Musk in charge of Tesla?"
    together = pair(question, "Elon Musk", "Tesla")
    assert shared_words(question, together, "CONTROL") == 1  # "charge"; "in", "of" do not count
    assert shared_words(question, together, "OPERATE_IN") == 0
    assert [stem(w) for w in ("presents", "presented", "present", "controlled", "controls",
                              "causing", "cause", "has")] == \
        ["present", "present", "present", "control", "control", "caus", "caus", "hav"]


def test_stored_paths_read_from_their_first_node() -> None:
    nodes = [Entity(uid=u, name=n, domain="d", types=[t]) for u, n, t in (
        ("g", "FBN1", "Gene"), ("d", "Marfan syndrome", "Disease"),
        ("p", "Tall stature", "Phenotype"))]
    path = GraphPath(nodes=nodes, relations=[Relation(type="ASSOCIATED_WITH", source="g",
                                                      target="d"),
                                             Relation(type="ASSOCIATED_PHENOTYPE", source="g",
                                                      target="p")])
    # the second relationship points back along the path
    reversed_path = GraphPath(nodes=[nodes[1], nodes[0], nodes[2]],
                              relations=path.relations)
    assert path_steps(reversed_path) == ["^ASSOCIATED_WITH", "ASSOCIATED_PHENOTYPE"]
    assert path_text(reversed_path) == ("FBN1 associated with Marfan syndrome; FBN1 associated "
                                        "phenotype Tall stature")
    evidence = graph_evidence(reversed_path)
    assert [(h.source, h.type, h.target) for h in evidence.relations] == [
        ("g", "ASSOCIATED_WITH", "d"), ("g", "ASSOCIATED_PHENOTYPE", "p")]
    torch.manual_seed(0)
    question = torch.nn.functional.normalize(torch.randn(8), dim=0)
    texts = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    reference = torch.tensor([math.exp(float(t @ question) / PATH_TEMPERATURE) for t in texts])
    assert torch.allclose(rank_paths(question, texts), reference / reference.sum(), atol=1e-6)
