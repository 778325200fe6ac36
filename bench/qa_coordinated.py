"""QA on questions with several topics joined by "and": coordinated topics against the first
topic alone (kgr before ``fusion.serve.coordination``), side by side, with the served models.

"Which diseases present both arachnodactyly and ectopia lentis?" asks for the diseases that
have *both*. The questions are generated from each domain's graph in held-out wording
(``fusion.learn.questions.generate_coordinated_questions``): one relation path of 1..3 hops, asked
from ``--topics`` entities, gold = the entities that every topic's path reaches. "first
alone" answers from the first mention only, as kgr did before; "share" is the fraction of
questions whose gold answers are fewer than the first topic's own answers (where reading one
topic cannot be exactly right).

Runs against the configured server (``KGR_HOME`` / ``NEO4J_URI``) with the active QA
checkpoints; writes nothing. The served models learn every phrasing (``TrainConfig.wording``),
so with them the held-out wording is wording they have seen: the script says so per domain;
the comparison it makes (coordinated against the first topic alone) is not about wording.
The latency lines come from one more pass over the questions
after the quality runs (warm caches: Neo4j's query plans, one per path shape, and the
expander's neighbour lists), per question, coordinated and first alone.

    .venv/bin/python bench/qa_coordinated.py --domains medical finance --per-hop 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import paired_by_hops, percentile, print_paired, served_qa  # noqa: E402
from core.settings import get_settings  # noqa: E402
from fusion.language.linking import normalize  # noqa: E402
from fusion.learn.evaluate import evaluate_rows  # noqa: E402
from fusion.learn.questions import generate_coordinated_questions  # noqa: E402
from fusion.model.graphdata import DomainGraph  # noqa: E402
from fusion.serve.retrieval import Neo4jExpander  # noqa: E402
from graph.driver import make_driver  # noqa: E402


def narrower_than_first(graph: DomainGraph, row: dict[str, Any]) -> bool:
    """Whether the gold answers are fewer than what the path reaches from the first topic."""
    first = {u for u, name in graph.names.items()
             if normalize(name) == normalize(row["topic_names"][0])}
    steps = [tuple(s) for s in row["path"]]
    return len(graph.answers(first, steps, row["answer_type"])) > len(row["answers"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", nargs="+", default=["medical", "finance"])
    parser.add_argument("--per-hop", type=int, default=100)
    parser.add_argument("--hops", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--topics", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(2)
    settings = get_settings()
    driver = make_driver(settings)
    expander = Neo4jExpander(driver, settings.neo4j_database)
    table: list[tuple[str, str, str, str, dict[str, float]]] = []
    pairs = []
    latency: list[tuple[str, str, str, dict[int, tuple[float, float]]]] = []
    results: dict[str, Any] = {}
    for domain in args.domains:
        graph = DomainGraph.load(driver, settings.neo4j_database, domain)
        rows = generate_coordinated_questions(graph, {h: args.per_hop for h in args.hops},
                                              "eval", args.seed, topics=args.topics)
        share = sum(narrower_than_first(graph, r) for r in rows) / max(1, len(rows))
        print(f"[{domain}] {len(rows)} questions with {args.topics} topics; the gold is "
              f"narrower than the first topic's answers in {share:.0%}; e.g. "
              f"{rows[0]['question']!r}", flush=True)
        qa, checkpoint = served_qa(settings, driver, domain, expander)
        if checkpoint is not None and checkpoint.wording == "all":
            print(f"[{domain}] note: the active model {checkpoint.version} learnt every "
                  "phrasing, the held-out wording of these questions included", flush=True)
        modes = ["zero-shot"] + (["fine-tuned"] if checkpoint is not None else [])
        results[domain] = {"questions": len(rows), "narrower_share": round(share, 4)}
        for mode in modes:
            outcome = {}
            for coordinated in (True, False):
                qa.coordinate = coordinated
                label = "coordinated" if coordinated else "first alone"
                result = evaluate_rows(qa, rows, mode, per_question=True)  # type: ignore[arg-type]
                outcome[coordinated] = result["hits@1_per_question"]
                for hops, metrics in result["metrics"].items():
                    table.append((domain, mode, label, hops, metrics))
                results[domain][f"{mode} {label}"] = result["metrics"]
                print(f"[{domain}] {mode} {label}: {result['metrics']['all']} "
                      f"({result['ms_per_question']} ms/question)", flush=True)
            pairs.append((domain, mode, paired_by_hops(rows, [outcome[True]],
                                                       [outcome[False]])))
            # per-question latency of one more (warm) pass, coordinated and first alone
            for coordinated in (True, False):
                qa.coordinate = coordinated
                times: dict[int, list[float]] = {}
                for row in rows:
                    started = time.perf_counter()
                    qa.answer(row["question"], 20, 3, mode)  # type: ignore[arg-type]
                    times.setdefault(row["hops"], []).append(
                        1000 * (time.perf_counter() - started))
                latency.append((domain, mode, "coordinated" if coordinated else "first alone",
                                {h: (statistics.median(v), percentile(v, 99))
                                 for h, v in sorted(times.items())}))
    print()
    print(f"{'domain':<9} {'model':<11} {'topics':<12} {'hops':<4} {'n':>4} {'Hits@1':>7} "
          f"{'Hits@5':>7} {'MRR':>6}")
    for domain, mode, label, hops, m in table:
        print(f"{domain:<9} {mode:<11} {label:<12} {hops:<4} {m['n']:>4} {m['hits@1']:>7.3f} "
              f"{m['hits@5']:>7.3f} {m['mrr']:>6.3f}")
    print()
    print_paired("paired on the same questions: answered only coordinated (+) / only by the "
                 "first topic alone (-), Hits@1, exact sign test", pairs, 11, digits=3)
    print()
    print("ms per question (one warm pass, link + search + answer), p50 / p99 per hop count:")
    for domain, mode, label, by_hop in latency:
        cells = "  ".join(f"{h}: {p50:.0f} / {p99:.0f}" for h, (p50, p99) in by_hop.items())
        print(f"{domain:<9} {mode:<11} {label:<12} {cells}")
        results[domain][f"{mode} {label} latency_ms"] = {
            str(h): {"p50": round(p50, 1), "p99": round(p99, 1)} for h, (p50, p99) in
            by_hop.items()}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    driver.close()


if __name__ == "__main__":
    main()
