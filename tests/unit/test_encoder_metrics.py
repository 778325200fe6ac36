"""Filtered rank metrics against hand-computed examples (realistic ranks for ties)."""

from __future__ import annotations

import pytest
import torch

from core.errors import KgrError, TrainingDivergedError
from graph.encoder.evaluate import FilterIndex, evaluate, rank_metrics, realistic_ranks


def test_realistic_ranks_with_ties_and_filtering() -> None:
    scores = torch.tensor([[0.9, 0.5, 0.7, 0.5], [0.1, 0.2, 0.2, 0.3]])
    # row 0: entity 0 is another true answer, filtered; 0.7 beats the target; one tie at 0.5
    ranks = realistic_ranks(scores, torch.tensor([1, 3]), torch.tensor([0]), torch.tensor([0]))
    assert ranks.tolist() == [2.5, 1.0]
    metrics = rank_metrics(ranks)
    assert metrics.mrr == pytest.approx((1 / 2.5 + 1) / 2)
    assert metrics.hits_at_1 == 0.5 and metrics.hits_at_3 == 1.0
    assert metrics.mean_rank == pytest.approx(1.75)


def test_unfiltered_rank_counts_every_better_entity() -> None:
    scores = torch.tensor([[0.9, 0.5, 0.7, 0.5]])
    assert realistic_ranks(scores, torch.tensor([1])).tolist() == [3.5]


def test_filter_index_finds_known_partners() -> None:
    known = FilterIndex(torch.tensor([[0, 0, 1], [0, 0, 2], [3, 0, 1], [0, 1, 3]]), 2)
    rows, cols = known.known_tails(torch.tensor([0, 0, 2]), torch.tensor([0, 1, 0]))
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 3)]
    rows, cols = known.known_heads(torch.tensor([0]), torch.tensor([1]))
    assert sorted(cols.tolist()) == [0, 3] and rows.tolist() == [0, 0]


def test_head_and_tail_metrics_on_a_hand_computed_example() -> None:
    known = FilterIndex(torch.tensor([[0, 0, 1], [0, 0, 2], [3, 0, 1]]), 1)
    tail_scores = torch.tensor([0.9, 0.5, 0.8, 0.5])  # (0, r, ?): target 1, filter 2 -> 2.5
    head_scores = torch.tensor([0.1, 0.4, 0.4, 0.9])  # (?, r, 1): target 0, filter 3 -> 3

    def tails(h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return tail_scores.expand(h.shape[0], 4)

    def heads(r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return head_scores.expand(t.shape[0], 4)

    result = evaluate(tails, heads, torch.tensor([[0, 0, 1]]), known)
    assert result["tail"].mrr == pytest.approx(1 / 2.5)
    assert result["head"].mrr == pytest.approx(1 / 3)
    assert result["both"].mrr == pytest.approx((1 / 2.5 + 1 / 3) / 2)
    assert result["both"].hits_at_1 == 0.0 and result["both"].hits_at_3 == 1.0
    assert result["both"].count == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_fail_the_evaluation(bad: float) -> None:
    known = FilterIndex(torch.tensor([[0, 0, 1]]), 1)

    def tails(h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        scores = torch.tensor([[0.9, 0.5, 0.8, 0.5]]).expand(h.shape[0], 4).clone()
        scores[:, 1] = bad  # the true tail: a NaN compares neither greater nor equal
        return scores

    def heads(r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros(t.shape[0], 4)

    # the bug this guards against: a NaN (or +inf) true entity ranks first
    assert realistic_ranks(tails(torch.tensor([0]), torch.tensor([0])),
                           torch.tensor([1])).tolist() == [1.0]
    with pytest.raises(TrainingDivergedError, match="NaN or infinite") as caught:
        evaluate(tails, heads, torch.tensor([[0, 0, 1]]), known)
    assert isinstance(caught.value, KgrError)


def test_a_diverged_training_is_a_named_server_error() -> None:
    from api.errors import kgr_error_response

    response = kgr_error_response(TrainingDivergedError("training diverged in epoch 3"))
    assert response.status_code == 500
    assert b'"code":"training_diverged"' in response.body
