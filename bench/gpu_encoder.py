"""Encoder training speed, peak memory and test MRR on a CUDA GPU (when present) and on the CPU,
side by side, in one run (a few minutes; well under 10).

    .venv/bin/python bench/gpu_encoder.py
    .venv/bin/python bench/gpu_encoder.py --nodes 50000 --edges 1000000 --dim 400
    .venv/bin/python bench/gpu_encoder.py --nodes 300 --edges 3000 --seconds 2   # a smoke run

A synthetic graph (seeded) of ``--nodes`` entities, ``--relations`` types and ``--edges``
triples is trained with the default 1-N ComplEx setting and with R-GCN layers; each
configuration runs for at most ``--seconds`` per device (the CPU figure is extrapolated from
the steps it finished), and reports epochs/s, steps/s and peak memory (CUDA: allocator peak;
CPU: the process's peak resident set). Then the same configuration (``--mrr-layers``) is
trained for ``--mrr-epochs`` full epochs on each device (GPU: bf16 AMP) on a seeded 90/5/5 split,
and the seconds per epoch and the filtered test MRR are printed side by side: AMP should not
cost quality. ``--json`` writes every figure to a file.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graph.encoder import EncoderConfig, KGData, split_triples, train_encoder  # noqa: E402
from graph.encoder.model import KGEncoder  # noqa: E402
from graph.encoder.train import build_model, make_optimizer, with_reciprocals  # noqa: E402

warnings.filterwarnings("ignore")


def synthetic(nodes: int, relations: int, edges: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    # a skewed (power-law-ish) degree distribution, like real knowledge graphs
    weights = 1.0 / torch.arange(1, nodes + 1, dtype=torch.float) ** 0.8
    heads = torch.multinomial(weights, edges, replacement=True, generator=gen)
    tails = torch.multinomial(weights, edges, replacement=True, generator=gen)
    rels = torch.randint(0, relations, (edges,), generator=gen)
    return torch.stack([heads, rels, tails], 1)


def measure(device: torch.device, triples: torch.Tensor, nodes: int, relations: int,
            config: EncoderConfig, seconds: float) -> dict[str, Any]:
    model = build_model(config, nodes, relations).to(device)
    optimizer = make_optimizer(model, config)
    queries = with_reciprocals(triples, relations).to(device)
    graph = None
    if config.num_layers:
        ei, et = KGEncoder.message_graph(torch.stack([triples[:, 0], triples[:, 2]]),
                                         triples[:, 1], relations)
        graph = (ei.to(device), et.to(device))
    steps_per_epoch = (queries.shape[0] + config.batch_size - 1) // config.batch_size
    use_amp = device.type == "cuda" and config.amp
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gen = torch.Generator().manual_seed(0)
    steps, warmup, started = 0, 2, 0.0
    edge_index, edge_type = graph if graph is not None else (None, None)
    while True:
        if steps == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
        idx = torch.randint(0, queries.shape[0], (config.batch_size,), generator=gen).to(device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = model(queries[idx], None, edge_index, edge_type, n3=config.n3)
        (loss / config.batch_size).backward()
        optimizer.step()
        steps += 1
        if steps > warmup and (time.perf_counter() - started > seconds
                               or steps - warmup >= steps_per_epoch * 3):
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started
    timed = steps - warmup
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"device": device.type, "steps_per_s": timed / elapsed,
            "epochs_per_s": timed / elapsed / steps_per_epoch, "peak_mb": peak_mb,
            "rss_before_mb": rss_before, "steps_timed": timed, "steps_per_epoch": steps_per_epoch}


def train_and_score(device: torch.device, triples: torch.Tensor, nodes: int, relations: int,
                    config: EncoderConfig) -> dict[str, Any]:
    """Full epochs on ``device`` (the training path kgr uses: AMP on CUDA), then the filtered
    test MRR of the best validation model; the split is the same on every device."""
    data = KGData(uids=[str(i) for i in range(nodes)],
                  relation_types=[str(i) for i in range(relations)],
                  edge_index=triples[:, [0, 2]].t().contiguous(), edge_type=triples[:, 1])
    splits = split_triples(data.triples(), 0.05, 0.05, 0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result = train_encoder(data, config.model_copy(update={"device": device.type}),
                           splits=splits)
    seconds = [float(e["seconds"]) for e in result.history]
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"device": device.type, "s_per_epoch": sum(seconds) / len(seconds),
            "epochs": len(seconds), "test_mrr": result.test["both"].mrr,
            "test_hits_at_10": result.test["both"].hits_at_10, "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--relations", type=int, default=20)
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--layers", default="0,1", help="R-GCN layer counts to measure")
    parser.add_argument("--seconds", type=float, default=40.0,
                        help="time budget per configuration and device")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mrr-layers", default="0",
                        help="layer counts trained to the end for the MRR comparison")
    parser.add_argument("--mrr-epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.insert(0, torch.device("cuda"))
        print(f"CUDA device: {torch.cuda.get_device_name(0)}")
    else:
        print("no CUDA device: CPU figures only")
    triples = synthetic(args.nodes, args.relations, args.edges)
    print(f"graph: {args.nodes} nodes, {args.relations} relations, {args.edges} edges; "
          f"dim {args.dim}, batch {args.batch_size}, {args.threads} CPU threads")
    rows = []
    for layers in [int(x) for x in args.layers.split(",") if x]:
        config = EncoderConfig(dim=args.dim, batch_size=args.batch_size, num_layers=layers,
                               num_bases=4 if layers else None,
                               optimizer="adam" if layers else "adagrad",
                               lr=1e-3 if layers else 0.1)
        results = {d.type: measure(d, triples, args.nodes, args.relations, config, args.seconds)
                   for d in devices}
        rows.append((layers, results))
        for r in results.values():
            print(f"  layers={layers} {r['device']}: {r['epochs_per_s']:.3g} epochs/s "
                  f"({r['steps_per_s']:.3g} steps/s, {r['steps_timed']} timed steps), "
                  f"peak {r['peak_mb']:.0f} MB", flush=True)
    print()
    print(f"{'R-GCN layers':>12} | {'GPU ep/s':>9} {'GPU peak MB':>11} | {'CPU ep/s':>9} "
          f"{'CPU peak RSS MB':>15} | {'speed-up':>8}")
    for layers, results in rows:
        cpu, gpu = results["cpu"], results.get("cuda")
        if gpu:
            print(f"{layers:>12} | {gpu['epochs_per_s']:>9.3g} {gpu['peak_mb']:>11.0f} | "
                  f"{cpu['epochs_per_s']:>9.3g} {cpu['peak_mb']:>15.0f} | "
                  f"{gpu['epochs_per_s'] / cpu['epochs_per_s']:>8.1f}x")
        else:
            print(f"{layers:>12} | {'-':>9} {'-':>11} | {cpu['epochs_per_s']:>9.3g} "
                  f"{cpu['peak_mb']:>15.0f} | {'no CUDA':>8}")

    trained = []
    for layers in [int(x) for x in args.mrr_layers.split(",") if x]:
        config = EncoderConfig(dim=args.dim, batch_size=args.batch_size, num_layers=layers,
                               num_bases=4 if layers else None,
                               optimizer="adam" if layers else "adagrad",
                               lr=1e-3 if layers else 0.1, epochs=args.mrr_epochs,
                               eval_every=args.mrr_epochs, max_eval_triples=1000)
        for device in devices:
            run = train_and_score(device, triples, args.nodes, args.relations, config)
            trained.append({"layers": layers, **run})
            print(f"  layers={layers} {device.type}: {run['s_per_epoch']:.2f} s/epoch over "
                  f"{run['epochs']} epochs, test MRR {run['test_mrr']:.4f}, "
                  f"peak {run['peak_mb']:.0f} MB", flush=True)
    print()
    print(f"{'layers':>6} {'device':>6} | {'s/epoch':>8} {'peak MB':>8} | {'test MRR':>8} "
          f"{'Hits@10':>8}")
    for run in trained:
        print(f"{run['layers']:>6} {run['device']:>6} | {run['s_per_epoch']:>8.2f} "
              f"{run['peak_mb']:>8.0f} | {run['test_mrr']:>8.4f} {run['test_hits_at_10']:>8.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "args": {k: str(v) for k, v in vars(args).items()},
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "speed": [{"layers": layers, **results} for layers, results in rows],
            "trained": trained}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
