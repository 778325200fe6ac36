"""QA on an incomplete graph: with and without the links the graph encoder predicts.

Real domain graphs miss links (an association nobody has recorded yet). This benchmark removes
a random ``--missing`` fraction of each domain's relationships, trains the graph encoder (the
served configuration, ``EncoderConfig.for_graph``) and a text-only QA model on what is left
(training questions generated from the reduced graph), and asks evaluation questions generated
from the *complete* graph, in held-out wording, against the reduced one. Side by side:

- recorded links only: the fine-tuned model and zero-shot over the reduced graph;
- with predicted links (``fusion.serve.linkpred``): the same models, and retrieval also follows the
  encoder's ``--top-m`` most likely missing ends of each hop it reads.

"broken" counts the questions whose gold path reaches no gold answer in the reduced graph
(no reading of the question can answer them from recorded links alone). The paired columns
count the questions only one side answers, with the exact sign test.

Runs in memory over the configured server's graph (``KGR_HOME`` / ``NEO4J_URI``); writes
nothing to the graph; the QA checkpoints it trains are not activated.

    .venv/bin/python bench/qa_incomplete.py --domains medical finance
"""

from __future__ import annotations

import argparse
import copy
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
from fusion.learn.questions import generate_questions  # noqa: E402
from fusion.learn.train import train_domain  # noqa: E402
from fusion.model.config import TrainConfig  # noqa: E402
from fusion.model.graphdata import DomainGraph  # noqa: E402
from fusion.serve.checkpoint import load_checkpoint, qa_artifacts  # noqa: E402
from fusion.serve.linkpred import LinkPredictor  # noqa: E402
from fusion.serve.pipeline import DomainQA  # noqa: E402
from fusion.serve.retrieval import MemoryExpander  # noqa: E402
from graph.driver import make_driver  # noqa: E402
from graph.encoder.config import EncoderConfig  # noqa: E402
from graph.encoder.data import KGData  # noqa: E402
from graph.encoder.train import split_triples, train_encoder  # noqa: E402
from graph.store import GraphStore  # noqa: E402

Triple = tuple[str, str, str]


def stored_triples(graph: DomainGraph) -> list[Triple]:
    return sorted({(u, rel, v) for u, hops in graph.adj.items()
                   for (rel, direction), targets in hops.items() if direction == "out"
                   for v in targets})


def without(graph: DomainGraph, removed: set[Triple]) -> DomainGraph:
    """A copy of ``graph`` without the ``removed`` relationships (neighbour order kept)."""
    reduced = copy.deepcopy(graph)
    for head, rel, tail in removed:
        reduced.adj[head][(rel, "out")].remove(tail)
        reduced.adj[tail][(rel, "in")].remove(head)
    for hops in reduced.adj.values():
        for action in [a for a, targets in hops.items() if not targets]:
            del hops[action]
    return reduced


def question_keys(rows: list[dict[str, Any]]) -> set[tuple[str, tuple[Any, ...], str]]:
    return {(t, tuple(tuple(s) for s in q["path"]), q["answer_type"])
            for q in rows for t in q["topic_entities"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=["medical", "finance"])
    parser.add_argument("--missing", type=float, default=0.1,
                        help="fraction of relationships removed from the graph")
    parser.add_argument("--train-per-hop", type=int, default=600)
    parser.add_argument("--eval-per-hop", type=int, default=300)
    parser.add_argument("--top-m", type=int, default=3,
                        help="predicted ends per (node, hop) that retrieval reads")
    parser.add_argument("--encoder-config", type=json.loads, default={},
                        help='EncoderConfig fields over the served default, as JSON, e.g. '
                        '\'{"loss": "1n", "dim": 200, "epochs": 6}\'')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/qa_incomplete.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = get_settings()
    driver = make_driver(settings)
    store = GraphStore(driver, settings.neo4j_database)
    report: dict[str, Any] = {}
    table: list[tuple[Any, ...]] = []
    pairs: list[tuple[str, str, dict[str, tuple[int, int]]]] = []
    for domain in args.domains:
        started = time.perf_counter()
        graph = DomainGraph.load(driver, settings.neo4j_database, domain)
        triples = stored_triples(graph)
        uids = sorted(graph.types)
        data = KGData.from_triples(triples, uids, graph.relation_types())
        config = EncoderConfig.for_graph(data.num_nodes, data.num_edges,
                                         **{"valid_fraction": 0.01, "seed": args.seed,
                                            **args.encoder_config,
                                            "test_fraction": args.missing})
        splits = split_triples(data.triples(), config.valid_fraction, config.test_fraction,
                               config.seed)
        held = torch.cat([splits.valid, splits.test]).tolist()
        removed = {(uids[h], data.relation_types[r], uids[t]) for h, r, t in held}
        reduced = without(graph, removed)
        encoder = train_encoder(data, config, splits=splits)
        model = encoder.model.eval()
        x = model.encode(*(encoder.graph if encoder.graph is not None else (None, None)))
        predictor = LinkPredictor(x.detach().float(), model.score_tails, uids,
                                  data.relation_types, "bench", args.top_m)
        link_metrics = {k: round(v.mrr, 4) for k, v in encoder.test.items()}
        print(f"[{domain}] removed {len(removed)} of {len(triples)} relationships; encoder on "
              f"the rest in {encoder.wall_s:.0f}s, MRR on the removed ones {link_metrics}",
              flush=True)
        train_rows = generate_questions(reduced, {h: args.train_per_hop for h in (1, 2, 3)},
                                        "train", args.seed)
        eval_rows = generate_questions(graph, {h: args.eval_per_hop for h in (1, 2, 3)},
                                       "eval", args.seed + 1, exclude=question_keys(train_rows))
        broken = {str(h): 0 for h in (1, 2, 3)}
        for row in eval_rows:
            reached = reduced.answers(set(row["topic_entities"]),
                                      [tuple(s) for s in row["path"]], row["answer_type"])
            if not reached & set(row["answers"]):
                broken[str(row["hops"])] += 1
        t0 = time.perf_counter()
        result = train_domain(settings, driver, domain, train_rows,
                              TrainConfig(seed=args.seed, wording="train"), graph=reduced,
                              use_graph=False,
                              activate=False)
        print(f"[{domain}] {len(train_rows)} training questions from the reduced graph; text "
              f"model {result['version']} in {time.perf_counter() - t0:.0f}s; broken "
              f"evaluation questions per hop {broken}", flush=True)
        checkpoint = load_checkpoint(qa_artifacts(settings).path(domain, result["version"]))
        index = AliasIndex.load(driver, settings.neo4j_database, domain)
        runs: dict[str, Any] = {"removed": len(removed), "relationships": len(triples),
                                "link_prediction_mrr": link_metrics, "broken": broken,
                                "qa_version": result["version"]}
        for mode in ("fine-tuned", "zero-shot"):
            outcomes = {}
            for links in (False, True):
                qa = DomainQA(settings, store, domain, MemoryExpander(reduced), index,
                              checkpoint if mode == "fine-tuned" else None, None,
                              wording="train")  # the evaluation wording is held out
                qa.link_predictor = predictor
                res = evaluate_rows(qa, eval_rows, mode, False,  # type: ignore[arg-type]
                                    per_question=True, predicted_links=links)
                outcomes[links] = res.pop("hits@1_per_question")
                label = f"{mode} {'+ predicted links' if links else 'recorded links'}"
                runs[label] = res
                print(f"[{domain}] {label}: {json.dumps(res['metrics'])} "
                      f"({res['ms_per_question']} ms/question)", flush=True)
                for hops, m in res["metrics"].items():
                    table.append((domain, label, hops, m["n"], m["hits@1"], m["hits@5"],
                                  m["mrr"], broken.get(hops, sum(broken.values()))))
            pairs.append((domain, mode, paired_by_hops(eval_rows, [outcomes[True]],
                                                         [outcomes[False]])))
        runs["seconds"] = round(time.perf_counter() - started, 1)
        report[domain] = runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print(f"{args.missing:.0%} of the relationships removed; evaluation questions from the "
          "complete graph, held-out wording")
    print(f"{'domain':<9} {'model':<32} {'hops':<4} {'n':>4} {'broken':>6} {'Hits@1':>7} "
          f"{'Hits@5':>7} {'MRR':>6}")
    for domain, label, hops, n, h1, h5, mrr, nb in table:
        print(f"{domain:<9} {label:<32} {hops:<4} {n:>4} {nb:>6} {h1:>7.3f} {h5:>7.3f} "
              f"{mrr:>6.3f}")
    print()
    print_paired("paired on the same questions: answered only with predicted links (+) / only "
                 "with recorded links (-), exact sign test p", pairs, 11, digits=3)
    driver.close()


if __name__ == "__main__":
    main()
