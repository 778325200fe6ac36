"""Where the QA models go wrong on generated questions, and whether the graph could tell.

The quality table's ablation (``bench/qa_quality.py``) finds the model with graph embeddings
level with the text-only one on the complete built-in graphs. This benchmark says why, from the
errors themselves. It generates the same questions as ``qa_quality`` (training wording to train,
held-out wording to evaluate), trains a text-only fine-tuned model (or loads ``--version``),
and sorts every evaluation question whose top answer is wrong:

- ``no answer``: nothing came back;
- ``other topic``: the best path starts at another entity than the question's topic;
- ``other hop count``: a path of another length;
- ``same path``: the gold relation path, yet a wrong top answer;
- ``wrong hop, both offered``: the first hop that differs from the gold path takes a relation
  that also leaves the node(s) the gold path has reached there: the graph holds both readings,
  so only the words can choose between them;
- ``wrong hop, not offered``: the chosen relation does not leave those nodes.

For the ``both offered`` errors it then asks whether anything about the graph favours the asked
relation over the chosen one. The question generator (``fusion.learn.questions._walk``) picks each
hop's relation uniformly among those leaving the current node, so among the training questions
asked at nodes that offer both, the asked one should come up about half the time: the printed
share is what a model that knew the graph perfectly (any entity or relation embedding) could
learn as a prior, and 0.5 means nothing.

    .venv/bin/python bench/qa_errors.py --domains medical finance
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.settings import get_settings  # noqa: E402
from fusion.language.linking import AliasIndex  # noqa: E402
from fusion.learn.questions import generate_splits  # noqa: E402
from fusion.learn.train import train_domain  # noqa: E402
from fusion.model.config import TrainConfig  # noqa: E402
from fusion.model.graphdata import DomainGraph  # noqa: E402
from fusion.model.space import load_graph_features  # noqa: E402
from fusion.serve.checkpoint import load_checkpoint, qa_artifacts  # noqa: E402
from fusion.serve.pipeline import DomainQA  # noqa: E402
from fusion.serve.retrieval import Neo4jExpander  # noqa: E402
from graph.driver import make_driver  # noqa: E402
from graph.store import GraphStore  # noqa: E402

Step = tuple[str, str]  # (relation, "out" | "in")
CLASSES = ("no answer", "other topic", "other hop count", "same path",
           "wrong hop, both offered", "wrong hop, not offered")


def parse_relation_path(labels: list[str]) -> list[Step]:
    """``['HAS_PHENOTYPE', '^IS_A']`` (the API's form) as ``[(rel, "out"), (rel, "in")]``."""
    return [(label[1:], "in") if label.startswith("^") else (label, "out") for label in labels]


def classify(graph: DomainGraph, row: dict[str, Any], answer: Any
             ) -> tuple[str, tuple[Step, Step] | None, set[str] | None]:
    """The error class of one wrong top answer; for a wrong hop also (gold, chosen) and the
    nodes the gold path has reached before it."""
    if answer is None:
        return "no answer", None, None
    gold: list[Step] = [(s[0], s[1]) for s in row["path"]]
    chosen = parse_relation_path(answer.relation_path)
    # evidence hops are in the stored direction: a reversed first hop starts at its target
    starts = {(e.relations[0].source if chosen[0][1] == "out" else e.relations[0].target)
              for e in answer.evidence if e.relations} if chosen else set()
    topics = set(row["topic_entities"])
    if starts and not starts & topics:
        return "other topic", None, None
    if len(chosen) != len(gold):
        return "other hop count", None, None
    if chosen == gold:
        return "same path", None, None
    frontier = set(topics)
    for want, got in zip(gold, chosen, strict=True):
        if want != got:
            return (("wrong hop, both offered" if got in offered(graph, frontier)
                     else "wrong hop, not offered"),
                    (want, got), frontier)
        frontier = graph.follow(frontier, want)
    return "same path", None, None


def offered(graph: DomainGraph, nodes: set[str]) -> set[Step]:
    """The (relation, direction) steps that leave at least one of ``nodes``."""
    return {step for u in nodes for step in graph.adj.get(u, {})}


def training_hops(graph: DomainGraph, train_rows: list[dict[str, Any]]
                  ) -> list[tuple[set[Step], Step]]:
    """Each hop of each training question: the steps offered where it was taken, and the step."""
    hops: list[tuple[set[Step], Step]] = []
    for row in train_rows:
        current = {row["topic_entities"][0]}
        for raw in row["path"]:
            step = (raw[0], raw[1])
            hops.append((offered(graph, current), step))
            current = graph.follow(current, step)
    return hops


def asked_share(hops: list[tuple[set[Step], Step]], pair: tuple[Step, Step]) -> tuple[int, int]:
    """Among training hops taken where both steps of ``pair`` are offered: how many took the
    first (the asked one) and how many the second (the one the model chose)."""
    at_both = [step for steps, step in hops if pair[0] in steps and pair[1] in steps]
    return at_both.count(pair[0]), at_both.count(pair[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=["medical", "finance"])
    parser.add_argument("--train-per-hop", type=int, default=600)
    parser.add_argument("--eval-per-hop", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", action="append", default=[],
                        help="DOMAIN=VERSION: a QA checkpoint trained on this seed's training "
                        "wording (default: train one, not activated)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    given = dict(v.split("=", 1) for v in args.version)
    settings = get_settings()
    driver = make_driver(settings)
    store = GraphStore(driver, settings.neo4j_database)
    expander = Neo4jExpander(driver, settings.neo4j_database)
    summary: list[tuple[str, str, Counter[str], int, float, float, int, int]] = []
    for domain in args.domains:
        graph = DomainGraph.load(driver, settings.neo4j_database, domain)
        train_rows, eval_rows = generate_splits(graph, args.train_per_hop, args.eval_per_hop,
                                                args.seed)
        hops = training_hops(graph, train_rows)
        version = given.get(domain)
        if version is None:
            t0 = time.perf_counter()
            result = train_domain(settings, driver, domain, train_rows,
                                  TrainConfig(wording="train", seed=args.seed), graph=graph,
                                  use_graph=False, activate=False)
            version = str(result["version"])
            print(f"[{domain}] text model {version} in {time.perf_counter() - t0:.0f}s",
                  flush=True)
        checkpoint = load_checkpoint(qa_artifacts(settings).path(domain, version))
        index = AliasIndex.load(driver, settings.neo4j_database, domain)
        features = load_graph_features(settings, domain)
        for mode in ("fine-tuned", "zero-shot"):
            qa = DomainQA(settings, store, domain, expander, index,
                          checkpoint if mode == "fine-tuned" else None, features,
                          wording="train")  # the evaluation wording is held out
            classes: Counter[str] = Counter()
            pairs: Counter[tuple[Step, Step]] = Counter()
            options: list[int] = []
            for row in eval_rows:
                response = qa.answer(row["question"], 20, 3, mode, False)
                top = response.answers[0] if response.answers else None
                if top is not None and top.uid in set(row["answers"]):
                    continue
                label, pair, frontier = classify(graph, row, top)
                classes[label] += 1
                if pair is not None and label == "wrong hop, both offered":
                    pairs[pair] += 1
                    assert frontier is not None
                    options.append(len(offered(graph, frontier)))
            asked = chosen = 0
            for pair, count in pairs.items():
                a, c = asked_share(hops, pair)
                asked += count * a
                chosen += count * c
            share = asked / (asked + chosen) if asked + chosen else float("nan")
            mean_options = sum(options) / len(options) if options else float("nan")
            summary.append((domain, mode, classes, len(eval_rows), share, mean_options,
                            len(pairs), sum(pairs.values())))
            print(f"[{domain}] {mode}: {sum(classes.values())} wrong of {len(eval_rows)}: "
                  f"{dict(classes)}; most confused {pairs.most_common(5)}", flush=True)
    print()
    print("wrong top answers on held-out wording, by cause")
    print(f"{'domain':<8} {'mode':<11} {'n':>4} {'wrong':>5} " +
          " ".join(f"{c:>{max(len(c), 5)}}" for c in CLASSES) +
          "  asked share  options")
    for domain, mode, classes, n, share, mean_options, _, _ in summary:
        print(f"{domain:<8} {mode:<11} {n:>4} {sum(classes.values()):>5} " +
              " ".join(f"{classes[c]:>{max(len(c), 5)}}" for c in CLASSES) +
              f"  {'n/a' if share != share else f'{share:.3f}':>11}  {mean_options:>7.1f}")
    print()
    print("asked share: over the 'both offered' errors, weighted by their count, the share of "
          "training hops at nodes offering both relations that took the asked one (0.5: the "
          "graph favours neither; n/a: no training hop was taken at such nodes); options: mean "
          "number of (relation, direction) steps leaving those nodes")
    driver.close()


if __name__ == "__main__":
    main()
