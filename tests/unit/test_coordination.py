"""Questions about several topics joined by and/or (fusion.serve.coordination). No database."""

from __future__ import annotations

import math

import pytest

from fusion.language.linking import AliasIndex, EntityLinker, Mention
from fusion.learn.questions import alias_index_of, generate_coordinated_questions
from fusion.model.graphdata import DomainGraph
from fusion.serve.coordination import SEPARATOR_RE, Coordination, combine, coordinate
from fusion.serve.pipeline import likely_readings, masked, reading_answers, reading_of
from fusion.serve.retrieval import PathResult


def _linked(question: str) -> tuple[list[Mention], Coordination | None]:
    index = AliasIndex(
        keys={"arachnodactyly": [("p:1", True)], "tall stature": [("p:2", True)],
              "joint hypermobility": [("p:3", True)], "marfan syndrome": [("d:1", True)],
              "fbn1": [("g:1", True)]},
        names={"p:1": "Arachnodactyly", "p:2": "Tall stature", "p:3": "Joint hypermobility",
               "d:1": "Marfan syndrome", "g:1": "FBN1"},
        types={"p:1": "Phenotype", "p:2": "Phenotype", "p:3": "Phenotype", "d:1": "Disease",
               "g:1": "Gene"})
    mentions = EntityLinker(None, "m", index).link(question)
    return mentions, coordinate(question, mentions)


def test_coordinated_topics_are_found_with_their_operator_and_span() -> None:
    question = "Which diseases present both arachnodactyly and tall stature?"
    mentions, group = _linked(question)
    assert group is not None and group.operator == "all"
    assert [m.text for m in group.mentions] == ["arachnodactyly", "tall stature"]
    assert question[group.start:group.end] == "both arachnodactyly and tall stature"
    three = _linked("Which diseases present arachnodactyly, tall stature, and joint "
                    "hypermobility?")[1]
    assert three is not None and three.operator == "all"
    assert [m.candidates[0].uid for m in three.mentions] == ["p:1", "p:2", "p:3"]
    for text in ("Which diseases present arachnodactyly or tall stature?",
                 "Which diseases present either tall stature or arachnodactyly?"):
        either = _linked(text)[1]
        assert either is not None and either.operator == "any" and len(either.mentions) == 2
    # a lone topic, a comma without a word, other types, words between: no coordination
    for text in ("Which diseases present arachnodactyly?",
                 "Which diseases present arachnodactyly, tall stature?",
                 "Which genes are associated with Marfan syndrome and arachnodactyly?",
                 "Is arachnodactyly a kind of tall stature?",
                 "Which phenotypes does FBN1 share with Marfan syndrome?"):
        assert _linked(text)[1] is None, text


def test_combined_answers_put_full_coverage_first_or_take_any() -> None:
    ranked = [[("a", 0.9, "pa"), ("b", 0.6, "pb")],   # topic 0
              [("b", 0.5, "qb"), ("c", 0.8, "qc")]]   # topic 1
    both = combine(ranked, "all", 10)
    assert [c.uid for c in both] == ["b", "a", "c"]  # only b is reached from both topics
    assert both[0].score == pytest.approx((0.6 + 0.5) / 2)
    assert [(t, p, path) for t, p, path in both[0].reached] == [(0, 0.6, "pb"), (1, 0.5, "qb")]
    assert both[1].score == pytest.approx(0.45) and both[2].score == pytest.approx(0.4)
    either = combine(ranked, "any", 2)
    assert [c.uid for c in either] == ["a", "b"]  # noisy-or: b = 1 - 0.4 * 0.5 = 0.8 < 0.9
    assert either[1].score == pytest.approx(0.8)
    assert combine([[], []], "all", 5) == []
    # with readings: shared only through the same relation path ("r1" / "r2" here)
    by_reading = [[("x", 0.9, "r1"), ("y", 0.3, "r1"), ("y", 0.2, "r2")],
                  [("x", 0.8, "r2"), ("y", 0.4, "r1"), ("y", 0.1, "r2")]]
    same = combine(by_reading, "all", 10, reading=lambda path: path)
    assert [c.uid for c in same] == ["y", "x"]  # x: topic 0 by r1 but topic 1 by r2 only
    assert [len(c.reached) for c in same] == [2, 1]
    assert same[0].score == pytest.approx((0.3 + 0.4 + 0.2 + 0.1) / 2)  # both readings
    assert [(t, p) for t, p, _ in same[0].reached] == [(0, 0.3), (1, 0.4)]  # the likelier


def test_coordinated_readings_far_below_the_likeliest_are_dropped() -> None:
    def final(topic: str, rel: str, logp: float, answers: list[str]) -> PathResult:
        return PathResult(topic, ((rel, "out"),), "Company", logp, answers,
                          [{a: (topic, rel, "out") for a in answers}], {})

    control = [final("musk", "CONTROL", math.log(0.05), ["tesla"]),
               final("bezos", "CONTROL", math.log(0.05), ["amazon"])]
    relate = [final("musk", "RELATE_TO", math.log(0.0003), ["twitter"]),
              final("bezos", "RELATE_TO", math.log(0.0003), ["twitter"])]
    finals = [[control[0], relate[0]], [control[1], relate[1]]]
    ranked = [list(reading_answers(own, 10)) for own in finals]
    assert combine(ranked, "all", 1, reading_of)[0].uid == "twitter"  # shared, unlikely
    kept = likely_readings(ranked, finals)
    assert [[uid for uid, _, _ in answers] for answers in kept] == [["tesla"], ["amazon"]]
    assert likely_readings([[], []], [[], []]) == [[], []]


def test_coordinated_span_reads_as_one_singular_topic() -> None:
    index = AliasIndex(keys={"apple": [("f:1", False)], "tesla inc": [("f:3", True)]},
                       names={"f:1": "Apple Inc.", "f:2": "Meta Platforms Inc.",
                              "f:3": "Tesla Inc."},
                       types={"f:1": "Company", "f:2": "Company", "f:3": "Company"},
                       degrees={"f:1": 770, "f:2": 742, "f:3": 351})
    index.keys["meta platforms inc"] = [("f:2", True)]
    linker = EntityLinker(None, "f", index)
    question = "Which companies do Apple and Meta control?"
    # alone, "Meta" is no exact name: only next to one, across a separator, does it count
    assert [m.text for m in linker.link(question)] == ["Apple"]
    mentions = linker.link(question, SEPARATOR_RE)
    assert sorted(m.text for m in mentions) == ["Apple", "Meta"]
    assert [m.text for m in linker.link("Which companies does Apple say Meta controls?",
                                        SEPARATOR_RE)] == ["Apple"]
    group = coordinate(question, mentions)
    assert group is not None
    assert masked(question, mentions, group) == "Which companies does [MASK] control?"
    # "have" may be the main verb: left as it is
    diseases = "Which companies have Apple and Meta?"
    group = coordinate(diseases, linker.link(diseases, SEPARATOR_RE))
    assert group is not None
    assert masked(diseases, [], group) == "Which companies have [MASK]?"


def test_coordinated_mentions_keep_the_candidates_of_their_shared_type() -> None:
    index = AliasIndex(
        keys={"als": [("d:1", True), ("p:1", True)], "redundant neck skin": [("p:2", True)]},
        names={"d:1": "ALS", "p:1": "ALS", "p:2": "Redundant neck skin"},
        types={"d:1": "Disease", "p:1": "Phenotype", "p:2": "Phenotype"})
    question = "Which genes contribute to ALS and redundant neck skin?"
    mentions = EntityLinker(None, "m", index).link(question)
    assert {c.uid for m in mentions for c in m.candidates} == {"d:1", "p:1", "p:2"}
    group = coordinate(question, mentions)
    assert group is not None
    assert [[c.uid for c in m.candidates] for m in group.mentions] == [["p:1"], ["p:2"]]


def test_coordinated_questions_ask_what_every_topic_reaches() -> None:
    diseases = {"d1": "Marfan syndrome", "d2": "Loeys Dietz syndrome", "d3": "Stickler syndrome",
                "d4": "Homocystinuria"}
    phenotypes = {"p1": "Arachnodactyly", "p2": "Tall stature", "p3": "Myopia",
                  "p4": "Scoliosis", "p5": "Inguinal hernia"}
    genes = {"g1": "FBN1", "g2": "TGFBR1", "g3": "COL2A1", "g4": "CBS"}
    has = {"d1": ["p1", "p2", "p3", "p4"], "d2": ["p1", "p4", "p5"], "d3": ["p3", "p4"],
           "d4": ["p1", "p2", "p3"]}
    causes = {"g1": ["d1"], "g2": ["d2"], "g3": ["d3"], "g4": ["d4"]}
    names = {**diseases, **phenotypes, **genes}
    types = {**{u: "Disease" for u in diseases}, **{u: "Phenotype" for u in phenotypes},
             **{u: "Gene" for u in genes}}
    graph = DomainGraph("m", names=names, types=types)
    adj: dict[str, dict[tuple[str, str], list[str]]] = {}
    for rel, edges in (("HAS_PHENOTYPE", has), ("ASSOCIATED_WITH", causes)):
        for head, tails in edges.items():
            for tail in tails:
                adj.setdefault(head, {}).setdefault((rel, "out"), []).append(tail)
                adj.setdefault(tail, {}).setdefault((rel, "in"), []).append(head)
    graph.adj = adj
    rows = generate_coordinated_questions(graph, {1: 6, 2: 4}, "eval", seed=2)
    assert {r["hops"] for r in rows} == {1, 2} and len(rows) >= 6
    by_name = {v: k for k, v in names.items()}
    linker = EntityLinker(None, "m", alias_index_of(graph))
    for row in rows:
        topics = [by_name[n] for n in row["topic_names"]]
        assert len(topics) == 2 and all(n in row["question"] for n in row["topic_names"])
        steps = [tuple(s) for s in row["path"]]
        shared = None
        for topic in topics:
            reached = {topic}
            for step in steps:
                reached = graph.follow(reached, step)  # type: ignore[arg-type]
            reached = {u for u in reached if types[u] == row["answer_type"]} - {topic}
            shared = reached if shared is None else shared & reached
        assert shared and set(row["answers"]) == shared
        group = coordinate(row["question"], linker.link(row["question"]))
        assert group is not None and group.operator == "all"
        assert [m.candidates[0].uid for m in group.mentions] == topics
