"""QA on hand-written questions: natural wording, not the generator's templates.

``bench/data/natural_*.jsonl`` hold questions written by a person, each with its topic (an
entity name), the relation path it asks for and the answer type (null: any type); the gold
answers are read from the graph at run time (every entity of that type the path reaches from
every entity of that name). The generated benchmark (``bench/qa_quality.py``) holds its
wording out by template; these show how the served models (the active checkpoints) do on
wording nobody generated. ``natural_dev``: looked at while fixing the parse (its failures led to
the "where" rule); ``natural_test``: written after that, measured once, then its failures led
to the subject rule (so it is no longer clean); ``natural_test2``: written on 2026-12-01 before
any change of that round and not looked at question by question; ``natural_coord``: questions
with two or three topics joined by "and" / "or" (rows with "topics" and "operator"), written
after ``fusion.serve.coordination`` and measured once before any change to it; ``natural_test3``:
written on 2026-12-01 in styles the others lack (imperatives, keyword queries, lower case, short
company names such as "Apple"), measured once, then its failures led to the short-name linking
and the "who" / "kinds of" parse rules (so it is no longer clean either); ``natural_test4``:
written after those changes, measured once; ``natural_test5``: written on 2026-12-02 before any
change of that round (possessives, typos, "how many", polite wrappers), measured once, then its
failures led to the wh-clause rule (``fusion.language.parse.wh_clause``); ``natural_test6``:
written on
2026-12-04 before any change of that round was measured on it (past tense, "Inc." mid-sentence,
"the price of X", "the gene X", colon and keyword styles), measured before and after them.

    .venv/bin/python bench/qa_natural.py [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import served_qa  # noqa: E402
from core.settings import get_settings  # noqa: E402
from fusion.language.linking import normalize  # noqa: E402
from fusion.learn.evaluate import evaluate_rows  # noqa: E402
from fusion.model.graphdata import DomainGraph  # noqa: E402
from fusion.serve.retrieval import Neo4jExpander  # noqa: E402
from graph.driver import make_driver  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
SETS = tuple(sorted(DATA.glob("natural_*.jsonl")))


def gold_answers(graph: DomainGraph, row: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(topic uids, answer uids) of a row, from the graph. A row with several "topics" asks
    for what all of them reach ("operator": "all", the default) or any of them ("any")."""
    if "topics" in row:
        single = {k: v for k, v in row.items() if k != "topics"}
        parts = [gold_answers(graph, {**single, "topic": t}) for t in row["topics"]]
        if not all(topics for topics, _ in parts):
            return set(), set()
        answers = [reached for _, reached in parts]
        combined = set.intersection(*answers) if row.get("operator", "all") == "all" \
            else set.union(*answers)
        return set.union(*(topics for topics, _ in parts)), combined
    topics = {uid for uid, name in graph.names.items()
              if normalize(name) == normalize(row["topic"])}
    reached = set(topics)
    for rel, direction in row["path"]:
        reached = graph.follow(reached, (rel, direction))
    if row.get("answer_type"):
        reached = {u for u in reached if graph.types.get(u) == row["answer_type"]}
    return topics, reached - topics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, nargs="+", default=list(SETS))
    parser.add_argument("--verbose", action="store_true", help="print every question's answer")
    parser.add_argument("--first-topic-only", action="store_true",
                        help="answer from the first mention alone (no coordinated topics), "
                        "as kgr did before fusion.serve.coordination")
    args = parser.parse_args()
    torch.set_num_threads(2)
    settings = get_settings()
    driver = make_driver(settings)
    expander = Neo4jExpander(driver, settings.neo4j_database)
    by_set: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for path in args.data:
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                by_set[(path.stem.removeprefix("natural_"), row["domain"])].append(row)
    table = []
    graphs: dict[str, DomainGraph] = {}
    for (name, domain), rows in sorted(by_set.items()):
        if domain not in graphs:
            graphs[domain] = DomainGraph.load(driver, settings.neo4j_database, domain)
        graph = graphs[domain]
        usable = []
        for row in rows:
            topics, answers = gold_answers(graph, row)
            if not topics or not answers:
                print(f"[{name} {domain}] skipped (no {'topic' if not topics else 'answer'} in the "
                      f"graph): {row['question']}")
                continue
            usable.append({**row, "answers": sorted(answers), "hops": len(row["path"])})
        qa, checkpoint = served_qa(settings, driver, domain, expander)
        qa.coordinate = not args.first_topic_only
        runs = [("zero-shot", "zero-shot", False)]
        if checkpoint is not None:
            runs += [("fine-tuned + graph emb.", "fine-tuned", True),
                     ("fine-tuned text only", "fine-tuned", False)]
        for label, mode, use_graph in runs:
            result = evaluate_rows(qa, usable, mode, use_graph)  # type: ignore[arg-type]
            for hops, m in result["metrics"].items():
                table.append((name, domain, label, hops, m["n"], m["hits@1"], m["hits@5"],
                              m["mrr"]))
            if args.verbose:
                for row in usable:
                    response = qa.answer(row["question"], 5, 3, mode, use_graph)  # type: ignore[arg-type]
                    top = response.answers[0] if response.answers else None
                    mark = "ok " if top is not None and top.uid in set(row["answers"]) else "NO "
                    print(f"[{name} {domain}] {label}: {mark}{row['question']} -> "
                          f"{top.name if top else response.reason} "
                          f"{'/'.join(top.relation_path) if top else ''}")
        print(f"[{name} {domain}] {len(usable)} questions; QA model "
              f"{checkpoint.version if checkpoint else None}")
    print()
    print(f"{'set':<5} {'domain':<9} {'model':<26} {'hops':<4} {'n':>4} {'Hits@1':>7} "
          f"{'Hits@5':>7} {'MRR':>6}")
    for name, domain, label, hops, n, h1, h5, mrr in table:
        print(f"{name:<5} {domain:<9} {label:<26} {hops:<4} {n:>4} {h1:>7.3f} {h5:>7.3f} "
              f"{mrr:>6.3f}")
    driver.close()


if __name__ == "__main__":
    main()
