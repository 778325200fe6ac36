"""QA on an incomplete graph (EmbedKGQA's "KG-50"): half of a domain's triples removed at
random (fixed seed), the graph encoder and the QA model trained on what is left, and test
questions whose gold answers come from the complete graph. Compared: the text-only reasoner
(recorded links only), the reasoner fused with its answer scorer over the graph encoder's
entity embeddings (``fusion.reasoner.answers``: "with_graph"), the same with the encoder's
predicted links followed too, and the reasoner on the complete graph.

Here for PathQuestion PQ-3H (its train split for training, its test split once); the built-in
domains are not run by this script (see bench/RESULTS.md).

    KGR_HOME=.kgr .venv/bin/python bench/qa_kg50.py

Writes the "PQ-3H" entry of ``bench/results/qa_kg50.json`` (Hits@1 under "3").
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pathquestion import data_dir, load_domain, read_rows  # noqa: E402
from core.errors import NotFoundError
from core.settings import Settings  # noqa: E402
from fusion.learn.evaluate import evaluate_rows  # noqa: E402
from fusion.reasoner.model import ReasonerConfig  # noqa: E402
from fusion.reasoner.train import train_reasoner  # noqa: E402
from fusion.serve.pipeline import QAService  # noqa: E402
from graph.driver import make_driver  # noqa: E402
from graph.encoder import train_domain as train_encoder  # noqa: E402
from graph.encoder.checkpoint import encoder_artifacts  # noqa: E402
from graph.migrate.runner import MigrationRunner  # noqa: E402
from graph.store import GraphStore  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "qa_kg50.json"


def load_half(driver: Any, settings: Settings, domain: str, kb: Path, seed: int,
              keep: float) -> int:
    """``keep`` of kb's triples, drawn with ``seed``, as a triples package; returns the count."""
    lines = [line for line in kb.read_text().splitlines() if line.strip()]
    kept = random.Random(seed).sample(lines, int(len(lines) * keep))
    try:
        GraphStore(driver, settings.neo4j_database).check_domain(domain)
        print(f"{domain}: already loaded")
        return len(kept)
    except NotFoundError:
        pass
    manifest = (f"domain: {domain}\ndefault_type: Person\n"
                "triples:\n  - file: kb.tsv\n    uppercase: false\n")
    MigrationRunner(driver, settings).add_package(
        {"manifest.yaml": manifest.encode(), "kb.tsv": ("\n".join(kept) + "\n").encode()},
        slug=f"load_{domain}")
    return len(kept)


def hits(service: QAService, domain: str, rows: list[dict[str, Any]],
         use_graph: bool, predicted_links: bool = False) -> float:
    service.invalidate(domain)
    result = evaluate_rows(service.domain(domain), rows, "fine-tuned", use_graph=use_graph,
                           predicted_links=predicted_links)
    return float(result["metrics"]["all"]["hits@1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--encoder-epochs", type=int, default=None,
                        help="default: the encoder's own choice for the graph's size")
    parser.add_argument("--reuse-encoder", action="store_true",
                        help="keep the half graph's active encoder instead of training one")
    args = parser.parse_args()
    settings = Settings()
    driver = make_driver(settings)
    service = QAService(settings, driver)
    folder = data_dir(settings) / "PQ-3H"
    train, test = read_rows(folder / "train.jsonl"), read_rows(folder / "test.jsonl")
    complete, half = "pq3h", "pq3hkg50"
    load_domain(driver, settings, complete, folder)
    triples = load_half(driver, settings, half, folder / "kb.tsv", args.seed, args.keep)
    entry: dict[str, Any] = {"triples_kept": triples, "keep": args.keep, "seed": args.seed}
    started = time.perf_counter()
    encoder = encoder_artifacts(settings).active_version(half) if args.reuse_encoder else None
    if encoder is None:
        encoder = train_encoder(settings, driver, half, overrides=(
            {"epochs": args.encoder_epochs} if args.encoder_epochs else None))
        entry["encoder"] = {"version": encoder,
                            "seconds": round(time.perf_counter() - started, 1)}
    else:
        previous = json.loads(RESULTS.read_text()).get("PQ-3H", {}) if RESULTS.exists() else {}
        entry["encoder"] = {"version": encoder, "reused": True,
                            "seconds": previous.get("encoder", {}).get("seconds")}
    trained = train_reasoner(settings, driver, half, train, ReasonerConfig(seed=args.seed))
    entry["rows_used"] = trained["rows"]["used"]
    entry["skipped_by_reason"] = trained["rows"]["skipped_by_reason"]
    entry["answer_scorer"] = {k: v for k, v in trained.get("answer_scorer", {}).items()
                              if k != "history"}
    text_only = hits(service, half, test, use_graph=False)
    with_graph = hits(service, half, test, use_graph=True)
    entry["with_graph_and_predicted_links"] = {
        "3": hits(service, half, test, use_graph=True, predicted_links=True)}
    out: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    complete_hits = None
    pq = json.loads((RESULTS.parent / "pathquestion.json").read_text()).get("PQ-3H", {}) \
        if (RESULTS.parent / "pathquestion.json").exists() else {}
    complete_hits = pq.get("fine-tuned", {}).get("hits@1")
    entry.update({"with_graph": {"3": with_graph}, "text_only": {"3": text_only},
                  "complete_graph": {"3": complete_hits}})
    out["PQ-3H"] = entry
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"PQ-3H KG-50: text only {text_only:.3f}, with graph embeddings {with_graph:.3f}, "
          f"complete graph {complete_hits}; {trained['rows']['used']} of {len(train)} "
          "training rows usable")
    driver.close()


if __name__ == "__main__":
    main()
