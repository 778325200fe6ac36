"""Uniform neighbour sampling for mini-batch message passing on graphs too big to encode whole."""

from __future__ import annotations

import torch
from torch import Tensor


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
