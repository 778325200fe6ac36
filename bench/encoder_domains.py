"""kgr's graph encoder against PyKEEN, in one run, on the built-in domains' graphs: HPO (the
medical domain as ``kgr migrate`` loads it, a seeded random 90/5/5 split), FinDKG (its
chronological split) and the KG-50 version of each (half of the triples removed at random with
the seed the QA benchmarks use; MRR on the removed triples).

Per graph, every run gets the same wall-clock training budget (``--budget``, scaled per graph):

* kgr: the served configuration for the graph's size (``EncoderConfig.for_graph``), with early
  stopping on validation MRR, as the plain ComplEx table (``num_layers=0``, the served default)
  and with one CompGCN layer (on HPO and FinDKG; the KG-50 runs use the variant that had the
  better VALIDATION MRR on the complete graph);
* PyKEEN: ComplEx, RotatE, TuckER and DistMult (sLCWA, one setting each, see ``PYKEEN_MODELS``),
  each trained until the same budget is spent; "pykeen_best" is the one with the best
  VALIDATION MRR. Hyperparameters and variants are chosen on validation, never on test.

Both sides are scored by the same evaluator (``graph.encoder.evaluate``: filtered against every
split, both sides, realistic ranks for ties) on the same test triples.

    KGR_DATA_DIR=/work/shared/data .venv/bin/python bench/encoder_domains.py   # ~30 min, 2 cores

Writes ``bench/results/encoder_domains.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.encoder_vs_pykeen import findkg_splits, hpo_splits, subsample  # noqa: E402
from core.settings import Settings  # noqa: E402
from graph.encoder import EncoderConfig, KGData, Splits, train_encoder  # noqa: E402
from graph.encoder.evaluate import FilterIndex, Metrics, evaluate  # noqa: E402
from graph.encoder.train import split_triples  # noqa: E402

warnings.filterwarnings("ignore")

RESULTS = Path(__file__).resolve().parent / "results" / "encoder_domains.json"
SEED = 0  # bench/qa_kg50.py and bench/qa_incomplete.py remove links with seed 0
# KG-50: 1% of the triples removed for early stopping, 49% removed and scored ("test")
KG50_VALID, KG50_TEST = 0.01, 0.49
VALID_SAMPLE = 1000  # validation triples used to choose a variant (and to early-stop kgr)

# kgr variants over the graph's served configuration
KGR_VARIANTS: dict[str, dict[str, Any]] = {
    "table": {"num_layers": 0},
    "compgcn-1": {"num_layers": 1, "layer": "compgcn"},
}

# One setting per PyKEEN model (a grid does not fit the 30-minute budget of the whole run):
# 200 reals per entity like kgr, sLCWA with 32 negatives per positive, Adam, batches of 1000.
PYKEEN_MODELS: dict[str, dict[str, Any]] = {
    "ComplEx": {"model_kwargs": {"embedding_dim": 100}, "loss": "softplus", "lr": 1e-2},
    "RotatE": {"model_kwargs": {"embedding_dim": 100}, "loss": "nssa",
               "loss_kwargs": {"margin": 9.0, "adversarial_temperature": 1.0}, "lr": 1e-2},
    "TuckER": {"model_kwargs": {"embedding_dim": 200, "relation_dim": 32},
               "loss": "softplus", "lr": 5e-3},
    "DistMult": {"model_kwargs": {"embedding_dim": 200}, "loss": "softplus", "lr": 1e-2},
}
PYKEEN_NEGATIVES, PYKEEN_BATCH = 32, 1000
DEFAULT_PYKEEN = ["ComplEx", "RotatE", "DistMult"]
# the budget per graph relative to HPO's (chosen so that the whole run fits 30 minutes)
DEFAULT_SCALE = {"hpo": 1.0, "findkg": 0.75, "hpo_kg50": 0.75, "findkg_kg50": 0.5}


@dataclass
class Graph:
    """One benchmark graph: its splits and where they come from."""

    name: str
    splits: Splits
    num_nodes: int
    num_relations: int
    budget_s: float
    note: str


class BudgetSpent(Exception):
    """Raised from a PyKEEN callback to end training at the wall-clock budget (PyKEEN's loop
    re-raises anything that is not a MemoryError or RuntimeError; the model keeps its state)."""


def kg50(name: str, triples: torch.Tensor, num_nodes: int, num_relations: int,
         budget_s: float, test_sample: int | None) -> Graph:
    """Half of ``triples`` removed with ``SEED`` (the way ``bench/qa_incomplete.py`` removes
    links: ``split_triples``, so no removed triple names an entity left without links)."""
    split = split_triples(triples, KG50_VALID, KG50_TEST, SEED)
    test = subsample(split.test, test_sample, SEED)
    note = (f"{split.valid.shape[0] + split.test.shape[0]} of {triples.shape[0]} triples "
            f"removed (seed {SEED}); {split.valid.shape[0]} of them early-stop kgr and choose "
            f"PyKEEN's best, the other {split.test.shape[0]} are the test set"
            + (f" (a seeded sample of {test.shape[0]} is scored)"
               if test.shape[0] < split.test.shape[0] else " (all scored)"))
    return Graph(name, Splits(split.train, split.valid, test), num_nodes, num_relations,
                 budget_s, note)


def load_graphs(args: argparse.Namespace) -> list[Graph]:
    graphs = []
    if {"hpo", "hpo_kg50"} & set(args.graphs):
        hpo, n, r, sizes = hpo_splits(full=True, seed=SEED)
    if {"findkg", "findkg_kg50"} & set(args.graphs):
        findkg, fn, fr, fsizes = findkg_splits(Settings().data_dir)
    if "hpo" in args.graphs:
        test = subsample(hpo.test, args.hpo_test_sample, SEED)
        graphs.append(Graph("hpo", Splits(hpo.train, hpo.valid, test), n, r,
                            args.budget * args.scale["hpo"],
                            f"{sizes}; random 90/5/5 split, seed {SEED}; "
                            f"{test.shape[0]} of the {hpo.test.shape[0]} test triples scored "
                            "(a seeded sample: scoring all 36,853 entities on a shared CPU)"))
    if "findkg" in args.graphs:
        graphs.append(Graph("findkg", findkg, fn, fr, args.budget * args.scale["findkg"],
                            f"{fsizes}; FinDKG's chronological split, facts de-duplicated"))
    if "hpo_kg50" in args.graphs:
        graphs.append(kg50("hpo_kg50", hpo.all(), n, r, args.budget * args.scale["hpo_kg50"],
                           args.kg50_test_sample))
    if "findkg_kg50" in args.graphs:
        # the union of FinDKG's splits (a fact seen in several weeks once), then a random half
        every = torch.cat([findkg.train, findkg.valid, findkg.test]).unique(dim=0)
        graphs.append(kg50("findkg_kg50", every, fn, fr,
                           args.budget * args.scale["findkg_kg50"], args.kg50_test_sample))
    return graphs


def metrics_row(test: Metrics, valid: Metrics, seconds: float, eval_s: float
                ) -> dict[str, Any]:
    return {"mrr": round(test.mrr, 4), "hits_at_1": round(test.hits_at_1, 4),
            "hits_at_10": round(test.hits_at_10, 4), "valid_mrr": round(valid.mrr, 4),
            "seconds": round(seconds, 1), "eval_seconds": round(eval_s, 1),
            "test_triples": test.count // 2}


def run_kgr(graph: Graph, variant: dict[str, Any], known: FilterIndex, valid: torch.Tensor
            ) -> dict[str, Any]:
    splits = Splits(graph.splits.train, valid, graph.splits.test)
    data = KGData(uids=[str(i) for i in range(graph.num_nodes)],
                  relation_types=[str(i) for i in range(graph.num_relations)],
                  edge_index=splits.train[:, [0, 2]].t(), edge_type=splits.train[:, 1])
    config = EncoderConfig.for_graph(
        graph.num_nodes, splits.train.shape[0], **{
            "epochs": 10_000, "eval_every": 1, "patience": 2, "max_eval_triples": None,
            "max_seconds": graph.budget_s, "seed": SEED, **variant})
    started = time.perf_counter()
    result = train_encoder(data, config, splits=splits)
    seconds = result.wall_s  # training and its validation, as budgeted
    eval_s = time.perf_counter() - started - seconds
    row = metrics_row(result.test["both"], result.valid["both"], seconds, eval_s)
    row.update(layers=config.num_layers, layer=config.layer if config.num_layers else None,
               epochs=len(result.history), best_epoch=result.best_epoch,
               history=[{k: (round(v, 4) if isinstance(v, float) else v)
                         for k, v in e.items()} for e in result.history],
               config=config.model_dump(exclude={"fanouts"}))
    return row


def run_pykeen(graph: Graph, model_name: str, known: FilterIndex, valid: torch.Tensor
               ) -> dict[str, Any]:
    from pykeen.losses import loss_resolver
    from pykeen.models import model_resolver
    from pykeen.training import SLCWATrainingLoop
    from pykeen.training.callbacks import TrainingCallback
    from pykeen.triples import TriplesFactory

    spec = PYKEEN_MODELS[model_name]
    factory = TriplesFactory(
        mapped_triples=graph.splits.train,
        entity_to_id={str(i): i for i in range(graph.num_nodes)},
        relation_to_id={str(i): i for i in range(graph.num_relations)},
        create_inverse_triples=True)  # reciprocal relations, as kgr trains
    torch.manual_seed(SEED)
    model = model_resolver.make(
        model_name, spec["model_kwargs"], triples_factory=factory, random_seed=SEED,
        loss=loss_resolver.make(spec["loss"], spec.get("loss_kwargs")))
    optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    loop = SLCWATrainingLoop(model=model, triples_factory=factory, optimizer=optimizer,
                             negative_sampler_kwargs={"num_negs_per_pos": PYKEEN_NEGATIVES})
    started = time.perf_counter()
    deadline = started + graph.budget_s
    batches = [0]

    class Deadline(TrainingCallback):
        def post_batch(self, epoch: int, batch: Any, **kwargs: Any) -> None:
            batches[0] += 1
            if time.perf_counter() >= deadline:
                raise BudgetSpent

    try:
        loop.train(triples_factory=factory, num_epochs=10_000, batch_size=PYKEEN_BATCH,
                   callbacks=[Deadline()], use_tqdm=False, use_tqdm_batch=False)
    except BudgetSpent:
        pass
    seconds = time.perf_counter() - started
    model.eval()

    fast = fast_scorer(model, model_name)

    def tails(h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        if fast is not None:  # PyKEEN stores r's forward direction at 2r, its inverse at 2r+1
            return fast(h, 2 * r)
        return model.predict_t(torch.stack([h, r], 1))

    def heads(r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if fast is not None:
            return fast(t, 2 * r + 1)
        return model.predict_h(torch.stack([r, t], 1))

    eval_started = time.perf_counter()
    with torch.no_grad():
        check_scorer(model, tails, heads, valid[:8])
        valid_m = evaluate(tails, heads, valid, known)["both"]
        test_m = evaluate(tails, heads, graph.splits.test, known)["both"]
    row = metrics_row(test_m, valid_m, seconds, time.perf_counter() - eval_started)
    row.update(model=model_name, batches=batches[0], fast_scorer=fast is not None,
               epochs=round(batches[0] / max(1, -(-factory.num_triples // PYKEEN_BATCH)), 2),
               setting={k: v for k, v in spec.items()})
    return row


def fast_scorer(model: Any, name: str) -> Any:
    """``(entity, relation index) -> [B, N]`` scores of every tail, as one matrix product.
    PyKEEN's ``predict_t`` broadcasts DistMult's and RotatE's interactions to a ``[B, N, d]``
    tensor, minutes per graph here; these are the same functions (``check_scorer`` compares
    them with ``predict_t``). None for TuckER, whose ``predict_t`` is already a product."""
    if name not in ("DistMult", "ComplEx", "RotatE"):
        return None
    entities = model.entity_representations[0]
    relations = model.relation_representations[0]

    def score(e: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        every = entities(indices=None)
        a = entities(indices=e) * relations(indices=r)
        if name == "DistMult":  # sum(h * r * t)
            return a @ every.t()
        if name == "ComplEx":  # Re(sum(h * r * conj(t)))
            return (a @ every.conj().t()).real
        # RotatE: -||h * r - t||_2 = -sqrt(||a||^2 + ||t||^2 - 2 Re(a . conj(t)))
        dot = (a @ every.conj().t()).real
        sq = (a.abs() ** 2).sum(-1, keepdim=True) + (every.abs() ** 2).sum(-1)[None, :]
        return -(sq - 2 * dot).clamp_min(0.0).sqrt()

    return score


def check_scorer(model: Any, tails: Any, heads: Any, triples: torch.Tensor) -> None:
    """The bench's scores equal PyKEEN's own ``predict_t`` / ``predict_h`` on a few triples."""
    h, r, t = triples[:, 0], triples[:, 1], triples[:, 2]
    own_t = model.predict_t(torch.stack([h, r], 1))
    own_h = model.predict_h(torch.stack([r, t], 1))
    for ours, own in ((tails(h, r), own_t), (heads(r, t), own_h)):
        if not torch.allclose(ours.float(), own.float(), rtol=1e-3, atol=1e-3):
            raise AssertionError(f"scores differ from PyKEEN's: max "
                                 f"{float((ours - own).abs().max())}")


def bench_graph(graph: Graph, kgr_variants: list[str], pykeen_models: list[str]
                ) -> dict[str, Any]:
    known = FilterIndex(graph.splits.all(), graph.num_relations)
    valid = subsample(graph.splits.valid, VALID_SAMPLE, SEED)
    kgr_rows: dict[str, dict[str, Any]] = {}
    for name in kgr_variants:
        kgr_rows[name] = run_kgr(graph, KGR_VARIANTS[name], known, valid)
        print(f"  {graph.name:<12} kgr {name:<10} MRR {kgr_rows[name]['mrr']:.4f} "
              f"(valid {kgr_rows[name]['valid_mrr']:.4f}) in {kgr_rows[name]['seconds']:.0f}s, "
              f"{kgr_rows[name]['epochs']} epochs; scored in {kgr_rows[name]['eval_seconds']:.0f}s",
              flush=True)
    py_rows: dict[str, dict[str, Any]] = {}
    for name in pykeen_models:
        py_rows[name] = run_pykeen(graph, name, known, valid)
        print(f"  {graph.name:<12} PyKEEN {name:<8} MRR {py_rows[name]['mrr']:.4f} "
              f"(valid {py_rows[name]['valid_mrr']:.4f}) in {py_rows[name]['seconds']:.0f}s, "
              f"{py_rows[name]['epochs']} epochs; scored in {py_rows[name]['eval_seconds']:.0f}s",
              flush=True)
    kgr_name = max(kgr_rows, key=lambda k: kgr_rows[k]["valid_mrr"])  # chosen on validation
    kgr = kgr_rows[kgr_name]
    entry: dict[str, Any] = {
        "kgr": {"mrr": kgr["mrr"], "seconds": kgr["seconds"], "layers": kgr["layers"],
                "variant": kgr_name, "hits_at_10": kgr["hits_at_10"]},
        "kgr_variants": kgr_rows,
        "graph": graph.note, "budget_s": graph.budget_s,
        "train_triples": int(graph.splits.train.shape[0]),
        "valid_triples_scored": int(valid.shape[0]),
        "test_triples_scored": int(graph.splits.test.shape[0]),
    }
    if py_rows:
        best = max(py_rows, key=lambda k: py_rows[k]["valid_mrr"])  # chosen on validation
        entry["pykeen_best"] = {"model": best, "mrr": py_rows[best]["mrr"],
                                "seconds": py_rows[best]["seconds"],
                                "hits_at_10": py_rows[best]["hits_at_10"]}
        entry["pykeen_models"] = py_rows
        entry["pykeen_search_seconds"] = round(sum(r["seconds"] for r in py_rows.values()), 1)
        entry["mrr_ratio"] = round(kgr["mrr"] / max(py_rows[best]["mrr"], 1e-9), 3)
        entry["seconds_ratio"] = round(kgr["seconds"] / max(py_rows[best]["seconds"], 1e-9), 3)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", nargs="+",
                        default=["hpo", "findkg", "hpo_kg50", "findkg_kg50"])
    parser.add_argument("--budget", type=float, default=60.0,
                        help="training seconds per run on HPO (scaled for the others)")
    parser.add_argument("--scale", type=json.loads,
                        default=DEFAULT_SCALE,
                        help="budget multiplier per graph, as JSON")
    parser.add_argument("--hpo-test-sample", type=int, default=5000,
                        help="HPO test triples scored (a seeded sample)")
    parser.add_argument("--kg50-test-sample", type=int, default=5000,
                        help="removed triples scored on a KG-50 graph (a seeded sample)")
    parser.add_argument("--pykeen", nargs="*", default=DEFAULT_PYKEEN,
                        help=f"of {', '.join(PYKEEN_MODELS)}; TuckER is left out by default: "
                        "a smoke run on FinDKG with a 2-second budget did not finish scoring it "
                        "in 3 minutes on the shared CPU")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.scale = {**DEFAULT_SCALE, **args.scale}
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_before = os.getloadavg()
    out: dict[str, Any] = {}
    chosen_layers: dict[str, str] = {}
    for graph in load_graphs(args):
        base = graph.name.removesuffix("_kg50")
        # KG-50: the variant the complete graph's validation chose (table if it did not run)
        variants = [chosen_layers.get(base, "table")] if graph.name.endswith("_kg50") \
            else list(KGR_VARIANTS)
        out[graph.name] = bench_graph(graph, variants, args.pykeen)
        chosen_layers[graph.name] = out[graph.name]["kgr"]["variant"]
        out[graph.name]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        write(args, out, started, load_before)
    print(f"\n{'graph':<12} {'kgr':>7} {'layers':>6} {'s':>6} | {'PyKEEN best':>11} {'MRR':>7} "
          f"{'s':>6} | {'MRR x':>6} {'time x':>6}")
    for name, e in out.items():
        p = e.get("pykeen_best", {})
        print(f"{name:<12} {e['kgr']['mrr']:>7.4f} {e['kgr']['layers']:>6} "
              f"{e['kgr']['seconds']:>6.0f} | {p.get('model', '-'):>11} {p.get('mrr', 0):>7.4f} "
              f"{p.get('seconds', 0):>6.0f} | {e.get('mrr_ratio', 0):>6.3f} "
              f"{e.get('seconds_ratio', 0):>6.3f}")
    print(f"\nwrote {args.out} in {time.perf_counter() - started:.0f}s")


def write(args: argparse.Namespace, out: dict[str, Any], started: float,
          load_before: tuple[float, float, float]) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"command": "bench/encoder_domains.py " + " ".join(sys.argv[1:]),
            "threads": args.threads, "torch": torch.__version__,
            "wall_s": round(time.perf_counter() - started, 1),
            "load_average_before": [round(x, 2) for x in load_before],
            "nproc": os.cpu_count(), "pykeen_models_run": args.pykeen,
            "left_out": [m for m in PYKEEN_MODELS if m not in args.pykeen],
            "note": "seconds = training wall time under the same budget per run (kgr's "
                    "includes its per-epoch validation); variants and PyKEEN's best chosen on "
                    "validation MRR; MRR = filtered, both sides, realistic ranks, the same "
                    "evaluator for both tools"}
    args.out.write_text(json.dumps({**out, "meta": meta}, indent=2) + "\n")


if __name__ == "__main__":
    main()
