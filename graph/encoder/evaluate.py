"""Filtered rank-based link prediction: realistic ranks for ties, MRR and Hits@k, head and tail.

The realistic rank of the true entity among ``N`` candidates is the mean of the optimistic and
pessimistic ranks: ``1 + #(score > true) + #(other entities with score == true) / 2``. Other
known true answers (from the ``known`` triples of every split) are filtered out first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from core.errors import TrainingDivergedError

ScoreFn = Callable[[Tensor, Tensor], Tensor]
HITS_AT = (1, 3, 10)


class FilterIndex:
    """Answers ``(entity, relation) -> known partner entities`` for a batch, vectorised.

    ``triples: [K, 3]``; tail side keys are ``h * R + r``, head side keys ``t * R + r``.
    """

    def __init__(self, triples: Tensor, num_relations: int) -> None:
        self.num_relations = num_relations
        h, r, t = triples[:, 0].long(), triples[:, 1].long(), triples[:, 2].long()
        self._tail = self._build(h * num_relations + r, t)
        self._head = self._build(t * num_relations + r, h)

    @staticmethod
    def _build(keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        order = torch.argsort(keys * (values.max() + 1 if values.numel() else 1) + values)
        return keys[order], values[order]

    def _mask_pairs(self, side: tuple[Tensor, Tensor], keys: Tensor) -> tuple[Tensor, Tensor]:
        sorted_keys, values = side
        start = torch.searchsorted(sorted_keys, keys, right=False)
        end = torch.searchsorted(sorted_keys, keys, right=True)
        counts = end - start
        rows = torch.repeat_interleave(torch.arange(len(keys)), counts)
        offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts)
        cols = values[torch.repeat_interleave(start, counts) + offsets]
        return rows, cols

    def known_tails(self, heads: Tensor, rels: Tensor) -> tuple[Tensor, Tensor]:
        """(row, entity) pairs of known tails of each query row."""
        return self._mask_pairs(self._tail, heads.long() * self.num_relations + rels.long())

    def known_heads(self, rels: Tensor, tails: Tensor) -> tuple[Tensor, Tensor]:
        return self._mask_pairs(self._head, tails.long() * self.num_relations + rels.long())


def realistic_ranks(scores: Tensor, targets: Tensor, filter_rows: Tensor | None = None,
                    filter_cols: Tensor | None = None) -> Tensor:
    """Filtered realistic ranks ``[B]`` of ``targets: [B]`` in ``scores: [B, N]``; the known
    answers ``(filter_rows, filter_cols)`` other than the target are removed."""
    scores = scores.float().clone()
    rows = torch.arange(scores.shape[0], device=scores.device)
    true = scores[rows, targets].clone()
    if filter_rows is not None and filter_cols is not None and filter_rows.numel():
        scores[filter_rows.to(scores.device), filter_cols.to(scores.device)] = float("-inf")
    scores[rows, targets] = float("-inf")
    greater = (scores > true[:, None]).sum(1)
    equal = (scores == true[:, None]).sum(1)
    return 1.0 + greater.double() + equal.double() / 2.0


def check_finite(scores: Tensor, what: str) -> None:
    """``TrainingDivergedError`` if ``scores`` hold NaN or +-inf. A NaN true score compares
    neither greater nor equal to anything, so without this a diverged model would rank every
    true entity first (MRR 1.0) and early stopping would keep it."""
    if not bool(torch.isfinite(scores).all()):
        bad = int((~torch.isfinite(scores)).sum())
        raise TrainingDivergedError(
            f"the model's {what} scores hold {bad} NaN or infinite values of {scores.numel()}: "
            "training diverged (try a lower learning rate, or amp=false)")


@dataclass
class Metrics:
    mrr: float
    hits_at_1: float
    hits_at_3: float
    hits_at_10: float
    mean_rank: float
    count: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def rank_metrics(ranks: Tensor) -> Metrics:
    ranks = ranks.double()
    if not ranks.numel():
        return Metrics(0.0, 0.0, 0.0, 0.0, 0.0, 0)
    return Metrics(
        mrr=float((1.0 / ranks).mean()),
        hits_at_1=float((ranks <= 1).double().mean()),
        hits_at_3=float((ranks <= 3).double().mean()),
        hits_at_10=float((ranks <= 10).double().mean()),
        mean_rank=float(ranks.mean()),
        count=int(ranks.numel()),
    )


@torch.no_grad()
def evaluate_ranks(
    score_tails: ScoreFn, score_heads: ScoreFn, triples: Tensor, known: FilterIndex,
    batch_size: int = 512,
) -> tuple[Tensor, Tensor]:
    """Filtered realistic ranks of tails and heads for ``triples: [T, 3]``.

    ``score_tails(h, r) -> [B, N]`` and ``score_heads(r, t) -> [B, N]`` score every entity.
    Returns (tail ranks ``[T]``, head ranks ``[T]``). Raises ``TrainingDivergedError`` when a
    score is NaN or infinite.
    """
    tail_ranks, head_ranks = [], []
    for start in range(0, triples.shape[0], batch_size):
        batch = triples[start:start + batch_size]
        h, r, t = batch[:, 0], batch[:, 1], batch[:, 2]
        rows, cols = known.known_tails(h, r)
        scores = score_tails(h, r)
        check_finite(scores, "tail")
        tail_ranks.append(realistic_ranks(scores, t.to(scores.device), rows, cols).cpu())
        rows, cols = known.known_heads(r, t)
        scores = score_heads(r, t)
        check_finite(scores, "head")
        head_ranks.append(realistic_ranks(scores, h.to(scores.device), rows, cols).cpu())
    if not tail_ranks:
        empty = torch.zeros(0, dtype=torch.double)
        return empty, empty
    return torch.cat(tail_ranks), torch.cat(head_ranks)


def evaluate(
    score_tails: ScoreFn, score_heads: ScoreFn, triples: Tensor, known: FilterIndex,
    batch_size: int = 512,
) -> dict[str, Metrics]:
    """Metrics for ``tail``, ``head`` and ``both`` (the mean over both sides)."""
    tails, heads = evaluate_ranks(score_tails, score_heads, triples, known, batch_size)
    return {"tail": rank_metrics(tails), "head": rank_metrics(heads),
            "both": rank_metrics(torch.cat([tails, heads]))}
