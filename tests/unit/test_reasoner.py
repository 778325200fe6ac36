"""The reasoner's parts: path log-probabilities (fast path against a loop), the serving
scorer against training's path probability, the marginal likelihood, the paths a row's
answers admit, the report of unusable rows, and training that learns hop counts."""

from __future__ import annotations

import math

import pytest
import torch

from fusion.language.verbalize import STOP
from fusion.reasoner.learn import marginal_nll
from fusion.reasoner.model import StepOutput
from fusion.reasoner.serve import StepScores
from fusion.reasoner.supervision import (
    REASON_ANSWER,
    REASON_PATH,
    REASON_TOPIC,
    LinkedRow,
    build_examples,
    candidates,
    keeps_topic,
)
from fusion.reasoner.vocab import Vocab
from tests.family import family_triples, graph_of


def random_output(b: int, t: int, h: int, y: int, seed: int = 0) -> StepOutput:
    gen = torch.Generator().manual_seed(seed)
    return StepOutput(torch.randn(b, t, h, generator=gen).log_softmax(-1),
                      torch.randn(b, t, generator=gen).log_softmax(-1),
                      torch.randn(b, y, generator=gen).log_softmax(-1))


def test_path_logp_matches_a_loop() -> None:
    out = random_output(3, 3, 7, 2)
    question = torch.tensor([0, 0, 1, 2, 2])
    steps = torch.tensor([[1, -1, -1], [1, 4, -1], [6, 0, 2], [3, 3, 3], [5, -1, -1]])
    lengths = torch.tensor([1, 2, 3, 3, 1])
    types = torch.tensor([0, 1, 1, 0, 1])
    fast = out.path_logp(question, steps, lengths, types)
    slow = []
    for c in range(5):
        b, k = int(question[c]), int(lengths[c])
        value = float(out.length[b, k - 1] + out.types[b, types[c]])
        value += sum(float(out.hops[b, t, steps[c, t]]) for t in range(k))
        slow.append(value)
    assert torch.allclose(fast, torch.tensor(slow), atol=1e-6)


def test_serving_scores_add_up_to_the_training_probability() -> None:
    vocab = Vocab([("a", "out"), ("a", "in"), ("b", "out")], ["Thing", "Place"])
    out = random_output(1, 3, 3, 2, seed=4)
    scores = StepScores(out, vocab)
    path = [("b", "out"), ("a", "in")]
    served = sum(scores.action(t, step) for t, step in enumerate(path)) + \
        scores.action(len(path), ("Place", STOP))
    trained = out.path_logp(torch.tensor([0]), torch.tensor([[2, 1, -1]]), torch.tensor([2]),
                            torch.tensor([1]))
    assert served == pytest.approx(float(trained), abs=1e-5)
    # every path length's probabilities sum to one over all paths of the vocabulary
    total = 0.0
    for k in range(1, 4):
        for ids in torch.cartesian_prod(*[torch.arange(3)] * k).view(-1, k).tolist():
            for type_id in range(2):
                lp = sum(scores.action(t, vocab.hops[i]) for t, i in enumerate(ids))
                total += math.exp(lp + scores.action(k, (vocab.types[type_id], STOP)))
    assert total == pytest.approx(1.0, abs=1e-4)
    assert scores.action(0, ("Thing", STOP)) == -math.inf  # a path takes at least one hop
    assert scores.action(0, ("unknown", "out")) == -math.inf


def test_marginal_nll_is_minus_mean_log_sum_exp_per_question() -> None:
    logp = torch.tensor([-1.0, -2.0, -0.5, -3.0, -0.1])
    question = torch.tensor([0, 0, 1, 1, 1])
    expected = -(torch.logsumexp(logp[:2], 0) + torch.logsumexp(logp[2:], 0)) / 2
    assert torch.allclose(marginal_nll(logp, question, 2), expected)
    # a question without candidates does not count
    assert torch.allclose(marginal_nll(logp, question, 3), expected)


def test_candidates_find_the_two_hop_path_that_reaches_exactly_the_answers() -> None:
    graph = graph_of(family_triples())
    topic = "person_10"
    dads = graph.follow({topic}, ("parents", "out"))
    answers = frozenset(graph.follow(dads, ("gender", "out")))
    found = candidates(graph, topic, answers, 3, 5000, 256)
    best = [c for c in found if c.weight == 1.0]
    assert (("parents", "out"), ("gender", "out")) in {c.steps for c in best}
    assert all(0 < c.weight <= 1 for c in found)
    assert found == sorted(found, key=lambda c: (-c.weight, len(c.steps), c.steps,
                                                 c.answer_type))


def test_a_path_back_to_the_topic_is_an_answer_only_when_kept() -> None:
    graph = graph_of(family_triples())
    topic = "person_10"  # "the husband of X's wife" is X
    spouse_of_spouse = (("spouse", "out"), ("spouse", "out"))
    kept = candidates(graph, topic, frozenset([topic]), 2, 5000, 256, keep_topic=True)
    assert spouse_of_spouse in {c.steps for c in kept}
    assert not candidates(graph, topic, frozenset([topic]), 2, 5000, 256, keep_topic=False)
    assert keeps_topic([(["a"], frozenset(["a"])), (["b"], frozenset(["c"]))])
    assert not keeps_topic([(["b"], frozenset(["c"]))] * 200)


def test_unusable_rows_are_reported_by_reason_with_their_lines() -> None:
    graph = graph_of(family_triples())
    graph.names["island"], graph.types["island"] = "island", "Thing"  # linked to nothing
    rows = [
        {"question": "the gender of person_10 's dad ?", "_answers": ["male"], "_line": 1},
        {"question": "the gender of nobody 's dad ?", "_answers": ["male"], "_line": 2},
        {"question": "the gender of person_11 's dad ?", "_answers": [], "_line": 3},
        {"question": "the gender of person_12 ?", "_answers": ["island"], "_line": 4},
    ]

    def link(row: dict) -> LinkedRow | None:
        for word in row["question"].split():
            if word in graph.names:
                return LinkedRow([word], row["question"].replace(word, "[MASK]"))
        return None

    examples, report, _ = build_examples(rows, graph, link, 3, 5000, 256)
    assert [e.line for e in examples] == [1]
    assert examples[0].masked == "the gender of [MASK] 's dad ?"
    summary = report.summary()
    assert summary["used"] == 1 and summary["skipped"] == 3
    assert summary["skipped_by_reason"] == {REASON_TOPIC: 1, REASON_ANSWER: 1, REASON_PATH: 1}
    assert summary["skipped_examples"][REASON_TOPIC][0]["line"] == 2
