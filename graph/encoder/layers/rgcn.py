"""A residual R-GCN layer: ``x + dropout(tanh(RGCNConv(x)))``, started near the identity."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing, RGCNConv


class ResidualRGCNConv(RGCNConv):
    """PyG's ``RGCNConv`` (mean aggregation, basis or block decomposition) as a residual update
    of ``dim``-wide entity vectors. A subclass, not a wrapper, so that its weights keep the
    state-dict names of earlier checkpoints (``convs.0.weight``, ``convs.0.comp``, ...).

    ``reset_parameters`` draws the matrices from ``N(0, (0.1 / sqrt(dim))^2)`` and zeros the
    bias: a small update, so a new layer barely moves the embeddings it refines."""

    def __init__(self, dim: int, num_relations: int, num_bases: int | None = None,
                 num_blocks: int | None = None, dropout: float = 0.0) -> None:
        super().__init__(dim, dim, num_relations, num_bases=num_bases, num_blocks=num_blocks,
                         aggr="mean")
        self.dropout = dropout

    def reset_parameters(self) -> None:
        # MessagePassing's reset (aggregation modules), not RGCNConv's glorot draws: ours follow
        MessagePassing.reset_parameters(self)
        std = 0.1 / math.sqrt(self.in_channels_l)
        for p in (self.weight, self.comp, self.root, self.bias):
            if isinstance(p, nn.Parameter):
                if p.dim() > 1:
                    nn.init.normal_(p, std=std)
                else:
                    nn.init.zeros_(p)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        update = super().forward(x, edge_index, edge_type)
        return x + F.dropout(update.tanh(), p=self.dropout, training=self.training)
