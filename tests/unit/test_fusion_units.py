"""Unit tests of the fusion package that need no database: metrics, templates, model paths."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
import torch

from fusion.evaluate import reciprocal_rank, summarize
from fusion.graphdata import DomainGraph
from fusion.linking import AliasIndex, EntityLinker, mask_question
from fusion.model import FusionModel
from fusion.parse import MAX_STEPS, PathHints, clean_segment, parse_question, step_token_masks
from fusion.retrieval import BeamItem, Caps, Grouped, MemoryExpander, beam_search
from fusion.verbalize import (
    FRAMES,
    HELD_OUT_FRAMES,
    HELD_OUT_PHRASINGS,
    PHRASINGS,
    noun,
    noun_phrase,
    phrasing_choices,
    phrasings,
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


def test_nested_questions_use_right_branching_phrasings() -> None:
    for rel in PHRASINGS:
        for direction in ("out", "in"):
            options = phrasings(rel, direction)
            assert options[-1].endswith("{x}")  # the held-out one fits any hop
            nested = phrasing_choices((rel, direction), "train", nested=True)
            assert len(nested) >= 2 and all(options[i].endswith("{x}") for i in nested)
            assert len(options) - 1 not in nested  # never the held-out one in training
            assert phrasing_choices((rel, direction), "eval", nested=True) == [len(options) - 1]
    # a 1-hop question may use a centre-embedded phrasing ("companies that X controls")
    assert any(not phrasings("CONTROL", "out")[i].endswith("{x}")
               for i in phrasing_choices(("CONTROL", "out"), "train", nested=False))


def test_parse_gives_each_hop_its_words_type_and_hints() -> None:
    types = ["Disease", "Gene", "Phenotype"]
    masked = "Which genes are associated with the diseases characterized by [MASK]?"
    parse = parse_question(masked, types)
    assert parse.hops == 2 and parse.answer_type == "Gene"
    assert parse.segments == ["are associated with", "characterized by"]
    assert parse.hop_types() == ["Disease", "Gene"]  # from the topic outwards
    first, second = parse.hop_span(0), parse.hop_span(1)
    assert first is not None and second is not None and parse.hop_span(2) is None
    assert masked[first[0]:first[1]] == "diseases characterized by [MASK]?"
    assert masked[second[0]:second[1]] == "genes are associated with the "
    assert PathHints.of(parse) == PathHints(("Disease", "Gene"), 2, "Gene")
    # "who" may be a person or an organisation: no answer-type hint
    who = PathHints.of(parse_question("Who controls [MASK]?", ["Company", "Person"]))
    assert who.hops == 1 and who.answer_type is None
    assert PathHints.of(parse_question("Tell me about [MASK].", types)) == PathHints()
    assert clean_segment("that generalize the") == clean_segment("that generalize [MASK]?")


def test_step_token_masks_select_each_hops_tokens() -> None:
    masked = "Which genes are associated with the diseases characterized by [MASK]?"
    parse = parse_question(masked, ["Disease", "Gene", "Phenotype"])
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", masked)]
    offsets = torch.tensor([(0, 0)] + words + [(0, 0)])  # [CLS] words [SEP]
    mask = torch.ones(len(offsets), dtype=torch.bool)
    masks = step_token_masks(parse, offsets, mask)
    assert masks.shape == (MAX_STEPS, len(offsets))
    chosen = [[masked[a:b] for (a, b), on in zip(words, row[1:-1].tolist(), strict=True) if on]
              for row in masks]
    assert chosen[0] == ["diseases", "characterized", "by", "[MASK]?"]
    assert chosen[1] == ["genes", "are", "associated", "with", "the"]
    assert bool(masks[2].all()) and bool(masks[3].all())  # stop decisions see everything


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
@pytest.mark.parametrize("segment_attention", [False, True])
def test_beam_prefix_scores_match_teacher_forcing(use_graph: bool,
                                                  segment_attention: bool) -> None:
    """The fast per-step path used in the beam search equals the batched training forward."""
    torch.manual_seed(0)
    graph_dim = 8 if use_graph else 0
    model = FusionModel(hidden=32, graph_dim=graph_dim, use_graph=use_graph, dropout=0.0,
                        segment_attention=segment_attention).eval()
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
    step_mask = mask.unsqueeze(1).repeat(1, 3, 1)
    step_mask[0, 0, :2] = False  # hop 1 of question 0 reads only its last tokens
    segment = torch.randn(2, 3, 384)
    with torch.no_grad():
        prior = torch.randn(2, 3, n_actions)
        reference = model(tokens, mask, pooled, topic_type, topic_graph, actions, gold, prior,
                          step_mask, segment)
        keys, values = model.encode_question(tokens)
        base = model.initial_state(pooled, topic_type, topic_graph)
        for step in range(3):
            prefixes = [gold[0, :step].tolist(), gold[1, :step].tolist()]
            state = model.prefix_states(base, prefixes, actions)
            attend = step_mask[:, step] if segment_attention else mask
            fast = model.step_scores(state, step, keys, values, attend, actions, prior[:, step],
                                     segment[:, step])
            assert torch.allclose(fast, reference[:, step], atol=1e-5)
        if segment_attention:  # the step masks and the segment term change the scores
            plain = FusionModel(hidden=32, graph_dim=graph_dim, use_graph=use_graph,
                                dropout=0.0, segment_attention=False).eval()
            plain.load_state_dict({k: v for k, v in model.state_dict().items()
                                   if not k.startswith("segment_proj")})
            other = plain(tokens, mask, pooled, topic_type, topic_graph, actions, gold, prior)
            assert not torch.allclose(other, reference, atol=1e-3)


def test_beam_does_not_expand_prefixes_far_below_the_best() -> None:
    # t -A-> a1 -C-> c1 and t -B-> b1 -C-> c2; the scorer finds B 10 nats worse than A
    graph = DomainGraph("toy", names={u: u for u in ["t", "a1", "b1", "c1", "c2"]},
                        types={"t": "T", "a1": "X", "b1": "X", "c1": "Y", "c2": "Y"})
    graph.adj = {"t": {("A", "out"): ["a1"], ("B", "out"): ["b1"]},
                 "a1": {("C", "out"): ["c1"]}, "b1": {("C", "out"): ["c2"]}}
    expanded: list[str] = []

    class Counting(MemoryExpander):
        def expand_grouped(self, uids: Sequence[str], caps: Caps) -> Grouped:
            expanded.extend(uids)
            return super().expand_grouped(uids, caps)

    def scorer(items: list[BeamItem], candidates: list[list[tuple[str, str]]]
               ) -> list[list[float]]:
        return [[-10.0 if a == ("B", "out") else 0.0 for a in c] for c in candidates]

    for margin, reads_b1 in ((None, True), (8.0, False), (12.0, True)):
        expanded.clear()
        finals = beam_search(Counting(graph), scorer, [("t", 0.0)], 2, Caps(margin=margin))
        assert ("b1" in expanded) is reads_b1
        assert finals[0].steps[0] == ("A", "out")  # the best path is the same either way
