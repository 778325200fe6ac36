"""The CUDA paths of the encoder: 1-N training under bf16 autocast (AMP), message-passing layers
on the GPU, and DDP with NCCL. Skipped, with the reason, where no CUDA device is present."""

from __future__ import annotations

import pytest
import torch

from graph.encoder import EncoderConfig, KGData, split_triples, train_encoder
from graph.encoder.ddp import train_ddp
from graph.encoder.evaluate import FilterIndex
from graph.encoder.train import Splits, build_model, evaluate_model, fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA device (torch.cuda.is_available() is False)"),
]


def random_graph(num_nodes: int = 20, num_rel: int = 3, num_edges: int = 60) -> KGData:
    gen = torch.Generator().manual_seed(0)
    triples = set()
    while len(triples) < num_edges:
        h, r, t = (int(torch.randint(0, n, (1,), generator=gen)) for n in
                   (num_nodes, num_rel, num_nodes))
        triples.add((f"e{h:02d}", f"R{r}", f"e{t:02d}"))
    return KGData.from_triples(sorted(triples), uids=[f"e{i:02d}" for i in range(num_nodes)])


@pytest.mark.parametrize("overrides", [
    {},
    {"num_layers": 1, "num_bases": 2, "optimizer": "adam", "lr": 0.02},
    {"num_layers": 1, "layer": "compgcn", "optimizer": "adam", "lr": 0.02},
    {"loss": "negative", "shared_negatives": True, "num_negatives": 10, "optimizer": "adam",
     "lr": 0.05, "n3": 0.0},
])
def test_cuda_amp_training_fits_the_graph(overrides: dict[str, object]) -> None:
    data = random_graph()
    config = EncoderConfig(dim=32, epochs=60, batch_size=32, valid_fraction=0.0,
                           test_fraction=0.0, init_scale=0.1, device="cuda", amp=True,
                           **overrides)  # type: ignore[arg-type]
    triples = data.triples()
    result = train_encoder(data, config, splits=Splits(triples, triples[:0], triples[:0]))
    assert next(result.model.parameters()).device.type == "cuda"
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    known = FilterIndex(triples, data.num_relations)
    mrr = evaluate_model(result.model, triples, known, result.graph)["both"].mrr
    assert mrr > 0.9, mrr
    assert all(e["seconds"] > 0 for e in result.history)


def test_amp_runs_the_forward_pass_in_bfloat16() -> None:
    data = random_graph()
    model = build_model(EncoderConfig(dim=16), data.num_nodes, data.num_relations).cuda()
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        scores = model.score_tails(model.encode(), torch.tensor([0, 1]).cuda(),
                                   torch.tensor([0, 1]).cuda())
    assert scores.dtype == torch.bfloat16


def test_ddp_with_nccl_matches_one_process() -> None:
    world_size = min(2, torch.cuda.device_count())  # NCCL needs one device per rank
    gen = torch.Generator().manual_seed(0)
    triples = torch.stack([torch.randint(0, 30, (200,), generator=gen),
                           torch.randint(0, 3, (200,), generator=gen),
                           torch.randint(0, 30, (200,), generator=gen)], 1)
    splits = split_triples(triples, 0.0, 0.0, 0)
    # amp off: bf16 rounding would hide a real mismatch in the tolerance
    config = EncoderConfig(dim=8, epochs=3, batch_size=64, valid_fraction=0.0, test_fraction=0.0,
                           loss="negative", num_negatives=8, num_layers=1, num_bases=2, n3=1e-3,
                           init_scale=0.1, device="cuda", amp=False)
    distributed = train_ddp(splits, 30, 3, config, world_size=world_size)

    model = build_model(config, 30, 3)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, splits, config, FilterIndex(splits.all(), 3), device=torch.device("cuda"))
    single = {k: v.cpu() for k, v in model.state_dict().items()}
    assert set(distributed) == set(single)
    for key, value in single.items():
        assert not torch.allclose(value, initial[key], atol=1e-4), f"{key} did not train"
        assert torch.allclose(distributed[key], value, atol=1e-4, rtol=1e-3), key
