"""Training the reasoner on labelled rows: the marginal likelihood of the paths that reach the
answers, early stopping on validation Hits@1.

MiniLM's bottom layers are frozen, so their output is computed once per question; each epoch
runs only the tuned top layers and the heads.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from fusion.model.graphdata import DomainGraph
from fusion.reasoner.model import PathReasoner, ReasonerConfig
from fusion.reasoner.supervision import Example, Reached, walk
from fusion.reasoner.vocab import Vocab

ProgressFn = Callable[[float, str], None]
VALIDATION_PATHS = 5000  # paths per validation question whose answers are ranked


@dataclass
class Encoded:
    """Questions through the frozen bottom: ``states[i]: [L_i, d]``."""

    states: list[torch.Tensor]

    @classmethod
    def of(cls, model: PathReasoner, tokenizer: Any, texts: Sequence[str],
           batch_size: int = 128) -> Encoded:
        out: list[torch.Tensor] = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True,
                              truncation=True, max_length=128, return_tensors="pt")
            states = model.encoder.bottom(batch["input_ids"], batch["attention_mask"])
            for i, n in enumerate(batch["attention_mask"].sum(1).tolist()):
                out.append(states[i, :n].clone())
        return cls(out)

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``([B, L, d], [B, L])`` padded states and mask of ``rows``."""
        length = max(self.states[r].shape[0] for r in rows)
        d = self.states[rows[0]].shape[1]
        states = torch.zeros(len(rows), length, d)
        mask = torch.zeros(len(rows), length, dtype=torch.long)
        for i, r in enumerate(rows):
            n = self.states[r].shape[0]
            states[i, :n] = self.states[r]
            mask[i, :n] = 1
        return states, mask


@dataclass
class Targets:
    """The candidate paths of a batch, flattened: ``question: [C]``, ``steps: [C, T]``,
    ``lengths: [C]``, ``types: [C]``, ``log_weight: [C]``."""

    question: torch.Tensor
    steps: torch.Tensor
    lengths: torch.Tensor
    types: torch.Tensor
    log_weight: torch.Tensor


def targets(examples: Sequence[Example], vocab: Vocab, max_hops: int) -> Targets:
    question, steps, lengths, types, weights = [], [], [], [], []
    for b, ex in enumerate(examples):
        for cand in ex.candidates:
            ids = vocab.path_ids(cand.steps, cand.answer_type)
            if ids is None or len(cand.steps) > max_hops:
                continue
            question.append(b)
            steps.append(ids[0] + [-1] * (max_hops - len(ids[0])))
            lengths.append(len(ids[0]))
            types.append(ids[1])
            weights.append(math.log(cand.weight))
    return Targets(torch.tensor(question), torch.tensor(steps).view(-1, max_hops),
                   torch.tensor(lengths), torch.tensor(types), torch.tensor(weights))


def marginal_nll(logp: torch.Tensor, question: torch.Tensor, n_questions: int) -> torch.Tensor:
    """``-mean_b log sum_{c of b} exp(logp_c)``: the paths of a question are alternatives (any
    of them explains its answers), so their probabilities add up. ``logp: [C]``."""
    peak = torch.full((n_questions,), float("-inf")).scatter_reduce(
        0, question, logp.detach(), reduce="amax")
    summed = torch.zeros(n_questions).index_add(0, question, (logp - peak[question]).exp())
    present = torch.isfinite(peak)
    return -(summed[present].log() + peak[present]).mean()


def answer_scores(model_out: Any, row: int, paths: Sequence[Reached], vocab: Vocab,
                  max_hops: int) -> dict[str, float]:
    """Each entity's probability of being reached: the sum over ``paths`` (as the served beam
    search ranks answers, ``fusion.serve.retrieval.rank_answers``)."""
    scores: dict[str, float] = {}
    for path in paths:
        ids = vocab.path_ids(path.steps, path.answer_type)
        if ids is None or len(path.steps) > max_hops:
            continue
        hop_ids, type_id = ids
        logp = float(model_out.length[row, len(hop_ids) - 1] + model_out.types[row, type_id])
        for t, h in enumerate(hop_ids):
            logp += float(model_out.hops[row, t, h])
        p = math.exp(logp)
        for uid in path.entities:
            scores[uid] = scores.get(uid, 0.0) + p
    return scores


@dataclass
class Fitted:
    model: PathReasoner
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def validation_hits(model: PathReasoner, encoded: Encoded, examples: Sequence[Example],
                    walks: Sequence[Sequence[Reached]], vocab: Vocab) -> float:
    """Hits@1 of ``examples`` with every path the graph has from their topics."""
    if not examples:
        return 0.0
    model.eval()
    hits = 0
    with torch.no_grad():
        for start in range(0, len(examples), 64):
            rows = list(range(start, min(start + 64, len(examples))))
            states, mask = encoded.batch(rows)
            out = model.heads(model.encoder.top(states, mask), mask)
            for i, r in enumerate(rows):
                scores = answer_scores(out, i, walks[r], vocab, model.max_hops)
                if scores:
                    top = max(scores.items(), key=lambda kv: (kv[1], kv[0]))[0]
                    hits += top in examples[r].answers
    return hits / len(examples)


def path_answer_scores(model: PathReasoner, tokenizer: Any, masked: Sequence[str],
                       topics: Sequence[str], graph: DomainGraph, vocab: Vocab,
                       cfg: ReasonerConfig, keep_topic: bool) -> list[dict[str, float]]:
    """Per question (``masked[i]``, from ``topics[i]``), each entity's probability of being
    reached, over every path the graph has from the topic (as ``validation_hits`` ranks)."""
    model.eval()
    encoded = Encoded.of(model, tokenizer, list(masked))
    out: list[dict[str, float]] = []
    with torch.no_grad():
        for start in range(0, len(masked), 64):
            rows = list(range(start, min(start + 64, len(masked))))
            states, mask = encoded.batch(rows)
            heads = model.heads(model.encoder.top(states, mask), mask)
            for i, r in enumerate(rows):
                paths = list(walk(graph, topics[r], cfg.max_hops, cfg.frontier_cap,
                                  keep_topic))[:VALIDATION_PATHS]
                out.append(answer_scores(heads, i, paths, vocab, model.max_hops))
    return out


def split(examples: list[Example], fraction: float, seed: int
          ) -> tuple[list[Example], list[Example]]:
    """Training and validation examples; none held out when there are too few."""
    if fraction <= 0 or len(examples) < 20:
        return examples, []
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, int(len(examples) * fraction))
    val = [examples[i] for i in sorted(order[:n_val])]
    train = [examples[i] for i in sorted(order[n_val:])]
    return train, val


def fit(model: PathReasoner, examples: list[Example], graph: DomainGraph, vocab: Vocab,
        cfg: ReasonerConfig, tokenizer: Any, progress: ProgressFn | None = None,
        keep_topic: bool = False) -> Fitted:
    """Train ``model`` in place and return it with the best validation state."""
    torch.manual_seed(cfg.seed)
    train, val = split(examples, cfg.validation_fraction, cfg.seed)
    if progress:
        progress(0.0, f"encoding {len(examples)} questions")
    enc_train = Encoded.of(model, tokenizer, [e.masked for e in train])
    enc_val = Encoded.of(model, tokenizer, [e.masked for e in val])
    walks = [list(walk(graph, e.topic, cfg.max_hops, cfg.frontier_cap, keep_topic))
             [:VALIDATION_PATHS]
             for e in val]
    optim = torch.optim.AdamW(model.trainable_groups(), weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total_steps = max(1, steps_per_epoch * cfg.epochs)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / max(1, steps_per_epoch)) *
        max(0.05, 1.0 - s / total_steps))
    best_hits, best_epoch = -1.0, 0
    best_state = copy.deepcopy(model.state_dict())
    history: list[dict[str, Any]] = []
    rng = random.Random(cfg.seed)
    started = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            rows = order[start:start + cfg.batch_size]
            tgt = targets([train[r] for r in rows], vocab, cfg.max_hops)
            if tgt.question.numel() == 0:
                continue
            states, mask = enc_train.batch(rows)
            out = model.heads(model.encoder.top(states, mask), mask)
            logp = out.path_logp(tgt.question, tgt.steps, tgt.lengths, tgt.types) + \
                tgt.log_weight
            loss = marginal_nll(logp, tgt.question, len(rows))
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optim.step()
            schedule.step()
            losses.append(float(loss.detach()))
        hits = validation_hits(model, enc_val, val, walks, vocab) if val else float("nan")
        mean_loss = round(sum(losses) / max(1, len(losses)), 5)
        row: dict[str, Any] = {"epoch": epoch, "loss": mean_loss,
               "val_hits@1": round(hits, 5) if val else None,
               "seconds": round(time.perf_counter() - started, 2)}
        history.append(row)
        if progress:
            progress(epoch / cfg.epochs, f"epoch {epoch}/{cfg.epochs}: loss {mean_loss:.4f}"
                     + (f", validation Hits@1 {hits:.3f}" if val else ""))
        score = hits if val else -mean_loss
        if score > best_hits:
            best_hits, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= cfg.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    metrics = {"n_train": len(train), "n_validation": len(val), "best_epoch": best_epoch,
               "val_hits@1": round(best_hits, 5) if val else None,
               "epochs_run": len(history),
               "seconds": round(time.perf_counter() - started, 2)}
    return Fitted(model, metrics, history)
