"""Unit tests of the fusion package that need no database: metrics, templates, model paths."""

from __future__ import annotations

import pytest
import torch

from fusion.evaluate import reciprocal_rank, summarize
from fusion.linking import AliasIndex, EntityLinker, mask_question
from fusion.model import FusionModel
from fusion.verbalize import (
    FRAMES,
    HELD_OUT_FRAMES,
    HELD_OUT_PHRASINGS,
    PHRASINGS,
    noun,
    noun_phrase,
    split_variants,
)


def test_metrics_on_a_hand_checked_example() -> None:
    rows = [
        (1, ["a", "b"], {"b"}),                     # rank 2
        (1, ["d", "e", "f", "g", "h", "i"], {"i"}),  # rank 6: not in the top 5
        (1, ["x"], {"x", "y"}),                     # rank 1
        (2, ["c"], {"z"}),                          # missed
    ]
    metrics = summarize(rows)
    assert metrics["1"] == {"n": 3, "hits@1": round(1 / 3, 4), "hits@5": round(2 / 3, 4),
                            "mrr": round((1 / 2 + 1 / 6 + 1) / 3, 4)}
    assert metrics["2"] == {"n": 1, "hits@1": 0.0, "hits@5": 0.0, "mrr": 0.0}
    assert metrics["all"]["n"] == 4
    assert metrics["all"]["mrr"] == round((1 / 2 + 1 / 6 + 1) / 4, 4)
    assert reciprocal_rank([], {"a"}) == 0.0


def test_held_out_templates_never_appear_in_training() -> None:
    train_frames = set(split_variants(FRAMES, HELD_OUT_FRAMES, "train"))
    eval_frames = set(split_variants(FRAMES, HELD_OUT_FRAMES, "eval"))
    assert train_frames and eval_frames and not train_frames & eval_frames
    for forwards, backwards in PHRASINGS.values():
        for variants in (forwards, backwards):
            train = set(split_variants(variants, HELD_OUT_PHRASINGS, "train"))
            held = set(split_variants(variants, HELD_OUT_PHRASINGS, "eval"))
            assert held and not train & held


def test_noun_phrase_nests_hops() -> None:
    text = noun_phrase([("ASSOCIATED_WITH", "out"), ("HAS_PHENOTYPE", "out")],
                       ["Disease", "Phenotype"], "Phenotype", "FBN1")
    assert text == "phenotypes of the diseases associated with FBN1"
    assert noun("FinancialInstrument") == "financial instruments"
    assert noun("Company") == "companies"
    assert noun("Kinase") == "kinases"


def test_linker_prefers_the_longest_match_and_keeps_ambiguity() -> None:
    index = AliasIndex(
        keys={"marfan syndrome": [("m:1", True), ("m:2", True)], "marfan": [("m:3", True)],
              "mfs": [("m:1", False)]},
        names={"m:1": "Marfan syndrome", "m:2": "Marfan syndrome", "m:3": "Marfan"},
        types={"m:1": "Disease", "m:2": "Disease", "m:3": "Gene"},
    )
    linker = EntityLinker(None, "m", index)
    question = "Which genes are associated with Marfan syndrome?"
    mentions = linker.link(question)
    assert len(mentions) == 1
    top = mentions[0]
    assert question[top.start:top.end] == "Marfan syndrome"
    assert {c.uid for c in top.candidates} == {"m:1", "m:2"}
    assert mask_question(question, top, "[MASK]") == "Which genes are associated with [MASK]?"
    alias = linker.link("What does MFS present?")[0]
    assert alias.method == "alias" and alias.candidates[0].uid == "m:1"
    assert linker.link("Which genes are there?") == []


@pytest.mark.parametrize("use_graph", [True, False])
def test_beam_prefix_scores_match_teacher_forcing(use_graph: bool) -> None:
    """The fast per-step path used in the beam search equals the batched training forward."""
    torch.manual_seed(0)
    graph_dim = 8 if use_graph else 0
    model = FusionModel(hidden=32, graph_dim=graph_dim, use_graph=use_graph, dropout=0.0).eval()
    n_actions, length = 7, 5
    actions = model.action_vectors(torch.randn(n_actions, 384), torch.randint(0, 3, (n_actions,)),
                                   torch.randn(n_actions, graph_dim) if use_graph else None)
    tokens = torch.randn(2, length, 384)
    mask = torch.ones(2, length, dtype=torch.bool)
    mask[1, 3:] = False
    pooled = torch.randn(2, 384)
    topic_type = torch.randn(2, 384)
    topic_graph = torch.randn(2, graph_dim) if use_graph else None
    gold = torch.tensor([[1, 4, 6], [2, 0, 5]])
    with torch.no_grad():
        prior = torch.randn(2, 3, n_actions)
        reference = model(tokens, mask, pooled, topic_type, topic_graph, actions, gold, prior)
        keys, values = model.encode_question(tokens)
        base = model.initial_state(pooled, topic_type, topic_graph)
        for step in range(3):
            prefixes = [gold[0, :step].tolist(), gold[1, :step].tolist()]
            state = model.prefix_states(base, prefixes, actions)
            fast = model.step_scores(state, step, keys, values, mask, actions, prior[:, step])
            assert torch.allclose(fast, reference[:, step], atol=1e-5)
