"""PathQuestion (PQ-2H, PQ-3H) as a user would run it: the knowledge graph loaded as a triples
domain package (the code behind ``POST /v1/migrations``), the QA model trained on the train
split (``kgr train qa --data``, the reasoner), and test Hits@1 through the ask pipeline
(linking, the beam search over Neo4j), beside the published IRN and ISM results.

Modes: zero-shot (no labels), few-shot (the reasoner trained on a seeded 10% of the training
rows) and fine-tuned (all training rows). Nothing is chosen on the test split: training holds
out 10% of its own rows for early stopping; the dev split is not used.

    KGR_HOME=.kgr .venv/bin/python bench/pathquestion.py            # both sets
    KGR_HOME=.kgr .venv/bin/python bench/pathquestion.py --sets PQ-2H --no-zero-shot

Writes ``bench/results/pathquestion.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.errors import NotFoundError
from core.settings import Settings  # noqa: E402
from fusion.learn.evaluate import evaluate_rows  # noqa: E402
from fusion.reasoner.model import ReasonerConfig  # noqa: E402
from fusion.reasoner.train import train_reasoner  # noqa: E402
from fusion.serve.pipeline import QAService  # noqa: E402
from graph.driver import make_driver  # noqa: E402
from graph.migrate.runner import MigrationRunner  # noqa: E402
from graph.store import GraphStore  # noqa: E402

PUBLISHED = {"PQ-2H": {"IRN": 0.960, "ISM": 0.991}, "PQ-3H": {"IRN": 0.877, "ISM": 0.957}}
RESULTS = Path(__file__).resolve().parent / "results" / "pathquestion.json"


def data_dir(settings: Settings) -> Path:
    return Path(os.environ.get("KGR_DATA_DIR", settings.data_dir)) / "pathquestion"


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line, text in enumerate(path.read_text().splitlines(), 1):
        if text.strip():
            rows.append({**json.loads(text), "_line": line})
    return rows


def load_domain(driver: Any, settings: Settings, domain: str, folder: Path) -> None:
    """The set's kb.tsv as a triples package (relation names kept as written)."""
    try:
        GraphStore(driver, settings.neo4j_database).check_domain(domain)
        print(f"{domain}: already loaded")
        return
    except NotFoundError:
        pass
    manifest = (f"domain: {domain}\ndefault_type: Person\n"
                "triples:\n  - file: kb.tsv\n    uppercase: false\n")
    MigrationRunner(driver, settings).add_package(
        {"manifest.yaml": manifest.encode(), "kb.tsv": (folder / "kb.tsv").read_bytes()},
        slug=f"load_{domain}")
    print(f"{domain}: loaded")


def hits(service: QAService, domain: str, rows: list[dict[str, Any]], mode: str) -> float:
    service.invalidate(domain)
    result = evaluate_rows(service.domain(domain), rows, mode)  # type: ignore[arg-type]
    return float(result["metrics"]["all"]["hits@1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["PQ-2H", "PQ-3H"])
    parser.add_argument("--few-shot-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-zero-shot", action="store_true")
    parser.add_argument("--no-few-shot", action="store_true")
    parser.add_argument("--only-zero-shot", action="store_true",
                        help="zero-shot only (no training; the other modes keep their figures)")
    parser.add_argument("--no-zero-shot-or-few-shot", dest="only_fine_tuned", action="store_true",
                        help="only the fine-tuned model (e.g. to time its training again)")
    args = parser.parse_args()
    settings = Settings()
    driver = make_driver(settings)
    service = QAService(settings, driver)
    out: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.sets:
        folder = data_dir(settings) / name
        domain = name.lower().replace("-", "")
        load_domain(driver, settings, domain, folder)
        train, test = read_rows(folder / "train.jsonl"), read_rows(folder / "test.jsonl")
        # a mode left out this run keeps its last figures
        entry: dict[str, Any] = {**out.get(name, {}), "rows": len(train), "test": len(test),
                                 "published": PUBLISHED.get(name, {})}
        if not (args.no_zero_shot or args.only_fine_tuned):
            entry["zero-shot"] = {"hits@1": hits(service, domain, test, "zero-shot")}
            print(f"{name} zero-shot Hits@1 {entry['zero-shot']['hits@1']:.3f}")
        if args.only_zero_shot:
            out[name] = entry
            RESULTS.write_text(json.dumps(out, indent=2) + "\n")
            continue
        if not (args.no_few_shot or args.only_fine_tuned):
            sample = random.Random(args.seed).sample(train, int(len(train) *
                                                            args.few_shot_fraction))
            started = time.perf_counter()
            few = train_reasoner(settings, driver, domain, sample,
                                 ReasonerConfig(seed=args.seed, epochs=30, patience=5))
            entry["few-shot"] = {"hits@1": hits(service, domain, test, "fine-tuned"),
                                 "rows_used": few["rows"]["used"], "rows": len(sample),
                                 "train_seconds": round(time.perf_counter() - started, 1)}
            print(f"{name} few-shot Hits@1 {entry['few-shot']['hits@1']:.3f} "
                  f"({entry['few-shot']['rows_used']} of {len(sample)} rows)")
        started = time.perf_counter()
        full = train_reasoner(settings, driver, domain, train, ReasonerConfig(seed=args.seed))
        seconds = round(time.perf_counter() - started, 1)
        entry["fine-tuned"] = {"hits@1": hits(service, domain, test, "fine-tuned"),
                               "train_seconds": seconds, "version": full["version"],
                               "best_epoch": full["best_epoch"],
                               "val_hits@1": full["val_hits@1"]}
        entry["rows_used"] = full["rows"]["used"]
        entry["skipped_by_reason"] = full["rows"]["skipped_by_reason"]
        print(f"{name} fine-tuned Hits@1 {entry['fine-tuned']['hits@1']:.3f} "
              f"({entry['rows_used']} of {len(train)} rows, {seconds:.0f} s training); "
              f"published: " + ", ".join(f"{k} {v:.3f}" for k, v in PUBLISHED[name].items()))
        out[name] = entry
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    driver.close()


if __name__ == "__main__":
    main()
