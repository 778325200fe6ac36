"""Graph features of the action space (fusion.model.space). No database."""

from __future__ import annotations

import torch

from fusion.model.space import GraphFeatures


def test_mean_entity_averages_the_known_uids_of_each_group() -> None:
    features = GraphFeatures("v", torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.zeros(1, 2),
                             {"a": 0, "b": 1}, ["R"])
    means = features.mean_entity([["a", "b"], ["b", "unknown"], ["unknown"], []])
    assert torch.equal(means, torch.tensor([[2.0, 2.0], [3.0, 4.0], [0.0, 0.0], [0.0, 0.0]]))
