"""Message-passing layers of the encoder (one module each) and the neighbour sampler."""

from graph.encoder.layers.compgcn import CompGCNConv, compose
from graph.encoder.layers.rgcn import ResidualRGCNConv
from graph.encoder.layers.sampler import NeighborSampler

__all__ = ["CompGCNConv", "NeighborSampler", "ResidualRGCNConv", "compose"]
