"""DDP (gloo, 2 CPU processes) trains the same model as one process on the same global batches."""

from __future__ import annotations

import pytest
import torch

from graph.encoder import EncoderConfig, split_triples
from graph.encoder.ddp import train_ddp
from graph.encoder.evaluate import FilterIndex
from graph.encoder.train import build_model, fit


@pytest.mark.slow
def test_two_processes_match_one_process() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    triples = torch.stack([torch.randint(0, 30, (200,), generator=gen),
                           torch.randint(0, 3, (200,), generator=gen),
                           torch.randint(0, 30, (200,), generator=gen)], 1)
    splits = split_triples(triples, 0.0, 0.0, 0)
    # message passing (R-GCN, basis decomposition), negatives and N3: every path is shared
    config = EncoderConfig(dim=8, epochs=3, batch_size=64, valid_fraction=0.0, test_fraction=0.0,
                           loss="negative", num_negatives=8, num_layers=1, num_bases=2, n3=1e-3,
                           init_scale=0.1)
    distributed = train_ddp(splits, 30, 3, config, world_size=2)

    model = build_model(config, 30, 3)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, splits, config, FilterIndex(splits.all(), 3))
    single = model.state_dict()
    assert set(distributed) == set(single)
    for key, value in single.items():
        assert not torch.allclose(value, initial[key], atol=1e-4), f"{key} did not train"
        assert torch.allclose(distributed[key], value, atol=1e-5, rtol=1e-4), key
