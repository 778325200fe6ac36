"""Does message passing pay? The served default (a plain ComplEx table, ``num_layers=0``) against
the same model with relation-aware layers on top, on UMLS and Kinships (bundled with the
``pykeen`` package, no download) and optionally a sample of FinDKG (chronological split).

Every variant trains with the same configuration (ComplEx-N3, 1-N, dim 400, the same epochs,
evaluation and early stopping as ``bench/encoder_vs_pykeen.py``), on the same splits, scored by
the project's evaluator (filtered, both sides, realistic ranks) on the test split.

    .venv/bin/python bench/encoder_layers.py                      # UMLS, Kinships: ~10 min
    .venv/bin/python bench/encoder_layers.py --sets --findkg \
        --out bench/results/encoder_layers_findkg.json            # a FinDKG sample only
    .venv/bin/python bench/encoder_layers.py --rgcn               # + R-GCN (slow on CPU)

Writes ``bench/results/encoder_layers.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.encoder_vs_pykeen import KGR_CONFIGS, findkg_splits, subsample  # noqa: E402
from core.settings import Settings  # noqa: E402
from graph.encoder import EncoderConfig, KGData, Splits, train_encoder  # noqa: E402

warnings.filterwarnings("ignore")

RESULTS = Path(__file__).resolve().parent / "results" / "encoder_layers.json"
# on top of each set's configuration; "table" is the served default
VARIANTS: dict[str, dict[str, Any]] = {
    "table": {},
    "compgcn-1": {"num_layers": 1, "layer": "compgcn"},
    "compgcn-2": {"num_layers": 2, "layer": "compgcn"},
}
RGCN = {"rgcn-1-blocks8": {"num_layers": 1, "layer": "rgcn", "num_blocks": 8}}
# FinDKG sample: 13.6k entities; dim 200 and a few epochs keep a variant under ~5 min here
FINDKG_CONFIG: dict[str, Any] = {"dim": 200, "epochs": 4, "eval_every": 2, "patience": 2,
                                 "batch_size": 1000, "max_eval_triples": 1000}


def pykeen_splits(name: str) -> tuple[Splits, int, int]:
    from pykeen.datasets import get_dataset

    dataset = get_dataset(dataset=name)
    assert dataset.validation is not None  # the bundled sets all have one
    splits = Splits(dataset.training.mapped_triples.long(),
                    dataset.validation.mapped_triples.long(),
                    dataset.testing.mapped_triples.long())
    return splits, dataset.num_entities, dataset.num_relations


def run(splits: Splits, num_nodes: int, num_rel: int, config: dict[str, Any]) -> dict[str, Any]:
    data = KGData(uids=[str(i) for i in range(num_nodes)],
                  relation_types=[str(i) for i in range(num_rel)],
                  edge_index=splits.train[:, [0, 2]].t(), edge_type=splits.train[:, 1])
    started = time.perf_counter()
    result = train_encoder(data, EncoderConfig(**config), splits=splits)
    both = result.test["both"]
    seconds = [float(e["seconds"]) for e in result.history]
    return {"mrr": round(both.mrr, 4), "hits_at_1": round(both.hits_at_1, 4),
            "hits_at_10": round(both.hits_at_10, 4),
            "valid_mrr": round(result.valid["both"].mrr, 4) if result.valid else None,
            "epochs": len(result.history), "best_epoch": result.best_epoch,
            "s_per_epoch": round(sum(seconds) / len(seconds), 2),
            "wall_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="*", default=["umls", "kinships"],
                        help="pykeen sets (none: only --findkg)")
    parser.add_argument("--findkg", action="store_true", help="add a FinDKG sample")
    parser.add_argument("--findkg-train", type=int, default=30_000,
                        help="training triples sampled from FinDKG's (earlier) train split")
    parser.add_argument("--rgcn", action="store_true", help="add R-GCN (block decomposition)")
    parser.add_argument("--epochs", type=int, default=None, help="override every set's epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS),
                        help=f"of {', '.join([*VARIANTS, *RGCN])}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    known_variants = {**VARIANTS, **RGCN}
    variants = {name: known_variants[name] for name in args.variants}
    if args.rgcn:
        variants.update(RGCN)

    sets: list[tuple[str, Splits, int, int, dict[str, Any]]] = []
    for name in args.sets:
        splits, n, r = pykeen_splits(name)
        sets.append((name, splits, n, r, dict(KGR_CONFIGS[name])))
    if args.findkg:
        splits, n, r, _ = findkg_splits(Settings().data_dir)
        train = subsample(splits.train, args.findkg_train)
        seen = torch.zeros(n, dtype=torch.bool)
        seen[train[:, 0]] = True
        seen[train[:, 2]] = True

        def known(t: torch.Tensor) -> torch.Tensor:  # later facts about entities it has seen
            return t[seen[t[:, 0]] & seen[t[:, 2]]]

        sample = Splits(train, subsample(known(splits.valid), 1000),
                        subsample(known(splits.test), 2000))
        sets.append(("findkg-sample", sample, n, r, dict(FINDKG_CONFIG)))

    rows: list[dict[str, Any]] = []
    for name, splits, n, r, base in sets:
        if args.epochs:
            base["epochs"] = args.epochs
        for variant, extra in variants.items():
            result = run(splits, n, r, {**base, **extra})
            rows.append({"set": name, "variant": variant, "config": {**base, **extra},
                         **result})
            print(f"  {name:<14} {variant:<15} MRR {result['mrr']:.4f}  "
                  f"{result['s_per_epoch']:.1f} s/epoch", flush=True)
            write(args, rows)  # after every run: a run cut short keeps what it measured

    print(f"\n{'set':<14} {'variant':<15} {'test MRR':>8} {'Hits@1':>7} {'Hits@10':>7} "
          f"{'valid MRR':>9} {'epochs':>6} {'best':>4} {'s/epoch':>7} {'vs table':>8}")
    for row in rows:
        table = next(x for x in rows if x["set"] == row["set"] and x["variant"] == "table")
        valid = f"{row['valid_mrr']:.4f}" if row["valid_mrr"] is not None else "-"
        print(f"{row['set']:<14} {row['variant']:<15} {row['mrr']:>8.4f} {row['hits_at_1']:>7.4f} "
              f"{row['hits_at_10']:>7.4f} {valid:>9} {row['epochs']:>6} {row['best_epoch']:>4} "
              f"{row['s_per_epoch']:>7.1f} {row['mrr'] - table['mrr']:>+8.4f}")
    print(f"\nwrote {args.out}")


def write(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": "bench/encoder_layers.py " + " ".join(sys.argv[1:]),
        "threads": args.threads, "torch": torch.__version__,
        "note": "s/epoch on a shared 2-core CPU (load average ~10 while measured): compare "
                "MRR; timings only within one run", "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
