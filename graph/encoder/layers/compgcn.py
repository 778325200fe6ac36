"""A residual CompGCN-style layer: messages compose the neighbour with the edge's relation in the
decoder's own algebra, so the relation tables the decoder learns also steer message passing."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graph.encoder.decoders.base import halves

Composition = Literal["complex", "mult"]


def compose(x: Tensor, rel: Tensor, composition: Composition) -> Tensor:
    """``phi(x, r)``: the complex product (ComplEx; RotatE with unit-modulus relations) or the
    elementwise product (DistMult), row by row. ``x, rel: [E, dim]``."""
    if composition == "mult":
        return x * rel
    (xr, xi), (rr, ri) = halves(x), halves(rel)
    return torch.cat([xr * rr - xi * ri, xr * ri + xi * rr], dim=-1)


class CompGCNConv(nn.Module):
    """``x + dropout(tanh(W mean_{(u, r, v)} phi(x_u, z_r)))`` over the edges into ``v``.

    Unlike R-GCN there is no weight per relation type: one shared ``W [dim, dim]``, and the
    relation enters through ``z_r`` (the decoder's relation vectors, reciprocals included). So
    the cost is ``O(E dim + N dim^2)`` whatever the number of relation types.
    ``reset_parameters`` draws ``W`` from ``N(0, (0.1 / sqrt(dim))^2)`` with a zero bias: a new
    layer barely moves the embeddings it refines."""

    def __init__(self, dim: int, composition: Composition = "complex",
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.composition: Composition = composition
        self.dropout = dropout
        self.lin = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.lin.weight, std=0.1 / math.sqrt(self.dim))
        nn.init.zeros_(self.lin.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, relations: Tensor
                ) -> Tensor:
        """``x: [N, dim]``, ``edge_index: [2, E]`` (source, target), ``edge_type: [E]``,
        ``relations: [2R, dim]``; returns ``[N, dim]``."""
        src, dst = edge_index[0], edge_index[1]
        messages = compose(x[src], relations[edge_type], self.composition)
        summed = torch.zeros_like(x).index_add_(0, dst, messages.to(x.dtype))
        degree = torch.bincount(dst, minlength=x.shape[0]).clamp(min=1).to(x.dtype)
        update = self.lin(summed / degree[:, None])
        return x + F.dropout(update.tanh(), p=self.dropout, training=self.training)
