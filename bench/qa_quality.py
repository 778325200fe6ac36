"""QA quality table: per domain and hop count; zero-shot, few-shot and fine-tuned; with and
without graph embeddings (same data, side by side).

Questions are generated from the domain graph; the evaluation questions use held-out phrasings
and frames and no (topic, path) of the training set. Runs against the configured server
(``KGR_HOME`` / ``NEO4J_URI``); trains a small encoder first when none is active.

    .venv/bin/python bench/qa_quality.py --domains medical finance
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from fusion.evaluate import evaluate_rows  # noqa: E402
from fusion.graphdata import DomainGraph  # noqa: E402
from fusion.linking import AliasIndex  # noqa: E402
from fusion.pipeline import DomainQA  # noqa: E402
from fusion.questions import generate_splits  # noqa: E402
from fusion.retrieval import Neo4jExpander  # noqa: E402
from fusion.space import load_graph_features  # noqa: E402
from fusion.train import TrainConfig, load_checkpoint, qa_artifacts, train_domain  # noqa: E402
from graph.artifacts import ArtifactStore  # noqa: E402
from graph.driver import make_driver  # noqa: E402
from graph.settings import get_settings  # noqa: E402
from graph.store import GraphStore  # noqa: E402


def ensure_encoder(settings: Any, driver: Any, domain: str, epochs: int, dim: int) -> str:
    active = ArtifactStore(settings.artifacts_dir, "encoder").active_version(domain)
    if active:
        return active
    from graph.encoder import EncoderConfig
    from graph.encoder import train_domain as train_encoder_domain

    started = time.perf_counter()
    # a small, CPU-friendly encoder (sampled negatives); `kgr up` may train a bigger one
    config = EncoderConfig(dim=dim, epochs=epochs, eval_every=epochs, loss="negative",
                           num_negatives=32, lr=0.05, batch_size=1024, max_eval_triples=500,
                           device="cpu", amp=False)
    version = train_encoder_domain(settings, driver, domain, config, write_back=False)
    print(f"[{domain}] trained encoder {version} in {time.perf_counter() - started:.0f}s",
          flush=True)
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", nargs="+", default=["medical", "finance"])
    parser.add_argument("--train-per-hop", type=int, default=600)
    parser.add_argument("--eval-per-hop", type=int, default=100)
    parser.add_argument("--few-shot", type=int, default=50, help="labelled examples (few-shot)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--encoder-epochs", type=int, default=10)
    parser.add_argument("--encoder-dim", type=int, default=64)
    parser.add_argument("--no-encoder-training", dest="train_encoder", action="store_false",
                        help="use the active encoder if any; never train one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/qa_quality.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = get_settings()
    driver = make_driver(settings)
    store = GraphStore(driver, settings.neo4j_database)
    expander = Neo4jExpander(driver, settings.neo4j_database)
    report: dict[str, Any] = {}
    table = []
    for domain in args.domains:
        started = time.perf_counter()
        graph = DomainGraph.load(driver, settings.neo4j_database, domain)
        train_rows, eval_rows = generate_splits(graph, args.train_per_hop, args.eval_per_hop,
                                                args.seed)
        print(f"[{domain}] {len(graph.names)} entities; {len(train_rows)} training and "
              f"{len(eval_rows)} evaluation questions ({time.perf_counter() - started:.0f}s)",
              flush=True)
        if args.train_encoder:
            ensure_encoder(settings, driver, domain, args.encoder_epochs, args.encoder_dim)
        features = load_graph_features(settings, domain)
        index = AliasIndex.load(driver, settings.neo4j_database, domain)
        runs: dict[str, Any] = {}

        def evaluate(label: str, version: str | None, mode: str, use_graph: bool,
                     domain: str = domain, index: AliasIndex = index, features: Any = features,
                     eval_rows: list[dict[str, Any]] = eval_rows,
                     runs: dict[str, Any] = runs) -> None:
            checkpoint = None
            if version is not None:
                checkpoint = load_checkpoint(qa_artifacts(settings).path(domain, version))
            qa = DomainQA(settings, store, domain, expander, index, checkpoint, features)
            result = evaluate_rows(qa, eval_rows, mode, use_graph)  # type: ignore[arg-type]
            runs[label] = result
            for hops, m in result["metrics"].items():
                table.append((domain, label, hops, m["n"], m["hits@1"], m["hits@5"], m["mrr"]))
            print(f"[{domain}] {label}: {json.dumps(result['metrics'])} "
                  f"({result['ms_per_question']} ms/question)", flush=True)

        evaluate("zero-shot", None, "zero-shot", False)
        for label, rows in (("few-shot", train_rows[::max(1, len(train_rows) // args.few_shot)]
                             [:args.few_shot]), ("fine-tuned", train_rows)):
            t0 = time.perf_counter()
            result = train_domain(settings, driver, domain, rows,
                                  TrainConfig(epochs=args.epochs, seed=args.seed), graph=graph,
                                  activate=label == "fine-tuned")
            seconds = time.perf_counter() - t0
            print(f"[{domain}] {label}: trained {result['version']} on {result['examples']} "
                  f"examples in {seconds:.0f}s", flush=True)
            runs[f"{label} training"] = {"seconds": round(seconds, 1), **{
                k: v for k, v in result.items() if k not in ("graph", "text")}}
            if features is not None:
                evaluate(f"{label} + graph emb.", result["version"], "fine-tuned", True)
            evaluate(f"{label} text only", result["version"], "fine-tuned", False)
        report[domain] = runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print(f"{'domain':<9} {'model':<26} {'hops':<4} {'n':>4} {'Hits@1':>7} {'Hits@5':>7} "
          f"{'MRR':>6}")
    for domain, label, hops, n, h1, h5, mrr in table:
        print(f"{domain:<9} {label:<26} {hops:<4} {n:>4} {h1:>7.3f} {h5:>7.3f} {mrr:>6.3f}")
    driver.close()


if __name__ == "__main__":
    main()
