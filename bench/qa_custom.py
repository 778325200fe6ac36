"""QA on a user's own graph: relation phrasings read from the relationship types' names.

A graph that a user loads has relationship types kgr ships no words for. This benchmark loads
pykeen's bundled UMLS semantic network (135 concepts, 46 relationship types named in many
shapes: ``TREATS``, ``CARRIES_OUT``, ``OCCURS_IN``, ``LOCATION_OF``, ``ADJACENT_TO``, ``ISA``,
...) into the configured Neo4j as a scratch domain, asks the hand-written questions of
``bench/data/custom_umls.jsonl`` (written before the name reader existed), and prints side by
side the phrasings read from the names (``fusion.language.relwords``) against the fixed frames kgr
used
before ("that {x} treats", "treats by {x}", "with a treats link from {x}", ...):

- zero-shot: no training;
- fine-tuned: a text model trained on questions generated from the graph with each phrasing
  set (the same seed and count).

Hits@1 counts a top answer that the asked path reaches; UMLS relations share many answers, so
"path" (the top answer's relation path is the asked one, with its direction) is the sharper
figure. The scratch domain and its models are deleted at the end.

    .venv/bin/python bench/qa_custom.py [--train-per-hop 300] [--verbose]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import fusion.language.verbalize as verbalize  # noqa: E402
from bench.qa_natural import gold_answers  # noqa: E402
from core.settings import get_settings  # noqa: E402
from fusion.language.linking import AliasIndex  # noqa: E402
from fusion.language.relwords import read_name  # noqa: E402
from fusion.learn.questions import generate_questions  # noqa: E402
from fusion.learn.stats import paired_outcomes, sign_test  # noqa: E402
from fusion.learn.train import train_domain  # noqa: E402
from fusion.model.config import TrainConfig  # noqa: E402
from fusion.model.graphdata import DomainGraph  # noqa: E402
from fusion.serve.checkpoint import load_checkpoint, qa_artifacts  # noqa: E402
from fusion.serve.pipeline import DomainQA, relation_label  # noqa: E402
from fusion.serve.retrieval import Neo4jExpander  # noqa: E402
from graph.driver import make_driver  # noqa: E402
from graph.store import GraphStore  # noqa: E402
from graph.writer import (  # noqa: E402
    delete_domain,
    entity_row,
    relation_row,
    write_entities,
    write_relations,
)

DATA = Path(__file__).resolve().parent / "data" / "custom_umls.jsonl"
DOMAIN = "bench_umls"
NO_PYKEEN = ("this benchmark needs PyKEEN, the `bench` extra: KGR_BENCH=1 bash scripts/setup.sh "
             "(or .venv/bin/pip install -e '.[bench]')")


def umls_triples() -> list[tuple[str, str, str]]:
    """UMLS as shipped by pykeen (train + valid + test), relation names as Neo4j types."""
    import pykeen.datasets.umls as umls

    folder = Path(umls.__file__).parent
    triples = []
    for part in ("train.txt", "valid.txt", "test.txt"):
        for line in (folder / part).read_text().splitlines():
            if line.strip():
                head, rel, tail = line.split("\t")
                triples.append((head, rel.upper().replace("-", "_"), tail))
    return triples


def load_domain(driver: Any, database: str, triples: list[tuple[str, str, str]]) -> None:
    names = sorted({t[0] for t in triples} | {t[2] for t in triples})
    write_entities(driver, database, [
        entity_row(f"{DOMAIN}:{n}", n.replace("_", " "), DOMAIN, ["Concept"]) for n in names])
    write_relations(driver, database, [
        relation_row(f"{DOMAIN}:{h}", r, f"{DOMAIN}:{t}") for h, r, t in sorted(set(triples))])


def ask_all(qa: DomainQA, rows: list[dict[str, Any]], mode: str) -> list[tuple[bool, bool, str]]:
    """(hit, path right, what came back) per row."""
    out = []
    for row in rows:
        response = qa.answer(row["question"], 5, 1, mode)  # type: ignore[arg-type]
        top = response.answers[0] if response.answers else None
        asked = [relation_label((r, d)) for r, d in row["path"]]
        hit = top is not None and top.uid in set(row["answers"])
        path = top is not None and top.relation_path == asked
        shown = f"{top.name} via {'/'.join(top.relation_path)}" if top else str(response.reason)
        out.append((hit, path, shown))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-per-hop", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="print every question's answer")
    parser.add_argument("--zero-shot-only", action="store_true", help="train no text model")
    args = parser.parse_args()
    if importlib.util.find_spec("pykeen") is None:
        sys.exit(NO_PYKEEN)
    torch.set_num_threads(2)
    settings = get_settings()
    driver = make_driver(settings)
    database = settings.neo4j_database
    store = GraphStore(driver, database)
    triples = umls_triples()
    delete_domain(driver, database, DOMAIN)
    load_domain(driver, database, triples)
    artifacts = qa_artifacts(settings)
    derived = verbalize._derived
    try:
        graph = DomainGraph.load(driver, database, DOMAIN)
        rows = []
        for line in DATA.read_text().splitlines():
            row = json.loads(line)
            topics, answers = gold_answers(graph, row)
            if topics and answers:
                rows.append({**row, "answers": sorted(answers)})
            else:
                print(f"skipped (no {'topic' if not topics else 'answer'}): {row['question']}")
        shapes = {rel: read_name(rel)[0] or "none" for rel in graph.relation_types()}
        counts = {s: list(shapes.values()).count(s) for s in sorted(set(shapes.values()))}
        print(f"{DOMAIN}: {len(graph.names)} concepts, {len(set(triples))} relationships, "
              f"{len(shapes)} types (name shapes {counts}); {len(rows)} usable questions",
              flush=True)
        index = AliasIndex.load(driver, database, DOMAIN)
        expander = Neo4jExpander(driver, database)
        results: dict[tuple[str, str], list[tuple[bool, bool, str]]] = {}
        for label in ("name shapes", "fixed frames"):
            # the phrasings kgr used before: every relation without built-in ones in fixed frames
            verbalize._derived = derived if label == "name shapes" else (  # type: ignore[assignment]
                lambda rel: None)
            # the wording of the 2026-12-02 figures: the training phrasings only
            qa = DomainQA(settings, store, DOMAIN, expander, index, None, None, wording="train")
            results[(label, "zero-shot")] = ask_all(qa, rows, "zero-shot")
            if args.zero_shot_only:
                continue
            started = time.perf_counter()
            train_rows = generate_questions(graph, {h: args.train_per_hop for h in (1, 2, 3)},
                                            "train", args.seed)
            trained = train_domain(settings, driver, DOMAIN, train_rows,
                                   TrainConfig(seed=args.seed, wording="train"), graph=graph,
                                   use_graph=False,
                                   activate=False)
            checkpoint = load_checkpoint(artifacts.path(DOMAIN, trained["version"]))
            print(f"[{label}] text model on {len(train_rows)} generated questions in "
                  f"{time.perf_counter() - started:.0f}s", flush=True)
            qa = DomainQA(settings, store, DOMAIN, expander, index, checkpoint, None)
            results[(label, "fine-tuned")] = ask_all(qa, rows, "fine-tuned")
    finally:
        verbalize._derived = derived
        delete_domain(driver, database, DOMAIN)
        shutil.rmtree(artifacts.root / DOMAIN, ignore_errors=True)  # the scratch models
        driver.close()

    if args.verbose:
        for i, row in enumerate(rows):
            print(row["question"], f"[{'/'.join(relation_label(tuple(s)) for s in row['path'])}]")
            for key, outcome in results.items():
                hit, path, shown = outcome[i]
                print(f"    {key[0]:<12} {key[1]:<10} {'ok ' if hit else 'NO '}"
                      f"{'path ' if path else '     '}{shown}")
    print()
    print(f"{'phrasings':<13} {'mode':<10} {'n':>3} {'Hits@1':>7} {'path':>6}")
    for (label, mode), outcome in results.items():
        n = len(outcome)
        print(f"{label:<13} {mode:<10} {n:>3} {sum(h for h, _, _ in outcome) / n:>7.3f} "
              f"{sum(p for _, p, _ in outcome) / n:>6.3f}")
    for mode in ("zero-shot", "fine-tuned"):
        if ("name shapes", mode) not in results:
            continue
        wins, losses = paired_outcomes([p for _, p, _ in results[("name shapes", mode)]],
                                       [p for _, p, _ in results[("fixed frames", mode)]])
        print(f"{mode}: path right with name shapes only {wins}, with fixed frames only "
              f"{losses} (sign test p = {sign_test(wins, losses):.3g})")
    by_shape: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for i, row in enumerate(rows):
        shape = read_name(row["path"][0][0])[0] or "none"
        by_shape[shape][0] += 1
        by_shape[shape][1] += results[("name shapes", "zero-shot")][i][1]
        by_shape[shape][2] += results[("fixed frames", "zero-shot")][i][1]
    print("zero-shot path right by name shape (name shapes / fixed frames): " + ", ".join(
        f"{s} {new}/{old} of {n}" for s, (n, new, old) in sorted(by_shape.items())))


if __name__ == "__main__":
    main()
