"""Per-epoch validation Hits@1 beside held-out-wording Hits@1 of one QA text head.

What model selection sees (validation Hits@1 on the split ``TrainConfig.validation`` makes)
printed beside what it is meant to predict (Hits@1 per hop on generated questions in the
held-out phrasings and frames), after every training epoch of one run (no refit). The comments
on ``fusion.model.config.MANY_EXAMPLES`` and ``TrainConfig.validation`` quote its output. Both are
measured with the in-memory beam search from the gold topic entities (no linking), so the
levels sit a little apart from ``bench/qa_quality.py``'s.

    .venv/bin/python bench/qa_epoch_curve.py --domain medical --seed 1 \
        --train-config '{"lr": 0.001, "lr_schedule": "cosine", "epochs": 10}'
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.settings import get_settings  # noqa: E402
from fusion.learn.questions import generate_splits  # noqa: E402
from fusion.learn.train import (
    Prepared,
    _new_model,
    _set_lr,
    _train_epoch,
    epoch_lr,
    prepare,
    split_validation,
    validation_hits,
)
from fusion.model.config import TrainConfig
from fusion.model.graphdata import DomainGraph  # noqa: E402
from fusion.model.space import ActionSpace  # noqa: E402
from graph.driver import make_driver  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain", default="medical")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-per-hop", type=int, default=600)
    parser.add_argument("--eval-per-hop", type=int, default=150)
    parser.add_argument("--train-config", type=json.loads, default={})
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = get_settings()
    driver = make_driver(settings)
    graph = DomainGraph.load(driver, settings.neo4j_database, args.domain)
    train_rows, eval_rows = generate_splits(graph, args.train_per_hop, args.eval_per_hop, 0)
    space = ActionSpace.build(graph.relation_types(), graph.entity_types(), "train")
    cfg = TrainConfig(**{"wording": "train", **args.train_config, "seed": args.seed})
    examples, _ = prepare(train_rows, graph, space, cfg)
    cfg = cfg.resolved(len(examples))
    held_out, _ = prepare(eval_rows, graph, space, cfg)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    splits, how = split_validation(examples, cfg, rng)
    train, val = splits[0]
    print(f"[{args.domain}] seed {cfg.seed}: {how} split, {len(train)} train, {len(val)} "
          f"validation, {len(held_out)} held-out; lr {cfg.lr} {cfg.lr_schedule}", flush=True)
    model = _new_model(cfg, 0, None)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr or 0.0,
                              weight_decay=cfg.weight_decay)
    by_hops: dict[int, list[Prepared]] = {}
    for e in held_out:
        by_hops.setdefault(e.hops, []).append(e)

    def report(epoch: int) -> None:
        val_hits = validation_hits(model, space, None, val, graph, cfg)[0]
        hops = {h: round(validation_hits(model, space, None, rows, graph, cfg)[0], 3)
                for h, rows in sorted(by_hops.items())}
        print(json.dumps({"epoch": epoch, "validation": round(val_hits, 3),
                          "held_out": hops}), flush=True)

    report(0)
    for epoch in range(1, (cfg.epochs or 0) + 1):
        _set_lr(optim, epoch_lr(cfg, epoch - 1))
        _train_epoch(model, optim, train, space, None, None, cfg.batch_size, rng)
        report(epoch)
    driver.close()


if __name__ == "__main__":
    main()
