"""``train_domain``: export a domain from Neo4j, train, save a versioned checkpoint, write the
embeddings back and switch the served version (artifact ACTIVE pointer + Neo4j slot flip)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from neo4j import Driver

from core.errors import InvalidInputError
from core.settings import Settings
from graph.encoder.checkpoint import encoder_artifacts, load_checkpoint, save_checkpoint
from graph.encoder.config import EncoderConfig
from graph.encoder.data import KGData, export_domains
from graph.encoder.evaluate import FilterIndex
from graph.encoder.serve import write_embeddings
from graph.encoder.train import (
    TrainResult,
    build_model,
    evaluate_model,
    message_graph_for,
    split_triples,
    train_encoder,
)
from graph.lock import ModelLock

# progress(fraction 0..1, message); the signature of api.jobs' progress callback.
Progress = Callable[[float, str], None]


def train_domain(
    settings: Settings, driver: Driver, domain: str, config: EncoderConfig | None = None,
    progress: Progress | None = None, write_back: bool = True,
    epoch_callback: Callable[[int, int, dict[str, Any]], None] | None = None,
    processes: int = 1, overrides: dict[str, Any] | None = None,
) -> str:
    """Train an encoder for ``domain`` and make it the served version; returns the version.

    Raises ``NotFoundError`` for a domain without entities. Nothing is switched unless every
    step succeeded: a failed run leaves the previous version served. Without a ``config``,
    ``EncoderConfig.for_graph`` picks one for the exported graph's size, updated with
    ``overrides``. ``processes > 1`` trains with DDP in that many local processes (gloo on
    CPU, NCCL on GPUs; no per-epoch progress then). Holds the domain's encoder ``ModelLock``
    throughout: a second training or an activation elsewhere gets ``ModelBusyError``."""
    with ModelLock(driver, settings.neo4j_database, "encoder", domain) as lock:
        return _train_locked(settings, driver, domain, config, progress, write_back,
                             epoch_callback, processes, overrides, lock)


def _train_locked(
    settings: Settings, driver: Driver, domain: str, config: EncoderConfig | None,
    progress: Progress | None, write_back: bool,
    epoch_callback: Callable[[int, int, dict[str, Any]], None] | None,
    processes: int, overrides: dict[str, Any] | None, lock: ModelLock,
) -> str:

    def report(fraction: float, message: str) -> None:
        if progress:
            progress(fraction, message)

    report(0.0, "exporting the graph")
    data = export_domains(driver, settings.neo4j_database, [domain], settings.batch_size)
    report(0.05, f"exported {data.num_nodes} entities, {data.num_edges} relationships")
    if config is None:
        try:
            config = EncoderConfig.for_graph(data.num_nodes, data.num_edges, **(overrides or {}))
        except ValueError as exc:
            raise InvalidInputError(f"invalid encoder configuration: {exc}") from exc

    def on_epoch(epoch: int, total: int, info: dict[str, Any]) -> None:
        mrr = f", valid MRR {info['valid_mrr']:.3f}" if "valid_mrr" in info else ""
        report(0.05 + 0.8 * epoch / total, f"epoch {epoch}/{total}, loss {info['loss']:.4f}{mrr}")
        if epoch_callback:
            epoch_callback(epoch, total, info)

    if processes > 1:
        result = train_encoder_ddp(data, config, processes)
    else:
        result = train_encoder(data, config, progress=on_epoch)
    artifacts = encoder_artifacts(settings)
    version = artifacts.new_version_name()
    staging = artifacts.staging_dir(domain, version)
    try:
        save_checkpoint(staging, result.model, config, data, result.graph, result.summary())
        final = artifacts.publish(domain, version, staging, activate=False)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report(0.88, "checkpoint saved")
    if write_back:  # fenced: the embedding slot and the pointer are this run's to write
        bundle = load_checkpoint(final, domain, version)

        def on_write(done: int, total: int) -> None:
            report(0.88 + 0.1 * done / max(total, 1), f"wrote {done}/{total} embeddings")

        write_embeddings(driver, settings.neo4j_database, domain, version, bundle.uids,
                         bundle.entity_embeddings, progress=on_write, fence=lock)
    with lock.fenced():
        artifacts.activate(domain, version)
    report(1.0, f"version {version} active")
    return version


def train_encoder_ddp(data: KGData, config: EncoderConfig, processes: int) -> TrainResult:
    """``train_encoder`` with DDP across ``processes`` local processes."""
    import time

    from graph.encoder.ddp import train_ddp

    started = time.perf_counter()
    splits = split_triples(data.triples(), config.valid_fraction, config.test_fraction,
                           config.seed)
    history: list[dict[str, Any]] = []
    state = train_ddp(splits, data.num_nodes, data.num_relations, config, world_size=processes,
                      history=history)
    model = build_model(config, data.num_nodes, data.num_relations)
    model.load_state_dict(state)
    graph = message_graph_for(model, splits.train, next(model.parameters()).device)
    result = TrainResult(model=model, config=config, splits=splits, graph=graph,
                         history=history)
    evaluated = [info for info in history if info.get("valid_mrr") is not None]
    result.best_epoch = (max(evaluated, key=lambda info: info["valid_mrr"])["epoch"]
                         if evaluated else len(history))
    known = FilterIndex(splits.all(), data.num_relations)
    if splits.valid.numel():
        result.valid = evaluate_model(model, splits.valid, known, graph, config.eval_batch_size)
    if splits.test.numel():
        result.test = evaluate_model(model, splits.test, known, graph, config.eval_batch_size)
    result.wall_s = time.perf_counter() - started
    return result
