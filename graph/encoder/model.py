"""The encoder: shallow entity embeddings, optional relation-aware message passing (R-GCN layers
from PyTorch Geometric, basis or block decomposition), and a KGE decoder (DistMult, ComplEx,
RotatE) that scores a query against every entity at once (1-N) or against given tails.

Relations are reciprocal: relation ``r`` of ``R`` has an inverse ``r + R``, so a head query
``(?, r, t)`` is the tail query ``(t, r + R, ?)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import RGCNConv

DECODERS = ("distmult", "complex", "rotate")


class Decoder(nn.Module):
    """Scores (head, relation, tail) embeddings. ``h, t: [B, dim]``, ``r: [B, rel_dim]``."""

    def relation_dim(self, dim: int) -> int:
        return dim

    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        """``[B]`` scores of matched rows."""
        raise NotImplementedError

    def score_all(self, h: Tensor, r: Tensor, entities: Tensor) -> Tensor:
        """``[B, N]`` scores of each query row against every entity (``entities: [N, dim]``)."""
        raise NotImplementedError

    def factors(self, h: Tensor, r: Tensor, t: Tensor) -> list[Tensor]:
        """Per-coordinate magnitudes for the N3 regulariser, each ``[B, k]``."""
        return [h.abs(), r.abs(), t.abs()]

    def relation_view(self, r: Tensor) -> Tensor:
        """A real-valued view of relation embeddings ``[R, d]`` for serving."""
        return r


class DistMult(Decoder):
    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (h * r * t).sum(-1)

    def score_all(self, h: Tensor, r: Tensor, entities: Tensor) -> Tensor:
        return (h * r) @ entities.t()


def _halves(x: Tensor) -> tuple[Tensor, Tensor]:
    """(real, imaginary) halves; ``unbind`` (not slicing) keeps the backward pass cheap."""
    re, im = x.unflatten(-1, (2, x.shape[-1] // 2)).unbind(-2)
    return re, im


class ComplEx(Decoder):
    """``Re(<h, r, conj(t)>)``; a vector of ``dim`` reals holds ``dim/2`` complex numbers."""

    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        (hr, hi), (rr, ri), (tr, ti) = _halves(h), _halves(r), _halves(t)
        return (hr * rr * tr + hr * ri * ti + hi * rr * ti - hi * ri * tr).sum(-1)

    def score_all(self, h: Tensor, r: Tensor, entities: Tensor) -> Tensor:
        (hr, hi), (rr, ri) = _halves(h), _halves(r)
        # [q_re | q_im] @ [e_re | e_im]^T: one matmul against the contiguous entity matrix
        query = torch.cat([hr * rr - hi * ri, hr * ri + hi * rr], dim=-1)
        return query @ entities.t()

    def factors(self, h: Tensor, r: Tensor, t: Tensor) -> list[Tensor]:
        out = []
        for x in (h, r, t):
            re, im = _halves(x)
            out.append(torch.sqrt(re * re + im * im + 1e-12))
        return out


class RotatE(Decoder):
    """``gamma - sum_k |h_k * e^{i theta_k} - t_k|``; relations are ``dim/2`` phases."""

    def __init__(self, gamma: float = 6.0, chunk: int = 4096) -> None:
        super().__init__()
        self.gamma = gamma
        self.chunk = chunk

    def relation_dim(self, dim: int) -> int:
        return dim // 2

    def _rotate(self, h: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
        hr, hi = _halves(h)
        phase = r * math.pi
        cos, sin = torch.cos(phase), torch.sin(phase)
        return hr * cos - hi * sin, hr * sin + hi * cos

    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        q_re, q_im = self._rotate(h, r)
        tr, ti = _halves(t)
        return self.gamma - torch.sqrt((q_re - tr) ** 2 + (q_im - ti) ** 2 + 1e-12).sum(-1)

    def score_all(self, h: Tensor, r: Tensor, entities: Tensor) -> Tensor:
        q_re, q_im = self._rotate(h, r)
        er, ei = _halves(entities)
        parts = []
        for start in range(0, entities.shape[0], self.chunk):
            cr, ci = er[start:start + self.chunk], ei[start:start + self.chunk]
            dist = torch.sqrt((q_re[:, None, :] - cr[None]) ** 2
                              + (q_im[:, None, :] - ci[None]) ** 2 + 1e-12).sum(-1)
            parts.append(self.gamma - dist)
        return torch.cat(parts, dim=1)

    def factors(self, h: Tensor, r: Tensor, t: Tensor) -> list[Tensor]:
        out = []
        for x in (h, t):
            re, im = _halves(x)
            out.append(torch.sqrt(re * re + im * im + 1e-12))
        return out

    def relation_view(self, r: Tensor) -> Tensor:
        phase = r * math.pi
        return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


def make_decoder(name: str, gamma: float = 6.0) -> Decoder:
    if name == "distmult":
        return DistMult()
    if name == "complex":
        return ComplEx()
    if name == "rotate":
        return RotatE(gamma=gamma)
    raise ValueError(f"unknown decoder {name!r}; choose one of {', '.join(DECODERS)}")


class NeighborSampler:
    """Uniform neighbour sampling (with replacement) over a message graph, for mini-batch R-GCN
    training when full-graph message passing does not fit. Pure PyTorch (CSR by target node).

    ``edge_index: [2, E]`` (source, target), ``edge_type: [E]``; ``fanouts[l]`` messages are
    sampled per node and hop."""

    def __init__(self, edge_index: Tensor, edge_type: Tensor, num_nodes: int,
                 fanouts: list[int]) -> None:
        order = torch.argsort(edge_index[1], stable=True)
        self.src = edge_index[0][order]
        self.rel = edge_type[order]
        counts = torch.bincount(edge_index[1], minlength=num_nodes)
        self.rowptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        self.fanouts = fanouts

    def sample(self, seeds: Tensor, generator: torch.Generator | None = None
               ) -> tuple[Tensor, Tensor, Tensor]:
        """``(n_id [M], local edge_index [2, S], edge_type [S])``; ``n_id`` is sorted and holds
        every seed, so ``torch.searchsorted(n_id, seeds)`` gives the seeds' local rows."""
        device = seeds.device
        frontier = seeds.unique()
        nodes, srcs, dsts, rels = [frontier], [], [], []
        for fanout in self.fanouts:
            start = self.rowptr[frontier.cpu()]
            degree = self.rowptr[frontier.cpu() + 1] - start
            keep = degree > 0
            if not bool(keep.any()):
                break
            start, degree, targets = start[keep], degree[keep], frontier.cpu()[keep]
            offsets = (torch.rand(len(targets), fanout, generator=generator)
                       * degree[:, None]).long()
            picked = (start[:, None] + offsets).flatten()
            srcs.append(self.src[picked])
            rels.append(self.rel[picked])
            dsts.append(targets.repeat_interleave(fanout))
            frontier = srcs[-1].unique()
            nodes.append(frontier)
        n_id = torch.cat([n.cpu() for n in nodes]).unique()
        if not srcs:
            empty = torch.zeros(2, 0, dtype=torch.long)
            return n_id.to(device), empty.to(device), empty[0].to(device)
        src, dst = torch.cat(srcs), torch.cat(dsts)
        local = torch.stack([torch.searchsorted(n_id, src), torch.searchsorted(n_id, dst)])
        return n_id.to(device), local.to(device), torch.cat(rels).to(device)


class KGEncoder(nn.Module):
    """Entity embeddings ``[N, dim]`` refined by ``num_layers`` residual R-GCN layers over the
    graph with reciprocal edges (``2 R`` relation types), scored by a KGE decoder.

    Hyperparameters: ``dim`` (reals per entity; even for complex/rotate), ``num_layers``
    (0 = plain embedding model), ``num_bases`` / ``num_blocks`` (R-GCN weight decomposition),
    ``dropout``, ``decoder`` and ``gamma`` (RotatE margin), ``init_scale`` (embedding std).
    """

    def __init__(
        self, num_nodes: int, num_relations: int, dim: int = 200, *, decoder: str = "complex",
        num_layers: int = 0, num_bases: int | None = None, num_blocks: int | None = None,
        dropout: float = 0.0, gamma: float = 6.0, init_scale: float = 1e-3,
    ) -> None:
        super().__init__()
        if decoder in ("complex", "rotate") and dim % 2:
            raise ValueError(f"{decoder} needs an even dim, got {dim}")
        self.num_nodes = num_nodes
        self.num_relations = num_relations
        self.dim = dim
        self.decoder = make_decoder(decoder, gamma)
        self.entity = nn.Embedding(num_nodes, dim)
        self.relation = nn.Embedding(2 * num_relations, self.decoder.relation_dim(dim))
        nn.init.normal_(self.entity.weight, std=init_scale)
        if decoder == "rotate":
            nn.init.uniform_(self.relation.weight, -1.0, 1.0)
            nn.init.uniform_(self.entity.weight, -gamma / dim, gamma / dim)
        else:
            nn.init.normal_(self.relation.weight, std=init_scale)
        self.convs = nn.ModuleList(
            RGCNConv(dim, dim, 2 * num_relations, num_bases=num_bases, num_blocks=num_blocks,
                     aggr="mean")
            for _ in range(num_layers)
        )
        for conv in self.convs:  # start close to the identity: a small residual update
            for p in conv.parameters():
                if p.dim() > 1:
                    nn.init.normal_(p, std=0.1 / math.sqrt(dim))
                else:
                    nn.init.zeros_(p)
        self.dropout = nn.Dropout(dropout)

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
        for conv in self.convs:
            x = x + self.dropout(torch.tanh(conv(x, edge_index, edge_type)))
        return x

    def encode_nodes(self, n_id: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """Representations ``[M, dim]`` of the nodes ``n_id`` of a sampled subgraph whose
        ``edge_index: [2, S]`` uses local (row in ``n_id``) node ids."""
        x: Tensor = self.entity(n_id)
        for conv in self.convs:
            x = x + self.dropout(torch.tanh(conv(x, edge_index, edge_type)))
        return x

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
