"""Encoder model: shapes, decoders' 1-N fast path against naive complex-number references,
training that learns, and a checkpoint round-trip."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

from core.errors import TrainingDivergedError
from graph.encoder import EncoderConfig, KGData, load_checkpoint, save_checkpoint, train_encoder
from graph.encoder.evaluate import FilterIndex
from graph.encoder.layers import ResidualRGCNConv
from graph.encoder.model import ComplEx, DistMult, KGEncoder, NeighborSampler, RotatE
from graph.encoder.train import (
    Splits,
    build_model,
    evaluate_model,
    fit,
    split_triples,
    with_reciprocals,
)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """Tiny tensors: one thread is several times faster than two on a shared, busy CPU."""
    torch.set_num_threads(1)


def random_graph(num_nodes: int = 20, num_rel: int = 3, num_edges: int = 60, seed: int = 0
                 ) -> KGData:
    gen = torch.Generator().manual_seed(seed)
    triples = set()
    while len(triples) < num_edges:
        h, r, t = (int(torch.randint(0, n, (1,), generator=gen)) for n in
                   (num_nodes, num_rel, num_nodes))
        triples.add((f"e{h:02d}", f"R{r}", f"e{t:02d}"))
    return KGData.from_triples(sorted(triples), uids=[f"e{i:02d}" for i in range(num_nodes)])


@pytest.mark.parametrize("decoder", ["distmult", "complex", "rotate"])
@pytest.mark.parametrize(("layers", "layer"), [(0, "rgcn"), (2, "rgcn"), (2, "compgcn")])
def test_shapes(decoder: str, layers: int, layer: str) -> None:
    data = random_graph()
    model = KGEncoder(data.num_nodes, data.num_relations, 8, decoder=decoder, num_layers=layers,
                      num_bases=2 if layers and layer == "rgcn" else None, layer=layer)
    ei, et = KGEncoder.message_graph(data.edge_index, data.edge_type, data.num_relations)
    x = model.encode(ei, et)
    assert x.shape == (20, 8)
    heads, rels = torch.tensor([0, 1, 2]), torch.tensor([0, 4, 5])  # 4, 5: inverse relations
    assert model.score_tails(x, heads, rels).shape == (3, 20)
    assert model.score_triples(x, heads, rels, torch.tensor([3, 4, 5])).shape == (3,)
    assert model.relation_embeddings().shape == (3, 8)
    loss = model(data.triples()[:5], None, ei, et, n3=0.1)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert model.entity.weight.grad is not None


def naive_scores(decoder: str, h: torch.Tensor, r: torch.Tensor, e: torch.Tensor,
                 gamma: float) -> torch.Tensor:
    """One (query, entity) pair at a time, with torch complex numbers."""
    out = torch.zeros(h.shape[0], e.shape[0], dtype=torch.float64)
    k = h.shape[1] // 2
    for b in range(h.shape[0]):
        for n in range(e.shape[0]):
            if decoder == "distmult":
                out[b, n] = (h[b] * r[b] * e[n]).sum()
                continue
            hc = torch.complex(h[b, :k].double(), h[b, k:].double())
            tc = torch.complex(e[n, :k].double(), e[n, k:].double())
            if decoder == "complex":
                rc = torch.complex(r[b, :k].double(), r[b, k:].double())
                out[b, n] = (hc * rc * tc.conj()).sum().real
            else:
                rc = torch.exp(1j * math.pi * r[b].double())
                out[b, n] = gamma - (hc * rc - tc).abs().sum()
    return out


@pytest.mark.parametrize("decoder", [DistMult(), ComplEx(), RotatE(gamma=3.0, chunk=7)])
def test_fast_scores_match_naive_reference(decoder: DistMult | ComplEx | RotatE) -> None:
    gen = torch.Generator().manual_seed(1)
    dim = 10
    h = torch.randn(4, dim, generator=gen, dtype=torch.float64)
    r = torch.randn(4, decoder.relation_dim(dim), generator=gen, dtype=torch.float64)
    e = torch.randn(17, dim, generator=gen, dtype=torch.float64)
    name = type(decoder).__name__.lower()
    expected = naive_scores(name, h, r, e, 3.0)
    fast = decoder.score_all(h, r, e)
    assert torch.allclose(fast, expected, atol=1e-6)
    # matched-row scoring agrees with the 1-N path
    tails = torch.tensor([0, 5, 9, 16])
    assert torch.allclose(decoder.score(h, r, e[tails]), expected[torch.arange(4), tails],
                          atol=1e-6)


@pytest.mark.parametrize("overrides", [
    {"decoder": "complex"},
    {"decoder": "distmult"},
    {"decoder": "rotate", "loss": "negative", "optimizer": "adam", "lr": 0.05, "n3": 0.0},
    {"decoder": "complex", "num_layers": 1, "num_bases": 2, "optimizer": "adam", "lr": 0.02},
    {"decoder": "complex", "num_layers": 1, "layer": "compgcn", "optimizer": "adam", "lr": 0.02},
    {"decoder": "complex", "loss": "negative", "shared_negatives": True, "num_negatives": 10,
     "optimizer": "adam", "lr": 0.05, "n3": 0.0},
])
def test_training_fits_the_graph(overrides: dict[str, object]) -> None:
    data = random_graph()
    config = EncoderConfig(dim=32, epochs=60, batch_size=32, valid_fraction=0.0,
                           test_fraction=0.0, init_scale=0.1, **overrides)  # type: ignore[arg-type]
    triples = data.triples()
    splits = Splits(triples, triples[:0], triples[:0])
    untrained = KGEncoder(20, 3, 32, decoder=str(config.decoder), num_layers=config.num_layers,
                          num_bases=config.num_bases, layer=config.layer)
    known = FilterIndex(triples, 3)
    graph = None
    if config.num_layers:
        ei, et = KGEncoder.message_graph(data.edge_index, data.edge_type, 3)
        graph = (ei, et)
    before = evaluate_model(untrained, triples, known, graph)["both"].mrr
    result = train_encoder(data, config, splits=splits)
    after = evaluate_model(result.model, triples, known, result.graph)["both"].mrr
    assert before < 0.5
    assert after > 0.9, (before, after)
    assert len(result.history) == 60


def test_reciprocals_double_the_queries() -> None:
    triples = torch.tensor([[0, 1, 2], [3, 0, 4]])
    both = with_reciprocals(triples, 2)
    assert both.tolist() == [[0, 1, 2], [3, 0, 4], [2, 3, 0], [4, 2, 3]]


def test_early_stopping_keeps_the_best_validation_model() -> None:
    data = random_graph(num_edges=80)
    config = EncoderConfig(dim=16, epochs=200, eval_every=1, patience=2, batch_size=32,
                           valid_fraction=0.2, test_fraction=0.1)
    result = train_encoder(data, config)
    assert len(result.history) < 200  # random edges cannot be generalised: it stops early
    best = max(i["valid_mrr"] for i in result.history if "valid_mrr" in i)
    assert result.valid["both"].mrr == pytest.approx(best)
    assert result.test["both"].count == 2 * result.splits.test.shape[0]


def test_a_wall_clock_budget_stops_training_and_keeps_an_evaluated_model() -> None:
    data = random_graph(num_nodes=200, num_edges=2000)
    # one row per batch and an unreachable epoch count: only the budget can stop it
    config = EncoderConfig(dim=16, epochs=100_000, eval_every=1000, patience=1000, batch_size=1,
                           valid_fraction=0.1, test_fraction=0.1, max_seconds=0.5)
    started = time.perf_counter()
    result = train_encoder(data, config)
    assert time.perf_counter() - started < 10
    assert len(result.history) == 1  # stopped inside the first epoch (3,600 batches)
    assert result.history[0]["valid_mrr"] is not None  # evaluated where it stopped
    assert result.valid["both"].mrr == pytest.approx(result.history[0]["valid_mrr"])
    assert result.test["both"].count == 2 * result.splits.test.shape[0]


@pytest.mark.parametrize("layer", ["rgcn", "compgcn"])
def test_checkpoint_round_trip(tmp_path: Path, layer: str) -> None:
    data = random_graph()
    data.entity_types = ["T"] * data.num_nodes
    config = EncoderConfig(dim=8, epochs=3, num_layers=1, layer=layer,  # type: ignore[arg-type]
                           num_blocks=2 if layer == "rgcn" else None, valid_fraction=0.0,
                           test_fraction=0.0, batch_size=16)
    result = train_encoder(data, config)
    save_checkpoint(tmp_path, result.model, config, data, result.graph, {"note": 1})
    bundle = load_checkpoint(tmp_path, "d", "v1")
    assert bundle.version == "v1" and bundle.config == config
    assert bundle.uids == data.uids and bundle.relation_types == data.relation_types
    assert bundle.metrics == {"note": 1}
    assert bundle.model is not None
    for key, value in result.model.state_dict().items():
        assert torch.equal(bundle.model.state_dict()[key], value)
    x = result.model.encode(*result.graph)  # type: ignore[misc]
    assert torch.allclose(bundle.entity_embeddings, x)
    heads, rels = torch.tensor([0, 3]), torch.tensor([1, 4])
    assert torch.allclose(bundle.score_tails(heads, rels), result.model.score_tails(x, heads, rels))
    assert bundle.relation_embeddings.shape == (3, 8)


def test_neighbor_sampler_returns_real_edges_within_fanout() -> None:
    data = random_graph(num_nodes=30, num_edges=120)
    ei, et = KGEncoder.message_graph(data.edge_index, data.edge_type, data.num_relations)
    sampler = NeighborSampler(ei, et, 30, [3, 2])
    seeds = torch.tensor([0, 5, 7, 5])
    n_id, local, rel = sampler.sample(seeds, torch.Generator().manual_seed(0))
    assert torch.equal(n_id, n_id.unique()) and set(seeds.tolist()) <= set(n_id.tolist())
    edges = set(zip(ei[0].tolist(), et.tolist(), ei[1].tolist(), strict=True))
    sampled = list(zip(n_id[local[0]].tolist(), rel.tolist(), n_id[local[1]].tolist(),
                       strict=True))
    assert sampled and all(e in edges for e in sampled)
    first_hop = [d for _, _, d in sampled[: 3 * 3]]
    assert all(first_hop.count(s) <= 3 for s in (0, 5, 7))


def test_neighbor_sampled_rgcn_training_fits_the_graph() -> None:
    data = random_graph()
    config = EncoderConfig(dim=32, epochs=60, batch_size=32, valid_fraction=0.0,
                           test_fraction=0.0, init_scale=0.1, num_layers=1, num_bases=2,
                           loss="negative", num_negatives=16, neighbor_sampling=True,
                           fanouts=[5], optimizer="adam", lr=0.02, n3=0.0)
    triples = data.triples()
    result = train_encoder(data, config, splits=Splits(triples, triples[:0], triples[:0]))
    known = FilterIndex(triples, 3)
    assert evaluate_model(result.model, triples, known, result.graph)["both"].mrr > 0.8
    with pytest.raises(ValueError):
        EncoderConfig(neighbor_sampling=True, loss="1n")


def test_default_config_depends_on_the_graph_size() -> None:
    small = EncoderConfig.for_graph(135, 5_000)
    assert small.loss == "1n" and small == EncoderConfig()
    big = EncoderConfig.for_graph(37_000, 550_000, epochs=3)
    assert big.loss == "negative" and big.shared_negatives and big.epochs == 3
    with pytest.raises(ValueError):
        EncoderConfig.for_graph(10, 10, dim=15)


def test_a_diverged_run_fails_with_a_clear_error() -> None:
    data = random_graph(num_edges=80)
    # Adagrad steps are about lr in size: 1e30 overflows the ComplEx scores at once
    config = EncoderConfig(dim=8, epochs=5, eval_every=1, batch_size=32, lr=1e30,
                           valid_fraction=0.2, test_fraction=0.1)
    with pytest.raises(TrainingDivergedError, match="diverged"):
        train_encoder(data, config)


def test_early_stopping_never_keeps_a_diverged_model() -> None:
    data = random_graph(num_edges=80)
    config = EncoderConfig(dim=16, epochs=50, eval_every=1, patience=50, batch_size=32,
                           valid_fraction=0.2, test_fraction=0.1)
    splits = split_triples(data.triples(), 0.2, 0.1, 0)
    model = build_model(config, data.num_nodes, data.num_relations)

    def poison(epoch: int, total: int, info: dict[str, object]) -> None:
        if epoch == 2:  # after epoch 2's evaluation: epoch 3 trains on NaN weights
            with torch.no_grad():
                model.entity.weight[0] = float("nan")

    result = fit(model, splits, config, FilterIndex(splits.all(), data.num_relations), poison)
    assert len(result.history) == 3 and result.history[-1].get("diverged") is True
    assert "valid_mrr" not in result.history[-1]
    assert result.best_epoch in (1, 2)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    kept = evaluate_model(model, splits.valid, FilterIndex(splits.all(), data.num_relations),
                          None)["both"].mrr
    assert kept == pytest.approx(result.valid["both"].mrr) and kept < 1.0


def test_the_training_history_is_stored_with_the_version(tmp_path: Path) -> None:
    from core.settings import Settings
    from fusion.serve.versions import list_versions
    from graph.encoder.checkpoint import encoder_artifacts

    data = random_graph(num_edges=80)
    config = EncoderConfig(dim=8, epochs=4, eval_every=2, batch_size=32, valid_fraction=0.2,
                           test_fraction=0.1)
    result = train_encoder(data, config)
    settings = Settings(home=tmp_path)
    store = encoder_artifacts(settings)
    staging = store.staging_dir("d", "v20260101-000000-000000")
    save_checkpoint(staging, result.model, config, data, result.graph, result.summary())
    store.publish("d", "v20260101-000000-000000", staging)

    [info] = list_versions(settings, None, "encoder", "d")
    assert info.history is not None and [e.epoch for e in info.history] == [1, 2, 3, 4]
    assert [e.valid_mrr is not None for e in info.history] == [False, True, False, True]
    assert info.history[1].valid_mrr == pytest.approx(result.history[1]["valid_mrr"], abs=1e-6)
    assert all(e.loss is not None and e.loss > 0 and e.seconds is not None and e.seconds > 0
               for e in info.history)
    assert info.best_epoch == result.best_epoch in (2, 4)
    assert load_checkpoint(store.path("d", info.version)).metrics["history"][0]["epoch"] == 1


def test_layer_reset_parameters_redraws_like_a_fresh_layer() -> None:
    torch.manual_seed(0)
    fresh = ResidualRGCNConv(8, 4, num_bases=2)
    torch.manual_seed(5)
    layer = ResidualRGCNConv(8, 4, num_bases=2)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    torch.manual_seed(0)
    layer.reset_parameters()
    for key, value in layer.state_dict().items():
        assert not torch.equal(value, before[key]), key
        assert torch.equal(value, fresh.state_dict()[key]), key
    assert float(layer.bias.abs().sum()) == 0.0  # a small residual update: no bias at first


@pytest.mark.parametrize("decoder", ["distmult", "complex", "rotate"])
@pytest.mark.parametrize(("layers", "layer"), [(0, "rgcn"), (2, "rgcn"), (2, "compgcn")])
def test_encoder_reset_parameters_redraws_like_a_fresh_model(decoder: str, layers: int,
                                                              layer: str) -> None:
    data = random_graph()
    kwargs = {"decoder": decoder, "num_layers": layers, "layer": layer, "init_scale": 0.1,
              "num_blocks": 2 if layers and layer == "rgcn" else None}
    torch.manual_seed(3)
    fresh = KGEncoder(data.num_nodes, data.num_relations, 8, **kwargs)  # type: ignore[arg-type]
    torch.manual_seed(7)
    model = KGEncoder(data.num_nodes, data.num_relations, 8, **kwargs)  # type: ignore[arg-type]
    ei, et = KGEncoder.message_graph(data.edge_index, data.edge_type, data.num_relations)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(2):  # training moves every weight, the layers' biases included
        optimizer.zero_grad()
        model(data.triples(), None, ei, et).backward()
        optimizer.step()
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    model.reset_parameters()
    state = model.state_dict()
    # the checkpoint names of the layers' weights are the ones earlier versions saved
    names = ("weight", "root", "bias") if layer == "rgcn" else ("lin.weight", "lin.bias")
    expected = {"entity.weight", "relation.weight"} | {
        f"convs.{i}.{name}" for i in range(layers) for name in names}
    assert set(state) == expected
    for key, value in state.items():
        assert not torch.equal(value, trained[key]), key
        assert torch.equal(value, fresh.state_dict()[key]), key
    assert model.decoder.reset_parameters() is None and not list(model.decoder.parameters())
