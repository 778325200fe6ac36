"""Predicted links in retrieval: what they add to a path, and what they must leave alone."""

from __future__ import annotations

import math
import random

import pytest
import torch

from fusion.language.parse import PathHints
from fusion.model.graphdata import DomainGraph
from fusion.serve.linkpred import LinkPredictor, PredictingExpander
from fusion.serve.retrieval import (
    BeamItem,
    Caps,
    MemoryExpander,
    PathResult,
    advance,
    beam_search,
    rank_answers,
)
from tests.unit import random_graphs

UIDS = ["d1", "d2", "g1", "g2", "g3", "p1"]
TYPES = {"d1": "Disease", "d2": "Disease", "g1": "Gene", "g2": "Gene", "g3": "Gene",
         "p1": "Phenotype"}
RELATIONS = ["ASSOCIATED_WITH", "HAS_PHENOTYPE"]


def toy_graph() -> DomainGraph:
    """d1 -ASSOCIATED_WITH-> g1, d1 -HAS_PHENOTYPE-> p1, d2 -ASSOCIATED_WITH-> g3; the link
    d1 -ASSOCIATED_WITH-> g2 is missing."""
    graph = DomainGraph("toy", names={u: u.upper() for u in UIDS}, types=dict(TYPES))
    graph.adj = {
        "d1": {("ASSOCIATED_WITH", "out"): ["g1"], ("HAS_PHENOTYPE", "out"): ["p1"]},
        "d2": {("ASSOCIATED_WITH", "out"): ["g3"]},
        "g1": {("ASSOCIATED_WITH", "in"): ["d1"]},
        "g3": {("ASSOCIATED_WITH", "in"): ["d2"]},
        "p1": {("HAS_PHENOTYPE", "in"): ["d1"]},
    }
    return graph


def table_predictor(table: dict[tuple[str, int], dict[str, float]], top_m: int = 2
                    ) -> LinkPredictor:
    """A decoder that returns fixed logits per (head, relation index), -inf elsewhere; the
    relation index is >= 2 for the inverse relations, as the encoder's."""

    def score(x: torch.Tensor, heads: torch.Tensor, rels: torch.Tensor) -> torch.Tensor:
        out = torch.full((len(heads), len(UIDS)), -math.inf)
        for row, (h, r) in enumerate(zip(heads.tolist(), rels.tolist(), strict=True)):
            for uid, logit in table.get((UIDS[h], r), {}).items():
                out[row, UIDS.index(uid)] = logit
        return out

    return LinkPredictor(torch.zeros(len(UIDS), 2), score, UIDS, RELATIONS, "toy", top_m)


def test_predictions_leave_out_known_neighbours_and_the_node_itself() -> None:
    predictor = table_predictor({
        ("d1", 0): {"g1": 5.0, "g2": math.log(3.0), "d1": 9.0, "g3": 0.0},  # forward
        ("g2", 2): {"d1": 1.0, "d2": 0.0},  # inverse: which diseases is g2 associated with?
    })
    known = {"d1": {("ASSOCIATED_WITH", "out"): ["g1"]}}
    got = predictor.predict([("d1", ("ASSOCIATED_WITH", "out")),
                             ("g2", ("ASSOCIATED_WITH", "in")),
                             ("zz", ("ASSOCIATED_WITH", "out")),  # unknown to the encoder
                             ("d1", ("NO_SUCH", "out"))], known)
    # softmax over all entities: e^9 (d1) dominates, but d1 is the node and g1 is known
    d1 = got[("d1", ("ASSOCIATED_WITH", "out"))]
    assert [uid for uid, _ in d1] == ["g2", "g3"]
    total = math.exp(9) + math.exp(5) + 3 + 1
    assert math.isclose(d1[0][1], 3 / total, rel_tol=1e-5)
    assert [uid for uid, _ in got[("g2", ("ASSOCIATED_WITH", "in"))]] == ["d1", "d2"]
    assert set(got) == {("d1", ("ASSOCIATED_WITH", "out")), ("g2", ("ASSOCIATED_WITH", "in"))}


def test_advance_puts_recorded_links_first_and_keeps_the_best_link_probability() -> None:
    item = BeamItem("t", (), 0.0, ["a", "b"], weight={"b": 0.5})
    action = ("R", "out")
    adjacency = {"a": {action: ["x", "y"]}, "b": {action: ["z", "x"]}}
    predicted = {("a", "R", "y"): 0.4, ("b", "R", "z"): 0.9}
    nxt = advance(item, action, -1.0, adjacency, Caps(frontier=3), predicted)
    # recorded: a->x (1.0), b->x (0.5, b itself was predicted); predicted: a->y 0.4, b->z 0.45
    assert nxt.frontier == ["x", "y", "z"]
    assert nxt.weight == {"y": 0.4, "z": 0.45}
    assert nxt.back[-1]["x"] == ("a", "R", "out")
    assert nxt.support == {"x": 2}  # predicted links are not support
    assert nxt.recorded == ["x"]
    # the frontier cap keeps recorded links before predicted ones
    capped = advance(BeamItem("t", (), 0.0, ["b", "a"]), action,
                     -1.0, {"b": {action: ["z"]}, "a": {action: ["x"]}}, Caps(frontier=1),
                     {("b", "R", "z"): 0.9})
    assert capped.frontier == ["x"]


def test_a_missing_link_is_followed_marked_and_ranked_below_recorded_ones() -> None:
    graph = toy_graph()
    predictor = table_predictor({("d1", 0): {"g2": 2.0, "g3": 0.0, "g1": 1.0}})
    scores: list[list[tuple[tuple[str, str], ...]]] = []

    def scorer(items: list[BeamItem], candidates: list[list[tuple[str, str]]]
               ) -> list[list[float]]:
        scores.append([tuple(c) for c in candidates])
        return [[-0.1 if a[0] in ("ASSOCIATED_WITH", "Gene") else -3.0 for a in c]
                for c in candidates]

    plain = beam_search(MemoryExpander(graph), scorer, [("d1", 0.0)], 1, Caps())
    plain_calls = list(scores)
    scores.clear()
    expander = PredictingExpander(MemoryExpander(graph), predictor, graph.names, graph.types)
    found = beam_search(expander, scorer, [("d1", 0.0)], 1, Caps(), predicted=expander.predicted)
    # the model scores the same candidates with and without predicted links
    assert scores == plain_calls
    assert [(f.steps, f.answer_type, round(f.logp, 6)) for f in found] == \
        [(f.steps, f.answer_type, round(f.logp, 6)) for f in plain]
    genes = next(f for f in found if f.answer_type == "Gene")
    assert genes.answers[:1] == ["g1"] and set(genes.answers) == {"g1", "g2", "g3"}
    p_g2 = math.exp(2) / (math.exp(2) + math.exp(1) + 1)  # softmax; -inf logits give 0
    assert math.isclose(genes.weight["g2"], p_g2, rel_tol=1e-5)
    ranked = rank_answers(found, expander, 5)
    assert [uid for uid, _, _ in ranked][:3] == ["g1", "g2", "g3"]
    path_prob = math.exp(genes.logp)
    assert math.isclose(dict((u, p) for u, p, _ in ranked)["g2"], path_prob * p_g2,
                        rel_tol=1e-5)
    assert genes.evidence("g2") == [("d1", "ASSOCIATED_WITH", "g2")]
    assert expander.predicted[("d1", "ASSOCIATED_WITH", "g2")] == genes.weight["g2"]
    assert expander.node("g2") == ("G2", "Gene")


def test_paths_through_predicted_links_count_once_per_answer() -> None:
    graph = toy_graph()
    expander = MemoryExpander(graph)

    def final(logp: float, answers: list[str], weight: dict[str, float]) -> PathResult:
        back = [{u: ("d1", "ASSOCIATED_WITH", "out") for u in answers}]
        return PathResult("d1", (("ASSOCIATED_WITH", "out"),), "Gene", logp, answers, back, {},
                          weight=weight)

    # g3 is reached by three paths through a predicted link each (0.5 x 0.3), g1 by one
    # recorded path (0.2): by the best predicted path, not by their sum (0.45), g1 comes first
    finals = [final(math.log(0.5), ["g3"], {"g3": 0.3}) for _ in range(3)]
    finals.append(final(math.log(0.2), ["g1"], {}))
    ranked = rank_answers(finals, expander, 5)
    assert [(u, round(p, 6)) for u, p, _ in ranked] == [("g1", 0.2), ("g3", 0.15)]
    # recorded paths still add up, and a predicted one adds its best on top
    finals.append(final(math.log(0.1), ["g3"], {}))
    assert [(u, round(p, 6)) for u, p, _ in rank_answers(finals, expander, 5)] == \
        [("g3", 0.25), ("g1", 0.2)]


def test_a_hop_the_node_has_not_recorded_is_guessed_only_when_asked_for() -> None:
    graph = toy_graph()
    del graph.adj["d1"][("ASSOCIATED_WITH", "out")]  # d1's only gene link is missing
    del graph.adj["g1"]
    predictor = table_predictor({("d1", 0): {"g1": 1.0, "g2": 0.0}})

    def scorer(items: list[BeamItem], candidates: list[list[tuple[str, str]]]
               ) -> list[list[float]]:
        return [[-0.1 if a[0] in ("ASSOCIATED_WITH", "Gene") else -2.0 for a in c]
                for c in candidates]

    expander = PredictingExpander(MemoryExpander(graph), predictor, graph.names, graph.types)
    plain = beam_search(expander, scorer, [("d1", 0.0)], 1, Caps(),
                        predicted=expander.predicted)
    assert {f.answer_type for f in plain} == {"Phenotype"} and not any(f.guessed for f in plain)
    hops = [(rel, d) for rel in RELATIONS for d in ("out", "in")]
    guessed = beam_search(expander, scorer, [("d1", 0.0)], 1, Caps(),
                          predicted=expander.predicted, guess_hops=hops)
    genes = next(f for f in guessed if f.answer_type == "Gene")
    assert genes.guessed == 1 and genes.steps == (("ASSOCIATED_WITH", "out"),)
    assert genes.answers == ["g1", "g2"]
    assert math.isclose(genes.weight["g1"], math.e / (math.e + 1), rel_tol=1e-5)
    phenotypes = next(f for f in guessed if f.answer_type == "Phenotype")
    assert phenotypes.guessed == 0  # a recorded hop, as in the plain search


@pytest.mark.parametrize("seed", range(4))
def test_predicted_links_leave_every_recorded_path_as_it_was(seed: int) -> None:
    # random typed graphs and a random (deterministic) scorer and link predictor, with small
    # caps so that rows run out and frontiers fill: the paths, scores and recorded answers of
    # the plain search are exactly those of the search with predicted links
    rng = random.Random(seed)
    types = random_graphs.TYPES
    graph = random_graphs.random_typed_graph(rng, unique=True)
    nodes = sorted(graph.names, key=lambda u: int(u[1:]))
    weights = {(rel, d): rng.uniform(-4, 0) for rel in "ABCD" for d in ("out", "in")}
    weights.update({(t, "stop"): rng.uniform(-4, 0) for t in types})
    logits = torch.randn(len(nodes), 8, len(nodes), generator=torch.Generator().manual_seed(seed))

    def score(x: torch.Tensor, heads: torch.Tensor, rels: torch.Tensor) -> torch.Tensor:
        return 3 * logits[heads, rels]

    predictor = LinkPredictor(torch.zeros(len(nodes), 1), score, nodes, list("ABCD"), "r", 3)

    def scorer(items: list[BeamItem], candidates: list[list[tuple[str, str]]]
               ) -> list[list[float]]:
        return [torch.log_softmax(torch.tensor([weights[a] for a in c]), 0).tolist()
                if c else [] for c in candidates]

    hints = PathHints((rng.choice(types), rng.choice(types)), 2, None) if seed % 2 else None
    caps = Caps(per_type=4, frontier=3 + seed % 2, rows=12 + 6 * seed, beam=3)
    key = lambda f: (f.steps, f.answer_type, round(f.logp, 9), f.recorded_answers)  # noqa: E731
    extended_somewhere = False
    for topic in ("n0", "n1", "n2", "n3"):
        plain = beam_search(MemoryExpander(graph), scorer, [(topic, 0.0)], 3, caps, hints=hints)
        expander = PredictingExpander(MemoryExpander(graph), predictor, graph.names,
                                      graph.types)
        extended = beam_search(expander, scorer, [(topic, 0.0)], 3, caps, hints=hints,
                               predicted=expander.predicted)
        assert [key(f) for f in extended] == [key(f) for f in plain]
        extended_somewhere |= any(f.weight for f in extended)
        for f in extended:  # a node with a link probability is one no recorded chain reaches
            if f.steps:
                assert set(f.weight).isdisjoint(f.recorded_nodes(expander.predicted)[-1])
    assert extended_somewhere
