"""Training: model selection splits, gold paths, schedules and hyperparameters
(fusion.learn.train). No
database."""

from __future__ import annotations

import math
import random

import pytest
import torch

from fusion.language.parse import MAX_STEPS, PathHints
from fusion.language.verbalize import phrasing_choices
from fusion.learn.train import Prepared, epoch_lr, split_validation, validation_phrasing
from fusion.model.config import FEW_EXAMPLES, MANY_EXAMPLES, TrainConfig
from fusion.model.graphdata import DomainGraph
from fusion.serve.inference import QuestionContext


def _prepared(wording: tuple[tuple[tuple[str, str], int], ...] | None, hops: int) -> Prepared:
    ctx = QuestionContext("q", torch.zeros(1, 384), torch.ones(1, dtype=torch.bool),
                          torch.zeros(384), torch.zeros(1, 2, dtype=torch.long))
    return Prepared("q", ctx, "t", ["t"], "Disease", [0], [[0]], {"a"}, hops,
                    torch.zeros(MAX_STEPS, 1), torch.ones(MAX_STEPS, 1, dtype=torch.bool),
                    torch.zeros(MAX_STEPS, 384), PathHints(), [["t"]], wording)


def test_model_selection_splits_at_random_or_by_wording() -> None:
    steps = [("HAS_PHENOTYPE", "out"), ("IS_A", "in"), ("ASSOCIATED_WITH", "in")]
    examples = []
    for i in range(60):
        hops = 1 + i % 3
        path = steps[:hops]
        wording = []
        for k, s in enumerate(path):
            choices = phrasing_choices(s, "train", nested=hops > 1)
            wording.append((s, choices[(i // 3 + k) % len(choices)]))
        examples.append(_prepared(tuple(wording), hops))
    held = {s: validation_phrasing(s) for s in steps}
    assert all(held[s] in phrasing_choices(s, "train", nested=True) for s in steps)
    splits, how = split_validation(examples, TrainConfig(max_val=10, validation="phrasing"),
                                   random.Random(0))
    assert how == "phrasing" and len(splits) == 1
    train, val = splits[0]
    assert len(val) == 10 and {e.hops for e in val} == {1, 2, 3}
    assert all(e.uses_validation_phrasing() for e in val)
    assert train and not any(e.uses_validation_phrasing() for e in train)
    # the default split of the same rows is random: every phrasing stays in training
    splits, how = split_validation(examples, TrainConfig(kfold_below=40, max_val=10),
                                   random.Random(0))
    assert how == "random" and len(splits[0][1]) == 6
    assert any(e.uses_validation_phrasing() for e in splits[0][0])
    # rows without wording (a user's file): k folds when few, else one random split
    plain = [_prepared(None, 1) for _ in range(50)]
    splits, how = split_validation(plain, TrainConfig(folds=5), random.Random(0))
    assert how == "k-fold" and len(splits) == 5
    for train, val in splits:
        assert len(val) == 10 and len(train) == 40 and not {id(e) for e in train} & \
            {id(e) for e in val}
    assert sorted(id(e) for _, val in splits for e in val) == sorted(id(e) for e in plain)
    splits, how = split_validation(plain, TrainConfig(kfold_below=40), random.Random(0))
    assert how == "random" and len(splits) == 1
    train, val = splits[0]
    assert len(val) == 5 and len(train) == 45


def test_a_path_inferred_from_answers_is_the_one_the_question_asks() -> None:
    # Jane Roe both controls and invests in Acme: the answers alone cannot tell the two paths
    # apart, the question can; where the answers do tell them apart, they decide
    from fusion.learn.train import prepare
    from fusion.model.space import ActionSpace

    nodes = {"f:acme": ("Acme Corp", "Company"), "f:jane": ("Jane Roe", "Person"),
             "f:bob": ("Bob Poe", "Person"), "f:zed": ("Zed Bank", "Company")}
    graph = DomainGraph("f", names={u: n for u, (n, _) in nodes.items()},
                        types={u: t for u, (_, t) in nodes.items()})
    for head, rel, tail in [("f:jane", "CONTROL", "f:acme"), ("f:jane", "INVESTS_IN", "f:acme"),
                            ("f:bob", "CONTROL", "f:zed"), ("f:bob", "INVESTS_IN", "f:zed"),
                            ("f:jane", "INVESTS_IN", "f:zed")]:
        graph.adj.setdefault(head, {}).setdefault((rel, "out"), []).append(tail)
        graph.adj.setdefault(tail, {}).setdefault((rel, "in"), []).append(head)
    space = ActionSpace.build(["CONTROL", "INVESTS_IN"], ["Company", "Person"])
    rows = [{"question": "Who is in charge of Acme Corp?", "answers": ["Jane Roe"]},
            {"question": "Which people put money into Acme Corp?", "answers": ["Jane Roe"]},
            {"question": "Which people control Zed Bank?", "answers": ["Bob Poe", "Jane Roe"]}]
    examples, skipped = prepare(rows, graph, space, TrainConfig())
    assert skipped == 0
    paths = [[space.actions[i] for i in e.gold] for e in examples]
    assert paths[0] == [("CONTROL", "in"), ("Person", "stop")]
    assert paths[1] == [("INVESTS_IN", "in"), ("Person", "stop")]
    # only INVESTS_IN reaches both answers, whatever the question says
    assert paths[2] == [("INVESTS_IN", "in"), ("Person", "stop")]


def test_cosine_schedule_decays_from_the_learning_rate_towards_zero() -> None:
    cfg = TrainConfig(lr=0.002, epochs=4, lr_schedule="cosine")
    by_hand = [0.002 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert [epoch_lr(cfg, e) for e in range(4)] == pytest.approx(by_hand)
    assert epoch_lr(cfg, 0) == pytest.approx(0.002) and epoch_lr(cfg, 3) < 0.0003
    assert epoch_lr(cfg, 9) == pytest.approx(0.0)  # past the planned epochs: no rise again
    flat = cfg.model_copy(update={"lr_schedule": "constant"})
    assert {epoch_lr(flat, e) for e in range(6)} == {0.002}
    with pytest.raises(ValueError):
        epoch_lr(TrainConfig(), 0)  # unresolved: the schedule depends on the data size


def test_unset_hyperparameters_follow_the_size_of_the_training_set() -> None:
    cfg = TrainConfig(kfold_below=200)
    many, few = cfg.resolved(1800), cfg.resolved(50)
    for resolved, defaults in ((many, MANY_EXAMPLES), (few, FEW_EXAMPLES)):
        assert {k: getattr(resolved, k) for k in defaults} == defaults
    assert many.lr != few.lr and many.patience != few.patience
    # what the caller set stays
    mine = TrainConfig(epochs=3, lr=0.01).resolved(1800)
    assert (mine.epochs, mine.lr, mine.lr_schedule) == (3, 0.01, "cosine")
    assert cfg.epochs is None  # resolved() copies
