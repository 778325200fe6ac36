"""Training: splits, the epoch loop (also used by every DDP rank), early stopping on validation
MRR, and ``train_encoder`` / ``train_domain``."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from core.errors import TrainingDivergedError
from graph.encoder.config import EncoderConfig
from graph.encoder.data import KGData
from graph.encoder.evaluate import FilterIndex, Metrics, evaluate
from graph.encoder.model import KGEncoder, NeighborSampler

# progress(epoch, total_epochs, info) after each epoch; info has loss and, when evaluated, mrr.
EpochProgress = Callable[[int, int, dict[str, Any]], None]


@dataclass
class Splits:
    """``[T, 3]`` (h, r, t) triples of each split (forward relations only)."""

    train: Tensor
    valid: Tensor
    test: Tensor

    def all(self) -> Tensor:
        return torch.cat([self.train, self.valid, self.test])


def split_triples(triples: Tensor, valid_fraction: float, test_fraction: float, seed: int
                  ) -> Splits:
    """A seeded random split; held-out triples whose head or tail would not appear in the
    training split are moved back to it (an embedding model cannot rank unseen entities)."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(triples.shape[0], generator=gen)
    n_valid = int(round(triples.shape[0] * valid_fraction))
    n_test = int(round(triples.shape[0] * test_fraction))
    test = triples[perm[:n_test]]
    valid = triples[perm[n_test:n_test + n_valid]]
    train = triples[perm[n_test + n_valid:]]
    seen = torch.zeros(int(triples[:, [0, 2]].max()) + 1 if triples.numel() else 0,
                       dtype=torch.bool)
    seen[train[:, 0]] = True
    seen[train[:, 2]] = True
    kept = []
    for held in (valid, test):
        ok = seen[held[:, 0]] & seen[held[:, 2]]
        train = torch.cat([train, held[~ok]])
        kept.append(held[ok])
    return Splits(train=train, valid=kept[0], test=kept[1])


def with_reciprocals(triples: Tensor, num_relations: int) -> Tensor:
    """``[T, 3] -> [2T, 3]``: each (h, r, t) plus (t, r + R, h)."""
    inverse = torch.stack([triples[:, 2], triples[:, 1] + num_relations, triples[:, 0]], 1)
    return torch.cat([triples, inverse])


def build_model(config: EncoderConfig, num_nodes: int, num_relations: int) -> KGEncoder:
    torch.manual_seed(config.seed)
    return KGEncoder(
        num_nodes, num_relations, config.dim, decoder=config.decoder,
        num_layers=config.num_layers, num_bases=config.num_bases, num_blocks=config.num_blocks,
        dropout=config.dropout, gamma=config.gamma, init_scale=config.init_scale,
        layer=config.layer,
    )


def make_optimizer(model: nn.Module, config: EncoderConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(model.parameters(), lr=config.lr)
    return torch.optim.Adam(model.parameters(), lr=config.lr)


def train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, queries: Tensor, config: EncoderConfig,
    epoch: int, num_nodes: int, graph: tuple[Tensor, Tensor] | None = None,
    rank: int = 0, world_size: int = 1, deadline: float | None = None,
) -> float:
    """One pass over ``queries: [Q, 3]`` (reciprocals included) in global batches of
    ``config.batch_size``; rank ``k`` of ``world_size`` takes rows ``k::world_size`` of each
    batch. The shuffle and negatives depend only on (seed, epoch), so every rank agrees, and the
    summed loss is scaled so that averaged DDP gradients equal the 1-process gradient.
    Returns the mean loss per query row (of this rank's rows). With ``deadline`` (a
    ``time.perf_counter()`` value) the pass stops at the first batch that ends past it."""
    device = queries.device
    gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    perm = torch.randperm(queries.shape[0], generator=gen).to(device)
    edge_index, edge_type = graph if graph is not None else (None, None)
    sampler, sample_gen = None, None
    if config.neighbor_sampling and edge_index is not None and edge_type is not None:
        sampler = NeighborSampler(edge_index.cpu(), edge_type.cpu(), num_nodes,
                                  config.fanouts)
        # its own stream: ranks sample different neighbourhoods but share perm and negatives
        sample_gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch * 1009 + rank)
    use_amp = config.amp and device.type == "cuda"
    total, rows = 0.0, 0
    model.train()
    for start in range(0, perm.numel(), config.batch_size):
        global_idx = perm[start:start + config.batch_size]
        global_size = global_idx.numel()
        negatives = None
        if config.loss == "negative":
            if config.shared_negatives:
                negatives = torch.randint(0, num_nodes, (config.num_negatives,),
                                          generator=gen).to(device)
            else:
                negatives = torch.randint(0, num_nodes, (global_size, config.num_negatives),
                                          generator=gen).to(device)
                negatives = negatives[rank::world_size]
        local = queries[global_idx[rank::world_size]]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss_sum = model(local, negatives, edge_index, edge_type,
                             label_smoothing=config.label_smoothing, n3=config.n3,
                             adversarial_temperature=config.adversarial_temperature,
                             sampler=sampler, generator=sample_gen)
        (loss_sum * (world_size / global_size)).backward()
        optimizer.step()
        total += float(loss_sum.detach())
        rows += local.shape[0]
        if deadline is not None and time.perf_counter() >= deadline:
            break
    return total / max(rows, 1)


@torch.no_grad()
def evaluate_model(model: KGEncoder, triples: Tensor, known: FilterIndex,
                   graph: tuple[Tensor, Tensor] | None, batch_size: int = 512
                   ) -> dict[str, Metrics]:
    """Filtered head and tail metrics of ``triples: [T, 3]`` (forward relations)."""
    model.eval()
    edge_index, edge_type = graph if graph is not None else (None, None)
    x = model.encode(edge_index, edge_type)
    device = x.device
    num_rel = model.num_relations

    def tails(h: Tensor, r: Tensor) -> Tensor:
        return model.score_tails(x, h.to(device), r.to(device))

    def heads(r: Tensor, t: Tensor) -> Tensor:
        return model.score_tails(x, t.to(device), r.to(device) + num_rel)

    return evaluate(tails, heads, triples.cpu(), known, batch_size)


@dataclass
class TrainResult:
    """A trained model and what happened while training it."""

    model: KGEncoder
    config: EncoderConfig
    splits: Splits
    graph: tuple[Tensor, Tensor] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    valid: dict[str, Metrics] = field(default_factory=dict)
    test: dict[str, Metrics] = field(default_factory=dict)
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.history),
            "wall_s": round(self.wall_s, 3),
            "valid": {k: v.as_dict() for k, v in self.valid.items()},
            "test": {k: v.as_dict() for k, v in self.test.items()},
            "num_train": int(self.splits.train.shape[0]),
            "num_valid": int(self.splits.valid.shape[0]),
            "num_test": int(self.splits.test.shape[0]),
            "history": history_records(self.history),
        }


def _finite_or_none(value: Any, digits: int) -> float | None:
    # NaN and inf are not JSON: a diverged epoch's loss is stored (and served) as null
    if value is None or not math.isfinite(float(value)):
        return None
    return round(float(value), digits)


def history_records(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-epoch history as JSON-safe rows: ``epoch``, ``loss`` (mean per query),
    ``valid_mrr`` (null when not evaluated), ``seconds`` (training plus validation) and, for
    the epoch training stopped at, ``diverged``."""
    rows = []
    for info in history:
        row: dict[str, Any] = {
            "epoch": int(info["epoch"]),
            "loss": _finite_or_none(info.get("loss"), 6),
            "valid_mrr": _finite_or_none(info.get("valid_mrr"), 6),
            "seconds": _finite_or_none(info.get("seconds"), 3),
        }
        if info.get("diverged"):
            row["diverged"] = True
        rows.append(row)
    return rows


def weights_finite(model: nn.Module) -> bool:
    """No parameter holds NaN or +-inf."""
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def message_graph_for(model: KGEncoder, train: Tensor, device: torch.device
                      ) -> tuple[Tensor, Tensor] | None:
    """The (reciprocal) message-passing graph of the training triples, if the model uses one."""
    if not len(model.convs):
        return None
    edge_index = torch.stack([train[:, 0], train[:, 2]])
    ei, et = KGEncoder.message_graph(edge_index, train[:, 1], model.num_relations)
    return ei.to(device), et.to(device)


def fit(
    model: KGEncoder, splits: Splits, config: EncoderConfig, known: FilterIndex,
    progress: EpochProgress | None = None, rank: int = 0, world_size: int = 1,
    ddp_model: nn.Module | None = None, device: torch.device | None = None,
) -> TrainResult:
    """Train ``model`` in place with early stopping on validation MRR; the best state is kept."""
    started = time.perf_counter()
    device = device or config.resolved_device()
    model.to(device)
    graph = message_graph_for(model, splits.train, device)
    queries = with_reciprocals(splits.train, model.num_relations).to(device)
    optimizer = make_optimizer(ddp_model or model, config)
    valid = splits.valid
    if config.max_eval_triples is not None and valid.shape[0] > config.max_eval_triples:
        valid = valid[:config.max_eval_triples]
    result = TrainResult(model=model, config=config, splits=splits, graph=graph)
    best_mrr, best_state, bad = -1.0, None, 0
    diverged: TrainingDivergedError | None = None
    # the budget counts from the start of fit, so it covers validation too; DDP ranks would
    # stop at different batches and hang in the gradient all-reduce, so they ignore it
    deadline = (started + config.max_seconds
                if config.max_seconds is not None and world_size == 1 else None)
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        loss = train_epoch(ddp_model or model, optimizer, queries, config, epoch,
                           model.num_nodes, graph, rank, world_size, deadline)
        info: dict[str, Any] = {"epoch": epoch, "loss": loss}
        out_of_time = deadline is not None and time.perf_counter() >= deadline
        last = epoch == config.epochs or out_of_time
        # the weights, not this rank's loss: DDP keeps them equal, so every rank stops together
        if not weights_finite(model):
            diverged = TrainingDivergedError(
                f"training diverged in epoch {epoch}: the weights hold NaN or infinite values "
                f"(loss {loss}); try a lower learning rate, or amp=false")
        elif valid.numel() and (epoch % config.eval_every == 0 or last):
            try:
                metrics = evaluate_model(model, valid, known, graph, config.eval_batch_size)
            except TrainingDivergedError as exc:
                diverged = exc
            else:
                info["valid_mrr"] = metrics["both"].mrr
                if metrics["both"].mrr > best_mrr:
                    best_mrr, bad = metrics["both"].mrr, 0
                    best_state = copy.deepcopy(model.state_dict())
                    result.best_epoch, result.valid = epoch, metrics
                else:
                    bad += 1
        if diverged is not None:
            info["diverged"] = True
        info["seconds"] = time.perf_counter() - epoch_started  # training and validation
        result.history.append(info)
        if progress:
            progress(epoch, config.epochs, info)
        if diverged is not None or bad >= config.patience or out_of_time:
            break
    if best_state is not None:  # the best finite model: a diverged one is never kept
        model.load_state_dict(best_state)
    elif diverged is not None:
        raise diverged
    else:
        result.best_epoch = len(result.history)
    result.wall_s = time.perf_counter() - started
    return result


def train_encoder(
    data: KGData, config: EncoderConfig | None = None, *, splits: Splits | None = None,
    progress: EpochProgress | None = None,
) -> TrainResult:
    """Split (unless ``splits`` is given), train with early stopping, evaluate on the test split.

    Test metrics are filtered against every known triple (all splits)."""
    config = config or EncoderConfig()
    if data.num_edges == 0 and splits is None:
        from core.errors import InvalidInputError

        raise InvalidInputError("the graph has no relationships to train on")
    if splits is None:
        splits = split_triples(data.triples(), config.valid_fraction, config.test_fraction,
                               config.seed)
    known = FilterIndex(splits.all(), data.num_relations)
    model = build_model(config, data.num_nodes, data.num_relations)
    result = fit(model, splits, config, known, progress)
    if splits.test.numel():
        result.test = evaluate_model(model, splits.test, known, result.graph,
                                     config.eval_batch_size)
    return result
