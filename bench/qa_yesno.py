"""Yes/no questions about two entities: the asked relation, its direction and the verdict.

``bench/data/yesno_test.jsonl`` holds hand-written questions ("Does HTT cause Huntington
disease?", "Is Amazon run by Jeff Bezos?", "Does Huntington disease cause HTT?"), each with the
relation and the direction its words ask for. The gold verdict is read from the graph: whether
a recorded relationship of that relation links the two entities (any records of those names)
that way round. The served service answers each (``check`` in the response); beside it, the
verdict kgr gave before the direction reading: the relation closest in meaning alone, and a
"yes" for a direct link by it either way round.

    .venv/bin/python bench/qa_yesno.py [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.settings import get_settings  # noqa: E402
from fusion.language.linking import normalize  # noqa: E402
from fusion.model.graphdata import DomainGraph  # noqa: E402
from fusion.serve.check import asked_relations, check_pair  # noqa: E402
from fusion.serve.pipeline import QAService  # noqa: E402
from graph.driver import make_driver  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "yesno_test.jsonl"


def linked(graph: DomainGraph, heads: set[str], relation: str, tails: set[str]) -> bool:
    return bool(graph.follow(heads, (relation, "out")) & tails)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    settings = get_settings()
    driver = make_driver(settings)
    service = QAService(settings, driver)
    graphs: dict[str, DomainGraph] = {}
    tally = {"n": 0, "relation": 0, "told": 0, "direction": 0, "verdict": 0, "before": 0,
             "relation_before": 0}
    for line in args.data.read_text().splitlines():
        row: dict[str, Any] = json.loads(line)
        domain = row["domain"]
        if domain not in graphs:
            graphs[domain] = DomainGraph.load(driver, settings.neo4j_database, domain)
        graph = graphs[domain]
        named = {side: {u for u, n in graph.names.items() if normalize(n) == normalize(row[side])}
                 for side in ("subject", "object")}
        if not named["subject"] or not named["object"]:
            print(f"skipped (not in the graph): {row['question']}")
            continue
        head, tail = (named["subject"], named["object"]) if row["forward"] else \
            (named["object"], named["subject"])
        gold = linked(graph, head, row["relation"], tail)
        response = service.ask(row["question"], domain)
        check = response.check
        # what kgr answered before: the relation closest in meaning, a yes for a direct
        # link by it either way round
        qa = service.domain(domain)
        prepared = qa.prepare([row["question"]])[0]
        pair = check_pair(prepared.question, prepared.mentions)
        relations = qa.space.relation_types()
        old_relation = relations[int(asked_relations(row["question"], pair, relations).argmax())] \
            if pair is not None else None
        before = old_relation is not None and (
            linked(graph, named["subject"], old_relation, named["object"])
            or linked(graph, named["object"], old_relation, named["subject"]))
        tally["n"] += 1
        if check is None:
            print(f"not read as a question about two entities: {row['question']}")
            tally["before"] += before == gold
            continue
        tally["relation"] += check.asked_relation == row["relation"]
        tally["relation_before"] += old_relation == row["relation"]
        tally["told"] += check.asked_forward is not None
        tally["direction"] += check.asked_forward is row["forward"]
        tally["verdict"] += bool(check.holds) == gold
        tally["before"] += before == gold
        if args.verbose:
            print(f"{'ok ' if bool(check.holds) == gold else 'NO '}{row['question']} -> "
                  f"{check.asked_relation} forward={check.asked_forward} holds={check.holds} "
                  f"(gold {gold}; before: {old_relation}, {before})")
    n = tally["n"]
    print()
    print(f"{n} questions; gold verdict yes for those whose asked link is recorded")
    print(f"asked relation right:   {tally['relation']}/{n} (before: "
          f"{tally['relation_before']}/{n})")
    print(f"direction told:         {tally['told']}/{n}, right {tally['direction']}")
    print(f"verdict right:          {tally['verdict']}/{n} (before: {tally['before']}/{n})")
    driver.close()


if __name__ == "__main__":
    main()
