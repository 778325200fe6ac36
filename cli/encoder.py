"""Encoder commands: ``kgr train encoder``, ``kgr eval encoder`` and ``kgr embeddings ...``
(similar entities, link prediction).

torch and the encoder are imported inside the commands: importing them takes seconds, and
every other `kgr` command would pay for it.
"""

from __future__ import annotations

from typing import Any

import typer

from cli.common import console, handle_errors, open_driver, print_json, print_table, settings
from cli.groups import eval_app, train_app
from cli.progress import fraction_progress

app = typer.Typer(help="Entity embeddings: similar entities, link prediction.",
                  no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts")


def _metrics_rows(metrics: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for split in ("valid", "test"):
        for side in ("both", "head", "tail"):
            m = metrics.get(split, {}).get(side)
            if m:
                rows.append((split, side, f"{m['mrr']:.4f}", f"{m['hits_at_1']:.4f}",
                             f"{m['hits_at_3']:.4f}", f"{m['hits_at_10']:.4f}", str(m["count"])))
    return rows


@train_app.command("encoder")
@handle_errors
def train_encoder_cmd(
    domain: str = typer.Option(..., "--domain", "-d", help="Domain to train on"),
    epochs: int = typer.Option(None, "--epochs", help="Most epochs (early stopping may end it)"),
    dim: int = typer.Option(None, "--dim", help="Reals per entity embedding"),
    decoder: str = typer.Option(None, "--decoder", help="distmult, complex or rotate"),
    layers: int = typer.Option(None, "--layers", help="R-GCN message-passing layers"),
    loss: str = typer.Option(None, "--loss", help="1n (all entities) or negative (sampled)"),
    lr: float = typer.Option(None, "--lr"),
    batch_size: int = typer.Option(None, "--batch-size"),
    patience: int = typer.Option(None, "--patience", help="Evaluations without a better MRR"),
    eval_every: int = typer.Option(None, "--eval-every"),
    seed: int = typer.Option(None, "--seed"),
    processes: int = typer.Option(1, "--processes", help="DDP processes (gloo/NCCL)"),
    threads: int = typer.Option(0, "--threads", help="torch threads (0 = torch default)"),
    no_write_back: bool = typer.Option(False, "--no-write-back",
                                       help="Do not write the vectors to Neo4j"),
) -> None:
    """Train the encoder of a domain, save a versioned checkpoint and serve it."""
    import torch

    from usecases.train_encoder import EncoderOptions, EncoderTrainingRequest, train_encoder

    if threads:
        torch.set_num_threads(threads)
    request = EncoderTrainingRequest(EncoderOptions(
        epochs=epochs, dim=dim, decoder=decoder, num_layers=layers, loss=loss, lr=lr,
        batch_size=batch_size, patience=patience, eval_every=eval_every, seed=seed),
        processes=processes, write_back=not no_write_back)
    cfg = settings()
    with open_driver(cfg) as driver, fraction_progress(f"encoder {domain}") as progress:
        trained = train_encoder(cfg, driver, domain, request, progress)
    console.print(f"version [bold]{trained.version}[/] is active for {domain} "
                  f"({trained.entities} entities, {trained.relations} relations, "
                  f"best epoch {trained.metrics.get('best_epoch')})")
    print_table("metrics (filtered, realistic ranks)",
                ["split", "side", "MRR", "H@1", "H@3", "H@10", "n"],
                _metrics_rows(trained.metrics))


@eval_app.command("encoder")
@handle_errors
def eval_encoder_cmd(
    domain: str = typer.Option(..., "--domain", "-d"),
    recompute: bool = typer.Option(
        False, "--recompute",
        help="Re-export the graph, rebuild the training split (same seed) and re-rank its "
             "test triples with the active model"),
    json_out: bool = JSON_OPT,
) -> None:
    """Filtered link-prediction metrics of the active encoder of a domain."""
    from usecases.evaluate import evaluate_encoder

    cfg = settings()
    if recompute:
        with open_driver(cfg) as driver:
            result = evaluate_encoder(cfg, driver, domain, recompute=True)
    else:
        result = evaluate_encoder(cfg, None, domain)
    if json_out:
        print_json({"domain": domain, "version": result.version, "metrics": result.metrics})
        return
    console.print(f"domain {domain}: active version [bold]{result.version}[/] "
                  f"({result.versions_stored} version(s) stored)")
    print_table("metrics (filtered, realistic ranks)",
                ["split", "side", "MRR", "H@1", "H@3", "H@10", "n"],
                _metrics_rows(result.metrics))


@app.command("similar")
@handle_errors
def similar_cmd(
    uid: str = typer.Argument(..., help="Entity uid"),
    k: int = typer.Option(10, "--k", "-k"),
    type_: list[str] = typer.Option(None, "--type", "-t", help="Entity type label(s)"),
    domain: str = typer.Option(None, "--domain", "-d"),
    json_out: bool = JSON_OPT,
) -> None:
    """Entities whose embeddings are nearest to UID's (cosine)."""
    from graph.encoder.serve import similar_entities

    cfg = settings()
    with open_driver(cfg) as driver:
        if type_:
            from graph.schema import check_allowed, live_entity_types

            check_allowed(type_, live_entity_types(driver, cfg.neo4j_database), "entity type")
        version, hits = similar_entities(driver, cfg.neo4j_database, uid, k, type_ or None,
                                         domain)
    if json_out:
        print_json({"uid": uid, "version": version, "items": [h.__dict__ for h in hits]})
        return
    print_table(f"similar to {uid} (version {version})", ["uid", "name", "types", "score"],
                [(h.uid, h.name, ",".join(h.types), f"{h.score:.4f}") for h in hits])


@app.command("predict")
@handle_errors
def predict_cmd(
    relation: str = typer.Option(..., "--relation", "-r"),
    head: str = typer.Option(None, "--head", help="Predict tails of (HEAD, relation, ?)"),
    tail: str = typer.Option(None, "--tail", help="Predict heads of (?, relation, TAIL)"),
    k: int = typer.Option(10, "--k", "-k"),
    exclude_known: bool = typer.Option(False, "--exclude-known"),
    json_out: bool = JSON_OPT,
) -> None:
    """Link prediction with the active encoder; known facts are flagged."""
    from graph.encoder import load_active_encoder
    from graph.encoder.serve import entity_domain, predict_links

    if (head is None) == (tail is None):
        raise typer.BadParameter("give exactly one of --head and --tail")
    cfg = settings()
    anchor = head or tail
    with open_driver(cfg) as driver:
        domain = entity_domain(driver, cfg.neo4j_database, anchor)
        bundle = load_active_encoder(cfg, domain)
        hits = predict_links(driver, cfg.neo4j_database, bundle, relation, head=head, tail=tail,
                             k=k, exclude_known=exclude_known)
    if json_out:
        print_json({"head": head, "relation": relation, "tail": tail, "version": bundle.version,
                    "items": [h.__dict__ for h in hits]})
        return
    title = f"({head or '?'}, {relation}, {tail or '?'}) version {bundle.version}"
    print_table(title, ["uid", "name", "types", "score", "known"],
                [(h.uid, h.name, ",".join(h.types), f"{h.score:.4f}", "yes" if h.known else "")
                 for h in hits])
