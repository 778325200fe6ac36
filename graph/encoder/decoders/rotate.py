"""RotatE: ``gamma - |h * e^{i theta} - t|``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from graph.encoder.decoders.base import Decoder, halves


class RotatE(Decoder):
    """``gamma - sum_k |h_k * e^{i theta_k} - t_k|``; relations are ``dim/2`` phases."""

    def __init__(self, gamma: float = 6.0, chunk: int = 4096) -> None:
        super().__init__()
        self.gamma = gamma
        self.chunk = chunk

    def relation_dim(self, dim: int) -> int:
        return dim // 2

    def _rotate(self, h: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
        hr, hi = halves(h)
        phase = r * math.pi
        cos, sin = torch.cos(phase), torch.sin(phase)
        return hr * cos - hi * sin, hr * sin + hi * cos

    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        q_re, q_im = self._rotate(h, r)
        tr, ti = halves(t)
        return self.gamma - torch.sqrt((q_re - tr) ** 2 + (q_im - ti) ** 2 + 1e-12).sum(-1)

    def score_all(self, h: Tensor, r: Tensor, entities: Tensor) -> Tensor:
        q_re, q_im = self._rotate(h, r)
        er, ei = halves(entities)
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
            re, im = halves(x)
            out.append(torch.sqrt(re * re + im * im + 1e-12))
        return out

    def relation_view(self, r: Tensor) -> Tensor:
        phase = r * math.pi
        return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)
