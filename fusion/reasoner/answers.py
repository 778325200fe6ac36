"""An answer scorer over the graph encoder's entity embeddings (EmbedKGQA-style), fused with
the reasoner's path evidence.

The reasoner can only answer with what a path of recorded links reaches. When the graph is
incomplete, the link a question needs may be missing; this scorer ranks every entity of the
domain from the question and its topic alone, in the encoder's embedding space, so an answer
whose link is missing can still be found. It learns from the same labelled rows as the
reasoner, including the rows no path explains (a question whose answer the graph does not
link to its topic still teaches which entity it asks for).

The served answer combines the two: ``w * p_path + (1 - w) * p_embedding``, with the weight
``w`` chosen on rows held out of both models' training. On a complete graph the paths explain
the answers and ``w`` comes out near 1; the fewer the recorded links, the more the embeddings
carry. Answers that only the embeddings give are marked as inferred, with their score.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import Tensor, nn


class AnswerScorerConfig(BaseModel):
    """Hyperparameters of the answer scorer; set once, not tuned on any evaluation set."""

    hidden: int = Field(default=512, ge=8)
    epochs: int = Field(default=30, ge=1)
    patience: int = Field(default=5, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=64, ge=1)
    validation_fraction: float = Field(default=0.1, ge=0.0, lt=0.5)
    # candidate weights of the path evidence; ties go to the larger weight (paths explain)
    weights: list[float] = Field(default_factory=lambda: [i / 10 for i in range(11)])
    # entities the embeddings add to the path answers, before the weights rank them all
    top_k: int = Field(default=10, ge=1)
    seed: int = 0


class AnswerScorer(nn.Module):
    """``score(q, h, e) = Re(<h, r(q), conj(e)>) + <p(q), e>``.

    ``r(q)`` maps a question vector into the encoder's relation space (a complex vector: the
    first half of the entity vectors is read as the real part, the second as the imaginary,
    as ComplEx stores them); ``p(q)`` scores an entity by the question alone, which is what a
    question whose topic has no links left can still be answered by (its answer type, the
    values such questions have). The entity vectors are the encoder's, frozen.

    ``question_dim``: width of the question vectors; ``entity_dim``: of the entity vectors
    (even); ``hidden``: of the relation map's hidden layer.
    """

    def __init__(self, question_dim: int, entity_dim: int, hidden: int = 512) -> None:
        super().__init__()
        if entity_dim % 2:
            raise ValueError(f"entity vectors need an even width, not {entity_dim}")
        self.question_dim = question_dim
        self.entity_dim = entity_dim
        self.hidden = hidden
        self.relation = nn.Sequential(nn.Linear(question_dim, hidden), nn.ReLU(),
                                      nn.Linear(hidden, entity_dim))
        self.prior = nn.Linear(question_dim, entity_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.relation[0], self.relation[2], self.prior):
            assert isinstance(layer, nn.Linear)
            layer.reset_parameters()

    def forward(self, questions: Tensor, heads: Tensor, entities: Tensor) -> Tensor:
        """``questions: [B, question_dim]``, ``heads: [B, entity_dim]`` (the topics' vectors),
        ``entities: [N, entity_dim]`` -> scores ``[B, N]``."""
        half = self.entity_dim // 2
        rel = self.relation(questions)
        h_re, h_im = heads[:, :half], heads[:, half:]
        r_re, r_im = rel[:, :half], rel[:, half:]
        hr_re = h_re * r_re - h_im * r_im
        hr_im = h_re * r_im + h_im * r_re
        bilinear = hr_re @ entities[:, :half].T + hr_im @ entities[:, half:].T
        return bilinear + self.prior(questions) @ entities.T


def reference_scores(model: AnswerScorer, questions: Tensor, heads: Tensor,
                     entities: Tensor) -> Tensor:
    """``AnswerScorer.forward`` written with complex tensors, one pair at a time (for tests)."""
    half = model.entity_dim // 2
    out = torch.empty(questions.shape[0], entities.shape[0])
    with torch.no_grad():
        rel = model.relation(questions)
        prior = model.prior(questions)
    for b in range(questions.shape[0]):
        h = torch.complex(heads[b, :half], heads[b, half:])
        r = torch.complex(rel[b, :half], rel[b, half:])
        for n in range(entities.shape[0]):
            e = torch.complex(entities[n, :half], entities[n, half:])
            out[b, n] = (h * r * e.conj()).sum().real + prior[b] @ entities[n]
    return out


@dataclass(frozen=True)
class ScorerRow:
    """A labelled row in the encoder's index: its question vector's row, topic, answers."""

    question: int
    topic: int
    answers: tuple[int, ...]


@dataclass
class FittedScorer:
    model: AnswerScorer
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def _hits(model: AnswerScorer, vectors: Tensor, rows: Sequence[ScorerRow],
          entities: Tensor) -> float:
    if not rows:
        return 0.0
    model.eval()
    hits = 0
    with torch.no_grad():
        for start in range(0, len(rows), 256):
            chunk = rows[start:start + 256]
            scores = model(vectors[[r.question for r in chunk]],
                           entities[[r.topic for r in chunk]], entities)
            hits += sum(int(top) in r.answers
                        for top, r in zip(scores.argmax(1).tolist(), chunk, strict=True))
    return hits / len(rows)


def fit_scorer(vectors: Tensor, train: Sequence[ScorerRow], val: Sequence[ScorerRow],
               entities: Tensor, cfg: AnswerScorerConfig) -> FittedScorer:
    """Train on ``train`` by the cross-entropy of each row's answers (spread evenly over them),
    keeping the epoch of best validation Hits@1 (the last one when nothing is held out).

    ``vectors: [M, question_dim]`` (rows index into it), ``entities: [N, entity_dim]``."""
    torch.manual_seed(cfg.seed)
    model = AnswerScorer(vectors.shape[1], entities.shape[1], cfg.hidden)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = random.Random(cfg.seed)
    best_hits, best_epoch, best_state = -1.0, 0, copy.deepcopy(model.state_dict())
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            chunk = [train[i] for i in order[start:start + cfg.batch_size]]
            target = torch.zeros(len(chunk), entities.shape[0])
            for i, row in enumerate(chunk):
                target[i, list(row.answers)] = 1.0 / len(row.answers)
            scores = model(vectors[[r.question for r in chunk]],
                           entities[[r.topic for r in chunk]], entities)
            loss = -(target * torch.log_softmax(scores, dim=1)).sum(1).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses.append(float(loss.detach()))
        hits = _hits(model, vectors, val, entities) if val else float(epoch)
        history.append({"epoch": epoch, "loss": round(sum(losses) / max(1, len(losses)), 4),
                        "val_hits@1": round(hits, 4) if val else None,
                        "seconds": round(time.perf_counter() - started, 2)})
        if hits > best_hits:
            best_hits, best_epoch, best_state = hits, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= cfg.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return FittedScorer(model, {"best_epoch": best_epoch, "n_train": len(train),
                                "n_val": len(val),
                                "val_hits@1": round(best_hits, 4) if val else None}, history)


def embedding_probs(model: AnswerScorer, questions: Tensor, topics: Tensor,
                    entities: Tensor) -> Tensor:
    """``[B, N]``: the softmax of the scores of every entity for each question and topic
    (``questions: [B, question_dim]``, ``topics: [B]`` entity rows)."""
    with torch.no_grad():
        return torch.softmax(model(questions, entities[topics], entities), dim=1)


def capped(scores: Mapping[str, float]) -> dict[str, float]:
    """Each answer's path probability, the sum over the paths that reach it capped at 1 (as
    ``fusion.serve.retrieval.rank_answers`` gives it). Not renormalised over the answers: when the
    reading the reasoner believes in needs a link the graph lacks, its probability reaches no
    entity, and the little that other readings reach must not be inflated to a certainty."""
    return {k: min(1.0, v) for k, v in scores.items()}


@dataclass(frozen=True)
class Fused:
    """An answer of the fused ranking: ``from_path`` False when only the embeddings give it."""

    uid: str
    score: float
    path_prob: float
    embedding_prob: float
    from_path: bool


def fuse(path: Mapping[str, float], embedding: Tensor, uids: Sequence[str],
         index: Mapping[str, int], weight: float, top_k: int,
         exclude: frozenset[str] = frozenset()) -> list[Fused]:
    """``weight * p_path + (1 - weight) * p_embedding`` over the path answers and the
    embeddings' ``top_k`` (``exclude``: entities never offered by the embeddings, e.g. the
    topic), best first. ``path``: probabilities (``capped``); ``embedding: [N]``."""
    candidates = dict.fromkeys(path)
    if weight < 1.0:
        k = min(top_k + len(exclude), embedding.shape[0])
        for i in torch.topk(embedding, k).indices.tolist():
            if uids[i] not in exclude:
                candidates.setdefault(uids[i])
    out = []
    for uid in candidates:
        p_path = path.get(uid, 0.0)
        p_emb = float(embedding[index[uid]]) if uid in index else 0.0
        out.append(Fused(uid, weight * p_path + (1 - weight) * p_emb, p_path, p_emb,
                         uid in path))
    out.sort(key=lambda f: (-f.score, not f.from_path, f.uid))
    return out


def choose_weight(paths: Sequence[Mapping[str, float]], embeddings: Tensor,
                  answers: Sequence[frozenset[str]], uids: Sequence[str],
                  index: Mapping[str, int], cfg: AnswerScorerConfig,
                  excludes: Sequence[frozenset[str]]) -> tuple[float, dict[str, float]]:
    """The path weight of best Hits@1 over held-out rows (ties: the larger weight), and each
    weight's Hits@1. ``paths[i]``: row i's path probabilities (``capped``);
    ``embeddings: [V, N]``."""
    table: dict[str, float] = {}
    best_weight, best_hits = 1.0, -1.0
    for weight in sorted(cfg.weights, reverse=True):
        hits = 0
        for i, path in enumerate(paths):
            ranked = fuse(path, embeddings[i], uids, index, weight, cfg.top_k, excludes[i])
            hits += bool(ranked) and ranked[0].uid in answers[i]
        rate = hits / max(1, len(paths))
        table[f"{weight:.2f}"] = round(rate, 4)
        if rate > best_hits + 1e-12:
            best_weight, best_hits = weight, rate
    return best_weight, table


def split_rows(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Row positions for training and validation (none held out under 20 rows)."""
    if fraction <= 0 or n < 20:
        return list(range(n)), []
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val = max(1, math.floor(n * fraction))
    return sorted(order[n_val:]), sorted(order[:n_val])
