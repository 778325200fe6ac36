"""The fusion scorer's network (fusion.model.model). No database."""

from __future__ import annotations

import pytest
import torch

from fusion.model.model import FusionModel


@pytest.mark.parametrize("use_graph", [True, False])
@pytest.mark.parametrize("segment_attention", [False, True])
def test_beam_prefix_scores_match_teacher_forcing(use_graph: bool,
                                                  segment_attention: bool) -> None:
    """The fast per-step path used in the beam search equals the batched training forward."""
    torch.manual_seed(0)
    graph_dim = 8 if use_graph else 0
    model = FusionModel(hidden=32, graph_dim=graph_dim, use_graph=use_graph, dropout=0.0,
                        segment_attention=segment_attention, frontier_graph=True).eval()
    with torch.no_grad():  # a trained-looking model: the learned terms start at zero
        for param in model.parameters():
            param.normal_(0.0, 0.2)
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
    frontier = torch.randn(2, 3, graph_dim) if use_graph else None
    with torch.no_grad():
        prior = torch.randn(2, 3, n_actions)
        reference = model(tokens, mask, pooled, topic_type, topic_graph, actions, gold, prior,
                          step_mask, segment, frontier)
        keys, values = model.encode_question(tokens)
        base = model.initial_state(pooled, topic_type, topic_graph)
        for step in range(3):
            prefixes = [gold[0, :step].tolist(), gold[1, :step].tolist()]
            state = model.prefix_states(base, prefixes, actions)
            attend = step_mask[:, step] if segment_attention else mask
            fast = model.step_scores(state, step, keys, values, attend, actions, prior[:, step],
                                     segment[:, step],
                                     frontier[:, step] if frontier is not None else None)
            assert torch.allclose(fast, reference[:, step], atol=1e-5)
        if use_graph:  # where the prefix stands changes the scores
            assert not torch.allclose(model(tokens, mask, pooled, topic_type, topic_graph,
                                            actions, gold, prior, step_mask, segment),
                                      reference, atol=1e-3)
        if segment_attention:  # the step masks and the segment term change the scores
            plain = FusionModel(hidden=32, graph_dim=graph_dim, use_graph=use_graph,
                                dropout=0.0, segment_attention=False).eval()
            plain.load_state_dict({k: v for k, v in model.state_dict().items()
                                   if not k.startswith(("segment_proj", "graph_front_proj"))})
            other = plain(tokens, mask, pooled, topic_type, topic_graph, actions, gold, prior)
            assert not torch.allclose(other, reference, atol=1e-3)


@pytest.mark.parametrize("use_graph", [True, False])
def test_an_untrained_model_scores_exactly_like_the_zero_shot_prior(use_graph: bool) -> None:
    # the learned terms start at zero: epoch 0 of model selection is the zero-shot prior
    torch.manual_seed(0)
    graph_dim = 8 if use_graph else 0
    model = FusionModel(hidden=32, graph_dim=graph_dim, use_graph=use_graph,
                        segment_attention=True, frontier_graph=True).eval()
    tokens, mask = torch.randn(2, 5, 384), torch.ones(2, 5, dtype=torch.bool)
    actions = model.action_vectors(torch.randn(7, 384), torch.randint(0, 3, (7,)),
                                   torch.randn(7, graph_dim) if use_graph else None)
    prior = torch.randn(2, 2, 7)
    with torch.no_grad():
        scores = model(tokens, mask, torch.randn(2, 384), torch.randn(2, 384),
                       torch.randn(2, graph_dim) if use_graph else None, actions,
                       torch.tensor([[1, 4], [2, 0]]), prior, mask.unsqueeze(1).repeat(1, 2, 1),
                       torch.randn(2, 2, 384),
                       torch.randn(2, 2, graph_dim) if use_graph else None)
    assert torch.allclose(scores, prior)
