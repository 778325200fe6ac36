"""The beam search over a graph, its caps and penalties, answer ranking and the count query
(fusion.serve.retrieval), on in-memory graphs. No database."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest
import torch

from core.errors import InvalidInputError
from fusion.language.parse import PathHints, asks_count
from fusion.model.graphdata import DomainGraph
from fusion.queries import count_walk
from fusion.serve.retrieval import (
    ANSWER_TYPE_WEIGHT,
    HINT_PENALTY,
    MAJORITY_PENALTY,
    BeamItem,
    Caps,
    Grouped,
    MemoryExpander,
    PathResult,
    Request,
    Scorer,
    advance,
    beam_search,
    candidate_actions,
    hint_penalty,
    keep_asked_type,
    rank_answers,
)
from tests.unit.random_graphs import TYPES, random_typed_graph


def test_count_questions_and_their_query() -> None:
    assert asks_count("How many genes are associated with Rett syndrome?")
    assert asks_count("  how MANY phenotypes does X present")
    assert not asks_count("Which genes are associated with Rett syndrome?")
    query = count_walk([("HAS_PHENOTYPE", "out"), ("IS_A", "in")], "Phenotype")
    assert "OPTIONAL MATCH (n0)-[:`HAS_PHENOTYPE`]->(n1:Entity)" in query
    assert "OPTIONAL MATCH (n1)<-[:`IS_A`]-(a:Entity:`Phenotype`)" in query
    assert "LIMIT" not in query and "$frontier" in query  # cut per hop, not a row limit
    # a relationship type may hold a backtick: doubled, it stays inside the quoting
    walk = count_walk([("X`]->() DETACH DELETE (n", "out")], "Gene")
    assert "-[:`X``]->() DETACH DELETE (n`]->" in walk
    for rel, etype in (("IS_A", "Gene` {x:1})"), ("a\\u0060b", "Gene")):
        with pytest.raises(InvalidInputError):
            count_walk([(rel, "out")], etype)


def test_beam_does_not_expand_prefixes_far_below_the_best() -> None:
    # t -A-> a1 -C-> c1 and t -B-> b1 -C-> c2; the scorer finds B 10 nats worse than A
    graph = DomainGraph("toy", names={u: u for u in ["t", "a1", "b1", "c1", "c2"]},
                        types={"t": "T", "a1": "X", "b1": "X", "c1": "Y", "c2": "Y"})
    graph.adj = {"t": {("A", "out"): ["a1"], ("B", "out"): ["b1"]},
                 "a1": {("C", "out"): ["c1"]}, "b1": {("C", "out"): ["c2"]}}
    expanded: list[str] = []

    class Counting(MemoryExpander):
        def neighbours(self, requests: Sequence[Request], caps: Caps) -> Grouped:
            expanded.extend(uid for uid, _ in requests)
            return super().neighbours(requests, caps)

    def scorer(items: list[BeamItem], candidates: list[list[tuple[str, str]]]
               ) -> list[list[float]]:
        return [[-10.0 if a == ("B", "out") else 0.0 for a in c] for c in candidates]

    for margin, reads_b1 in ((None, True), (8.0, False), (12.0, True)):
        expanded.clear()
        finals = beam_search(Counting(graph), scorer, [("t", 0.0)], 2, Caps(margin=margin))
        assert ("b1" in expanded) is reads_b1
        assert finals[0].steps[0] == ("A", "out")  # the best path is the same either way


def _eager_beam_search(graph: DomainGraph, scorer: Scorer, topic: str, max_hops: int,
                       caps: Caps, hints: PathHints | None) -> list[PathResult]:
    """The simple reference: read every hop's neighbours of the whole frontier first, then
    score, penalise and cut to the beam (what ``beam_search`` did before it read lazily)."""
    expander = MemoryExpander(graph)
    type_of = lambda uid: graph.types[uid]  # noqa: E731
    items = [BeamItem(topic, (), 0.0, [topic])]
    finals: list[PathResult] = []
    for hop in range(max_hops + 1):
        beyond = hints is not None and hints.hops is not None and hop > hints.hops
        if beyond and finals:
            best = max(f.logp for f in finals)
            items = [item for item in items if item.logp - HINT_PENALTY > best]
        if not items:
            break
        adjacency = None
        if hop < max_hops and not beyond:
            adjacency = expander.expand_grouped(
                list(dict.fromkeys(u for item in items for u in item.frontier)), caps)
        candidates = [candidate_actions(item, adjacency, type_of) for item in items]
        if hop < 1:
            candidates = [[a for a in c if a[1] != "stop"] for c in candidates]
        scores = scorer(items, candidates)
        extended = []
        for item, actions, logps in zip(items, candidates, scores, strict=True):
            for action, lp in zip(actions, logps, strict=True):
                total = item.logp + lp - hint_penalty(hints, item, action, adjacency or {},
                                                      type_of)
                if action[1] == "stop":
                    answers = [u for u in item.frontier if u != topic and type_of(u) == action[0]]
                    finals.append(PathResult(topic, item.steps, action[0], total, answers,
                                             item.back, item.support, item.order))
                elif adjacency is not None:
                    extended.append((total, item, action))
        extended.sort(key=lambda e: (-e[0], e[2]))
        if caps.margin is not None and extended:
            extended = [e for e in extended if e[0] >= extended[0][0] - caps.margin]
        items = [advance(item, action, total, adjacency or {}, caps)
                 for total, item, action in extended[:caps.beam]]
        items = [item for item in items if item.frontier]
    finals.sort(key=lambda f: (-f.logp, f.hops, f.steps, f.answer_type))
    return finals


@pytest.mark.parametrize("seed", range(6))
def test_lazy_beam_search_matches_the_eager_reference(seed: int) -> None:
    # random typed graphs, a random (deterministic) scorer and parse hints: reading neighbours
    # only for the hops that can enter the beam gives exactly the paths, scores and answers of
    # reading everything first, and reads fewer (node, hop) lists
    rng = random.Random(seed)
    types = TYPES
    graph = random_typed_graph(rng)
    nodes = sorted(graph.names, key=lambda u: int(u[1:]))
    weights = {(rel, d): rng.uniform(-4, 0) for rel in "ABCD" for d in ("out", "in")}
    weights.update({(t, "stop"): rng.uniform(-4, 0) for t in types})

    def scorer(items: list[BeamItem], candidates: list[list[tuple[str, str]]]
               ) -> list[list[float]]:
        out = []
        for item, cands in zip(items, candidates, strict=True):
            raw = torch.tensor([weights[a] + 0.7 * len(item.steps) * (a[1] == "stop")
                                for a in cands])
            out.append(torch.log_softmax(raw, 0).tolist() if cands else [])
        return out

    read: list[Request] = []

    class Recording(MemoryExpander):
        def neighbours(self, requests: Sequence[Request], caps: Caps) -> Grouped:
            read.extend(requests)
            return super().neighbours(requests, caps)

    hints = PathHints((rng.choice(types), rng.choice(types)), 2, None) if seed % 2 else None
    caps = Caps(per_type=5, frontier=6, rows=50_000, beam=3, margin=None if seed < 2 else 4.0)
    for topic in ("n0", "n1", "n2"):
        lazy = beam_search(Recording(graph), scorer, [(topic, 0.0)], 3, caps, hints=hints)
        eager = _eager_beam_search(graph, scorer, topic, 3, caps, hints)
        key = lambda f: (f.steps, f.answer_type, round(f.logp, 9), f.answers)  # noqa: E731
        assert [key(f) for f in lazy] == [key(f) for f in eager]
    eager_reads = sum(len(graph.adj.get(u, {})) for u in nodes)  # a bound, not a count
    assert 0 < len(read) < 3 * eager_reads


def test_the_row_cap_holds_over_every_read_of_a_hop() -> None:
    # three equally good hops of 10 neighbours each and a beam of 2: the reads come in two
    # batches, and together they stay within caps.rows
    names = ["t"] + [f"{rel}{i}" for rel in "ABC" for i in range(10)]
    graph = DomainGraph("toy", names={u: u for u in names}, types={u: "X" for u in names})
    graph.adj = {"t": {(rel, "out"): [f"{rel}{i}" for i in range(10)] for rel in "ABC"}}
    read: list[int] = []

    class Counting(MemoryExpander):
        def neighbours(self, requests: Sequence[Request], caps: Caps) -> Grouped:
            grouped = super().neighbours(requests, caps)
            read.append(sum(len(v) for by in grouped.values() for v in by.values()))
            return grouped

    def scorer(items: list[BeamItem], candidates: list[list[tuple[str, str]]]
               ) -> list[list[float]]:
        return [[0.0] * len(c) for c in candidates]

    for rows, expected in ((15, 15), (50, 30)):
        read.clear()
        beam_search(Counting(graph), scorer, [("t", 0.0)], 1, Caps(rows=rows, beam=2,
                                                                    margin=None))
        assert sum(read) == expected


def test_answers_rank_by_the_summed_probability_of_the_paths_that_reach_them() -> None:
    graph = DomainGraph("t", names={u: u for u in "tabc"},
                        types={"t": "Company", "a": "Person", "b": "Person", "c": "Person"})
    expander = MemoryExpander(graph)

    def final(logp: float, answers: list[str], rel: str) -> PathResult:
        back = [{u: ("t", rel, "out") for u in answers}]
        return PathResult("t", ((rel, "out"),), "Person", logp, answers, back, {})

    # worked out by hand: a 0.4, b 0.35 + 0.25 = 0.6, c 0.25; the best path alone would put a
    # first, though the two readings that reach b together outweigh it
    finals = [final(math.log(0.4), ["a"], "CONTROL"), final(math.log(0.35), ["b"], "IMPACT"),
              final(math.log(0.25), ["b", "c"], "RELATE_TO")]
    ranked = rank_answers(finals, expander, 10)
    assert [uid for uid, _, _ in ranked] == ["b", "a", "c"]
    assert [round(p, 6) for _, p, _ in ranked] == [0.6, 0.4, 0.25]
    assert ranked[0][2] is finals[1]  # the evidence comes from b's best path
    assert rank_answers(finals, expander, 1)[0][0] == "b"
    # the sum is a probability: capped at 1 where several topic candidates add up past it
    doubled = [final(math.log(0.9), ["a"], "CONTROL"), final(math.log(0.8), ["a"], "HAS")]
    assert rank_answers(doubled, expander, 1)[0][1] == 1.0


def test_answers_keep_to_the_type_the_question_names_where_one_is_reached() -> None:
    def final(answer_type: str, answers: list[str], logp: float) -> PathResult:
        return PathResult("t", (("R", "out"),), answer_type, logp, answers,
                          [{u: ("t", "R", "out") for u in answers}], {})

    gene = final("Gene", ["g"], math.log(0.3))
    phenotypes = final("Phenotype", ["p1", "p2"], math.log(0.6))
    no_genes = final("Gene", [], math.log(0.3))
    asks_genes = PathHints(("Gene",), 1, "Gene")
    assert keep_asked_type([phenotypes, gene], asks_genes) == [gene]
    # no path of the asked type reaches anything: every path stays (the parse may be wrong)
    assert keep_asked_type([phenotypes, no_genes], asks_genes) == [phenotypes, no_genes]
    # "Who ...": no type named
    assert keep_asked_type([phenotypes, gene], PathHints(("Person",), 1, None)) == \
        [phenotypes, gene]
    # ...but the types an answer may have ("who": an actor), as for one named type
    assert keep_asked_type([phenotypes, gene],
                           PathHints((None,), 1, None, answer_types=frozenset({"Gene"}))) == [gene]
    assert keep_asked_type([phenotypes, gene], None) == [phenotypes, gene]


def test_named_types_weigh_paths_by_what_their_hops_reach() -> None:
    # t -A-> {c1 Company, p1 Person, p2 Person} and t -B-> {c2, c3 Company}, then -C-> a Product;
    # the scorer cannot tell A from B. "products of the companies ... t": both first hops reach
    # a company, but mostly people follow A, so B's path comes first, by MAJORITY_PENALTY.
    names = ["t", "c1", "p1", "p2", "c2", "c3", "x1", "x2"]
    types = {"t": "Place", "c1": "Company", "p1": "Person", "p2": "Person", "c2": "Company",
             "c3": "Company", "x1": "Product", "x2": "Product"}
    graph = DomainGraph("toy", names={u: u for u in names}, types=types)
    graph.adj = {"t": {("A", "out"): ["c1", "p1", "p2"], ("B", "out"): ["c2", "c3"]},
                 "c1": {("C", "out"): ["x1"]}, "c2": {("C", "out"): ["x2"]},
                 "p1": {("C", "out"): ["x1"]}, "p2": {("C", "out"): ["x1"]}}

    def scorer(items: list[BeamItem], candidates: list[list[tuple[str, str]]]
               ) -> list[list[float]]:
        return [[0.0] * len(c) for c in candidates]

    hints = PathHints(("Company", "Product"), 2, "Product")
    finals = beam_search(MemoryExpander(graph), scorer, [("t", 0.0)], 2, Caps(), hints=hints)
    by_first = {f.steps[0][0]: f.logp for f in finals
                if f.hops == 2 and f.answer_type == "Product"}
    assert finals[0].steps == (("B", "out"), ("C", "out"))
    assert by_first["B"] > by_first["A"]
    assert by_first["B"] - by_first["A"] == pytest.approx(MAJORITY_PENALTY)
    # the type named for the last hop is the answer's: a path pays the log of the share of
    # what it reaches that has that type (A reaches one company in three)
    one_hop = PathHints(("Company",), 1, "Company")
    item = BeamItem("t", (), 0.0, ["t"])
    adjacency: Grouped = {"t": graph.adj["t"]}
    type_of = types.__getitem__
    assert hint_penalty(one_hop, item, ("B", "out"), adjacency, type_of) == 0.0
    a_penalty = hint_penalty(one_hop, item, ("A", "out"), adjacency, type_of)
    assert 0.0 < a_penalty == pytest.approx(ANSWER_TYPE_WEIGHT * math.log(3))
    # no company at all: the parse's full penalty, as before
    assert hint_penalty(PathHints(("Product",), 1, "Product"), item, ("B", "out"), adjacency,
                        type_of) == HINT_PENALTY
