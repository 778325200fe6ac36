"""Asks on a wide schema: the same synthetic graph (same entities, same triples) with its
relationships spread over 13 and over 400 relationship types, and the p50 of a zero-shot
question about a fresh topic on each, asked in alternation in one run.

    KGR_HOME=.kgr .venv/bin/python bench/ask_wide_schema.py

Writes ``bench/results/ask_wide_schema.json`` (``p50_ratio_400_vs_13``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.errors import NotFoundError
from core.settings import Settings  # noqa: E402
from fusion.serve.pipeline import QAService  # noqa: E402
from graph.driver import make_driver  # noqa: E402
from graph.store import GraphStore  # noqa: E402
from graph.writer import entity_row, relation_row, write_entities, write_relations  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ask_wide_schema.json"
VERBS = ["SUPPLIES", "OWNS", "REGULATES", "AUDITS", "ACQUIRED", "FUNDS", "ADVISES",
         "COMPETES_WITH", "PARTNERS_WITH", "LOCATED_IN", "EMPLOYS", "SUES", "INSURES"]


def type_names(count: int) -> list[str]:
    """``count`` relationship types: the 13 verbs, then numbered variants of them."""
    return [VERBS[i % len(VERBS)] + ("" if i < len(VERBS) else f"_{i // len(VERBS)}")
            for i in range(count)]


def load(driver: object, settings: Settings, domain: str, types: int, entities: int,
         triples: int, seed: int) -> None:
    try:
        GraphStore(driver, settings.neo4j_database).check_domain(domain)  # type: ignore[arg-type]
        return
    except NotFoundError:
        pass
    rng = random.Random(seed)  # the same triples for every type count; only their types differ
    names = type_names(types)
    write_entities(driver, settings.neo4j_database, [  # type: ignore[arg-type]
        entity_row(f"{domain}:e{i}", f"firm {i}", domain, ["Company"]) for i in range(entities)])
    rows = []
    for k in range(triples):
        head, tail = rng.randrange(entities), rng.randrange(entities)
        rows.append(relation_row(f"{domain}:e{head}", names[k % types], f"{domain}:e{tail}"))
    write_relations(driver, settings.neo4j_database, rows)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--triples", type=int, default=10000)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = Settings()
    driver = make_driver(settings)
    domains = {13: "wide13", 400: "wide400"}
    for types, domain in domains.items():
        load(driver, settings, domain, types, args.entities, args.triples, args.seed)
    service = QAService(settings, driver)
    rng = random.Random(args.seed + 1)
    times: dict[int, list[float]] = {13: [], 400: []}
    for domain in domains.values():  # warm: the domain's index, plans, MiniLM
        service.ask("Which firms does firm 1 supply?", domain, mode="zero-shot")
    for _ in range(args.questions):
        topic = rng.randrange(args.entities)  # fresh topics: nothing of theirs is cached
        verb = rng.choice(["supply", "own", "regulate", "fund", "advise"])
        for types, domain in domains.items():
            started = time.perf_counter()
            service.ask(f"Which firms does firm {topic} {verb}?", domain, mode="zero-shot")
            times[types].append(time.perf_counter() - started)
    p50 = {t: 1000 * statistics.median(v) for t, v in times.items()}
    out = {"p50_ms": {str(t): round(v, 1) for t, v in p50.items()},
           "p50_ratio_400_vs_13": round(p50[400] / p50[13], 2),
           "entities": args.entities, "triples": args.triples, "questions": args.questions}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    driver.close()


if __name__ == "__main__":
    main()
