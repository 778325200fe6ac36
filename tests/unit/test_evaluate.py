"""Evaluation metrics (fusion.learn.evaluate). No database."""

from __future__ import annotations

from fusion.learn.evaluate import reciprocal_rank, summarize


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
