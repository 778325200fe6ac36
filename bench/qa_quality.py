"""QA quality table: per domain and hop count; zero-shot, few-shot and fine-tuned; with and
without graph embeddings (same data, side by side).

Questions are generated from the domain graph; the evaluation questions use held-out phrasings
and frames and no (topic, path) of the training set. Models:

- zero-shot: no labels (text similarity of relation paths);
- fine-tuned: trained on the generated training questions (training wording only);
- few-shot: each fine-tuned model fine-tuned further on ``--few-shot`` labelled questions asked
  in the new (evaluation) wording, as a user's own file would be: question, answers and topic
  only (the gold path is inferred), none of whose (topic, path) is among the evaluation
  questions. It measures what tens of labels in a user's wording buy.

These models learn the training wording only (``TrainConfig(wording="train")``) and are not
activated: the models kgr serves (``kgr up``, ``kgr train qa``) learn every phrasing, the
held-out ones too, so on these questions they would be measured on wording they have seen.

Runs against the configured server (``KGR_HOME`` / ``NEO4J_URI``); trains a small encoder first
when none is active.

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

from bench.common import paired_by_hops, print_paired  # noqa: E402
from core.settings import get_settings  # noqa: E402
from fusion.language.linking import AliasIndex  # noqa: E402
from fusion.learn.evaluate import evaluate_rows  # noqa: E402
from fusion.learn.questions import generate_questions, generate_splits  # noqa: E402
from fusion.learn.train import train_domain  # noqa: E402
from fusion.model.config import TrainConfig  # noqa: E402
from fusion.model.graphdata import DomainGraph  # noqa: E402
from fusion.model.space import load_graph_features  # noqa: E402
from fusion.serve.checkpoint import load_checkpoint, qa_artifacts  # noqa: E402
from fusion.serve.pipeline import DomainQA  # noqa: E402
from fusion.serve.retrieval import Neo4jExpander  # noqa: E402
from graph.artifacts import ArtifactStore  # noqa: E402
from graph.driver import make_driver  # noqa: E402
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


def few_shot_rows(graph: DomainGraph, train_rows: list[dict[str, Any]],
                  eval_rows: list[dict[str, Any]], count: int,
                  seed: int) -> list[dict[str, Any]]:
    """``count`` labelled questions in the evaluation wording, with no (topic, path) of the
    training or evaluation questions, as a user's file: question, answers, topic entities."""
    used = {(t, tuple(tuple(s) for s in q["path"]), q["answer_type"])
            for q in train_rows + eval_rows for t in q["topic_entities"]}
    per_hop = {1: count - 2 * (count // 3), 2: count // 3, 3: count // 3}
    rows = generate_questions(graph, per_hop, "eval", seed + 2, exclude=used)
    return [{"question": r["question"], "answers": r["answers"],
             "topic_entities": r["topic_entities"]} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", nargs="+", default=["medical", "finance"])
    parser.add_argument("--train-per-hop", type=int, default=600)
    parser.add_argument("--eval-per-hop", type=int, default=100)
    parser.add_argument("--few-shot", type=int, default=50,
                        help="labelled questions in the evaluation wording (few-shot)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="most epochs (default: fusion.learn.train.TrainConfig.resolved)")
    parser.add_argument("--encoder-epochs", type=int, default=10)
    parser.add_argument("--encoder-dim", type=int, default=64)
    parser.add_argument("--no-encoder-training", dest="train_encoder", action="store_false",
                        help="use the active encoder if any; never train one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-seeds", type=int, default=1,
                        help="train each model this many times (seeds 0..N-1) and report the "
                        "mean: one run's 2-3-hop Hits@1 moves by a few points with the seed")
    parser.add_argument("--first-train-seed", type=int, default=None,
                        help="train with seeds N..N+train-seeds-1 (default: --seed), on the "
                        "same questions: more seeds for one data set")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-config", type=json.loads, default={},
                        help='other TrainConfig fields as JSON, e.g. \'{"lr": 0.001}\'')
    parser.add_argument("--out", type=Path, default=Path("bench/results/qa_quality.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = get_settings()
    driver = make_driver(settings)
    store = GraphStore(driver, settings.neo4j_database)
    expander = Neo4jExpander(driver, settings.neo4j_database)
    report: dict[str, Any] = {}
    table = []
    paired: list[tuple[str, str, dict[str, tuple[int, int]]]] = []
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
        per_question: dict[str, list[list[float]]] = {}

        def evaluate(label: str, versions: list[str | None], mode: str, use_graph: bool,
                     domain: str = domain, index: AliasIndex = index, features: Any = features,
                     eval_rows: list[dict[str, Any]] = eval_rows,
                     runs: dict[str, Any] = runs,
                     per_question: dict[str, list[list[float]]] = per_question) -> None:
            results = []
            for version in versions:
                checkpoint = None
                if version is not None:
                    checkpoint = load_checkpoint(qa_artifacts(settings).path(domain, version))
                # held-out wording: zero-shot texts and models know the training phrasings only
                qa = DomainQA(settings, store, domain, expander, index, checkpoint, features,
                              wording="train")
                results.append(evaluate_rows(qa, eval_rows, mode, use_graph,  # type: ignore[arg-type]
                                             per_question=True))
            per_question[label] = [r.pop("hits@1_per_question") for r in results]
            runs[label] = results[0] if len(results) == 1 else {"runs": results}
            for hops, m in results[0]["metrics"].items():
                per_run = [r["metrics"][hops] for r in results]
                mean = {k: sum(x[k] for x in per_run) / len(per_run)
                        for k in ("hits@1", "hits@5", "mrr")}
                spread = (max(x["hits@1"] for x in per_run) - min(x["hits@1"] for x in per_run))
                table.append((domain, label, hops, m["n"], mean["hits@1"], mean["hits@5"],
                              mean["mrr"], spread, len(per_run)))
            for r in results:
                print(f"[{domain}] {label}: {json.dumps(r['metrics'])} "
                      f"({r['ms_per_question']} ms/question)", flush=True)

        evaluate("zero-shot", [None], "zero-shot", False)
        shots = few_shot_rows(graph, train_rows, eval_rows, args.few_shot, args.seed)
        fine_tuned: list[str | None] = []
        for label, rows in (("fine-tuned", train_rows), ("few-shot", shots)):
            versions: list[str | None] = []
            first = args.seed if args.first_train_seed is None else args.first_train_seed
            for k, seed in enumerate(range(first, first + args.train_seeds)):
                t0 = time.perf_counter()
                init = None
                if label == "few-shot":  # from the fine-tuned model of the same seed
                    init = load_checkpoint(qa_artifacts(settings).path(domain, str(fine_tuned[k])))
                result = train_domain(settings, driver, domain, rows,
                                      TrainConfig(**{"wording": "train",
                                                     **args.train_config,
                                                     **({"epochs": args.epochs}
                                                        if args.epochs else {}),
                                                     "seed": seed}), graph=graph,
                                      init_from=init,
                                      # the served models learn every wording
                                      # (kgr up); these are for measuring only
                                      activate=False)
                seconds = time.perf_counter() - t0
                terms = result.get("graph", {}).get("graph_terms")
                kept = "" if terms is None else (
                    f"; graph terms {'kept' if terms['kept'] else 'dropped'} (epoch "
                    f"{terms['epoch']}: +{terms['wins']} / -{terms['losses']} validation "
                    f"questions against the text head, p = {terms['p']:.2f})")
                print(f"[{domain}] {label} (seed {seed}): trained {result['version']} on "
                      f"{result['examples']} examples in {seconds:.0f}s{kept}", flush=True)
                runs.setdefault(f"{label} training", []).append({
                    "seed": seed, "seconds": round(seconds, 1),
                    **{k: v for k, v in result.items() if k not in ("graph", "text")},
                    "best_epoch": {h: result[h]["best_epoch"] for h in ("graph", "text")
                                   if h in result}, "graph_terms": terms})
                versions.append(result["version"])
            if label == "fine-tuned":
                fine_tuned = versions
            if features is not None:
                evaluate(f"{label} + graph emb.", versions, "fine-tuned", True)
            evaluate(f"{label} text only", versions, "fine-tuned", False)
            if features is not None:
                kept = sum(bool(r["graph_terms"] is None or r["graph_terms"]["kept"])
                           for r in runs[f"{label} training"])
                paired.append((domain, f"{label} ({kept}/{len(versions)} graph heads kept)",
                               paired_by_hops(eval_rows, per_question[f"{label} + graph emb."],
                                              per_question[f"{label} text only"])))
        report[domain] = runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print(f"{'domain':<9} {'model':<26} {'hops':<4} {'n':>4} {'Hits@1':>7} {'Hits@5':>7} "
          f"{'MRR':>6} {'runs':>4} {'H@1 range':>9}   (means over the training seeds)")
    for domain, label, hops, n, h1, h5, mrr, spread, count in table:
        print(f"{domain:<9} {label:<26} {hops:<4} {n:>4} {h1:>7.3f} {h5:>7.3f} {mrr:>6.3f} "
              f"{count:>4} {spread:>9.2f}")
    print()
    print_paired("ablation, paired on the same questions and seeds: questions that only the "
                 "model with graph embeddings answers (+) / only the text-only model answers "
                 "(-), exact sign test p; where a graph head was not kept "
                 "(TrainConfig.graph_terms_p) its run answers with the text head", paired, 36)
    driver.close()


if __name__ == "__main__":
    main()
