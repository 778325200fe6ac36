"""The trained reasoner as a ``fusion.retrieval.Scorer``: the beam search over the graph
executes its paths (bounded Neo4j reads, evidence paths) with its probabilities."""

from __future__ import annotations

import math
import threading
from typing import Any

import torch

from fusion.reasoner.learn import Vocab
from fusion.reasoner.model import PathReasoner, StepOutput
from fusion.retrieval import BeamItem, Scorer
from fusion.verbalize import STOP, Action

NEG_INF = float("-inf")


class StepScores:
    """One question's conditional log-probabilities for the beam search: at step ``t``
    (``t`` hops taken) a stop on type ``y`` scores ``log P(len = t) - log P(len >= t)`` plus
    the type's, and a hop ``log P(len > t) - log P(len >= t)`` plus the step's hop, so that a
    whole path scores ``log P(len) + sum log P(hop_t) + log P(type)``, as in training."""

    def __init__(self, out: StepOutput, vocab: Vocab) -> None:
        self.vocab = vocab
        self.hops = out.hops[0].tolist()  # [T][H]
        self.types = out.types[0].tolist()  # [Y]
        length = out.length[0].exp().tolist()  # P(len = k + 1)
        self.max_hops = len(length)
        # survive[t] = P(len >= t) for t = 0..T (t = 0: every path takes a first hop)
        survive = [1.0] + [sum(length[t - 1:]) for t in range(1, self.max_hops + 1)]
        self.stop = [NEG_INF] + [_log(length[t - 1]) - _log(survive[t])
                                 for t in range(1, self.max_hops + 1)]
        self.cont = [_log(survive[t + 1]) - _log(survive[t]) if t > 0 else 0.0
                     for t in range(self.max_hops)]

    def action(self, step: int, action: Action) -> float:
        if action[1] == STOP:
            type_id = self.vocab.type_index.get(action[0])
            if step == 0 or step > self.max_hops or type_id is None:
                return NEG_INF
            return self.stop[step] + self.types[type_id]
        hop_id = self.vocab.hop_index.get(action)
        if step >= self.max_hops or hop_id is None:
            return NEG_INF
        return self.cont[step] + self.hops[step][hop_id]

    def scorer(self) -> Scorer:
        def score(items: list[BeamItem], candidates: list[list[Action]]) -> list[list[float]]:
            return [[self.action(len(item.steps), a) for a in actions]
                    for item, actions in zip(items, candidates, strict=True)]
        return score


def _log(p: float) -> float:
    return math.log(p) if p > 0 else NEG_INF


class ReasonerRunner:
    """Reads questions with a trained ``PathReasoner`` (one at a time per process: the model's
    modules are shared by the API's threads)."""

    def __init__(self, model: PathReasoner, vocab: Vocab, tokenizer: Any) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.tokenizer = tokenizer
        self._lock = threading.Lock()

    def read(self, masked_questions: list[str]) -> list[StepScores]:
        if not masked_questions:
            return []
        batch = self.tokenizer(masked_questions, padding=True, truncation=True, max_length=128,
                               return_tensors="pt")
        with self._lock, torch.no_grad():
            out = self.model(batch["input_ids"], batch["attention_mask"])
        return [StepScores(StepOutput(out.hops[i:i + 1], out.length[i:i + 1],
                                      out.types[i:i + 1]), self.vocab)
                for i in range(len(masked_questions))]
