"""The encoder: shallow entity embeddings, optional relation-aware message passing (residual
R-GCN layers from PyTorch Geometric, basis or block decomposition: ``graph.encoder.layers``),
and a KGE decoder (DistMult, ComplEx, RotatE: ``graph.encoder.decoders``) that scores a query
against every entity at once (1-N) or against given tails.

Relations are reciprocal: relation ``r`` of ``R`` has an inverse ``r + R``, so a head query
``(?, r, t)`` is the tail query ``(t, r + R, ?)``.

The decoders, the layer and the sampler are re-exported here: earlier import paths
(``graph.encoder.model.ComplEx``, ``...NeighborSampler``) keep working.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graph.encoder.decoders import (
    DECODERS,
    ComplEx,
    Decoder,
    DistMult,
    RotatE,
    make_decoder,
)
from graph.encoder.decoders import halves as _halves
from graph.encoder.layers import CompGCNConv, NeighborSampler, ResidualRGCNConv

LAYERS = ("rgcn", "compgcn")

__all__ = [
    "DECODERS", "LAYERS", "CompGCNConv", "ComplEx", "Decoder", "DistMult", "KGEncoder",
    "NeighborSampler",
    "ResidualRGCNConv", "RotatE", "_halves", "make_decoder",
]


class KGEncoder(nn.Module):
    """Entity embeddings ``[N, dim]`` refined by ``num_layers`` residual message-passing layers
    over the graph with reciprocal edges (``2 R`` relation types), scored by a KGE decoder.

    Hyperparameters: ``dim`` (reals per entity; even for complex/rotate), ``num_layers``
    (0 = plain embedding model), ``layer`` (``rgcn``: a weight per relation type;
    ``compgcn``: one shared weight, messages composed with the decoder's relation vectors),
    ``num_bases`` / ``num_blocks`` (R-GCN weight decomposition),
    ``dropout``, ``decoder`` and ``gamma`` (RotatE margin), ``init_scale`` (embedding std).
    """

    def __init__(
        self, num_nodes: int, num_relations: int, dim: int = 200, *, decoder: str = "complex",
        num_layers: int = 0, num_bases: int | None = None, num_blocks: int | None = None,
        dropout: float = 0.0, gamma: float = 6.0, init_scale: float = 1e-3,
        layer: str = "rgcn",
    ) -> None:
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")
        self.layer = layer
        if decoder in ("complex", "rotate") and dim % 2:
            raise ValueError(f"{decoder} needs an even dim, got {dim}")
        self.num_nodes = num_nodes
        self.num_relations = num_relations
        self.dim = dim
        self.gamma = gamma
        self.init_scale = init_scale
        self.decoder = make_decoder(decoder, gamma)
        # built without drawing from the RNG (the layers' own draws are undone), then reset
        # once: a seeded reset_parameters() equals a module freshly built under that seed
        with torch.random.fork_rng(devices=[]):
            self.entity = nn.Embedding(num_nodes, dim, _weight=torch.empty(num_nodes, dim))
            rel_dim = self.decoder.relation_dim(dim)
            self.relation = nn.Embedding(2 * num_relations, rel_dim,
                                         _weight=torch.empty(2 * num_relations, rel_dim))
            composition = "mult" if decoder == "distmult" else "complex"
            self.convs = nn.ModuleList(
                ResidualRGCNConv(dim, 2 * num_relations, num_bases=num_bases,
                                 num_blocks=num_blocks, dropout=dropout) if layer == "rgcn"
                else CompGCNConv(dim, composition, dropout)  # type: ignore[arg-type]
                for _ in range(num_layers)
            )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw every weight as a new model would: entity and relation tables (RotatE: a
        uniform entity box and uniform phases), then each layer and the decoder."""
        if isinstance(self.decoder, RotatE):
            nn.init.uniform_(self.entity.weight, -self.gamma / self.dim, self.gamma / self.dim)
            nn.init.uniform_(self.relation.weight, -1.0, 1.0)
        else:
            nn.init.normal_(self.entity.weight, std=self.init_scale)
            nn.init.normal_(self.relation.weight, std=self.init_scale)
        for conv in self.convs:
            assert isinstance(conv, ResidualRGCNConv | CompGCNConv)  # untyped ModuleList items
            conv.reset_parameters()
        self.decoder.reset_parameters()

    @staticmethod
    def message_graph(edge_index: Tensor, edge_type: Tensor, num_relations: int
                      ) -> tuple[Tensor, Tensor]:
        """Add reciprocal edges: ``[2, E] -> [2, 2E]`` and ``[E] -> [2E]``."""
        rev = edge_index.flip(0)
        return torch.cat([edge_index, rev], 1), torch.cat([edge_type, edge_type + num_relations])

    def encode(self, edge_index: Tensor | None = None, edge_type: Tensor | None = None) -> Tensor:
        """Entity representations ``[N, dim]``; ``edge_index: [2, 2E]`` with reciprocal edges
        (see ``message_graph``) is needed only when the model has message-passing layers."""
        x: Tensor = self.entity.weight
        if not len(self.convs):
            return x
        if edge_index is None or edge_type is None:
            raise ValueError("a model with message-passing layers needs the graph")
        return self._propagate(x, edge_index, edge_type)

    def _propagate(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        if self.layer == "compgcn":  # every relation's vector, reciprocals included
            relations = self.decoder.relation_view(self.relation.weight)
            for conv in self.convs:
                x = conv(x, edge_index, edge_type, relations)
            return x
        for conv in self.convs:
            x = conv(x, edge_index, edge_type)
        return x

    def encode_nodes(self, n_id: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """Representations ``[M, dim]`` of the nodes ``n_id`` of a sampled subgraph whose
        ``edge_index: [2, S]`` uses local (row in ``n_id``) node ids."""
        x: Tensor = self.entity(n_id)
        return self._propagate(x, edge_index, edge_type)

    def score_tails(self, x: Tensor, heads: Tensor, rels: Tensor) -> Tensor:
        """``[B, N]``: every entity as the tail of ``(heads[b], rels[b], ?)``; ``rels`` may be
        inverse relations (``>= R``)."""
        return self.decoder.score_all(x[heads], self.relation(rels), x)

    def score_triples(self, x: Tensor, heads: Tensor, rels: Tensor, tails: Tensor) -> Tensor:
        """``[B]`` scores of given triples."""
        return self.decoder.score(x[heads], self.relation(rels), x[tails])

    def n3(self, x: Tensor, heads: Tensor, rels: Tensor, tails: Tensor) -> Tensor:
        """Sum over the batch of the N3 penalty ``sum |factor|^3`` (divide by batch size)."""
        factors = self.decoder.factors(x[heads], self.relation(rels), x[tails])
        return sum((f ** 3).sum() for f in factors) if factors else x.new_zeros(())  # type: ignore[return-value]

    def relation_embeddings(self) -> Tensor:
        """``[R, d]`` real-valued view of the forward relations."""
        return self.decoder.relation_view(self.relation.weight[: self.num_relations])

    def forward(
        self, batch: Tensor, negatives: Tensor | None = None, edge_index: Tensor | None = None,
        edge_type: Tensor | None = None, *, label_smoothing: float = 0.0, n3: float = 0.0,
        adversarial_temperature: float = 1.0, sampler: NeighborSampler | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The training loss SUMMED over the rows of ``batch: [B, 3]`` (h, r, t; r may be an
        inverse relation). Without ``negatives`` it is the 1-N cross-entropy against every
        entity; with ``negatives: [B, k]`` tail ids (or ``[k]`` shared by every row), a
        (self-adversarial) logistic loss.
        Summing (not averaging) lets data-parallel ranks split one batch exactly. With a
        ``sampler`` (needs ``negatives``) only a sampled neighbourhood of the batch is encoded."""
        h, r, t = batch[:, 0], batch[:, 1], batch[:, 2]
        if sampler is not None and len(self.convs):
            if negatives is None:
                raise ValueError("neighbour-sampled training needs sampled negatives")
            seeds = torch.cat([h, t, negatives.flatten()])
            n_id, sub_index, sub_type = sampler.sample(seeds, generator)
            x = self.encode_nodes(n_id, sub_index, sub_type)
            h, t = torch.searchsorted(n_id, h), torch.searchsorted(n_id, t)
            negatives = torch.searchsorted(n_id, negatives.flatten()).view(negatives.shape)
        else:
            x = self.encode(edge_index, edge_type)
        if negatives is None:
            logits = self.score_tails(x, h, r)
            loss = F.cross_entropy(logits.float(), t, label_smoothing=label_smoothing,
                                   reduction="sum")
        else:
            rel = self.relation(r)
            pos = self.decoder.score(x[h], rel, x[t]).float()
            if negatives.ndim == 1:  # shared by the whole batch: one [B, k] matmul-style pass
                neg = self.decoder.score_all(x[h], rel, x[negatives]).float()
            else:
                neg = self.decoder.score(x[h][:, None, :], rel[:, None, :],
                                         x[negatives]).float()
            if adversarial_temperature > 0:
                weights = torch.softmax(neg * adversarial_temperature, dim=1).detach()
            else:
                weights = torch.full_like(neg, 1.0 / neg.shape[1])
            loss = -F.logsigmoid(pos).sum() - (weights * F.logsigmoid(-neg)).sum()
        if n3 > 0:
            loss = loss + n3 * self.n3(x, h, r, t)
        return loss
