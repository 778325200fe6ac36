"""DistMult: ``<h, r, t>``."""

from __future__ import annotations

from torch import Tensor

from graph.encoder.decoders.base import Decoder


class DistMult(Decoder):
    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (h * r * t).sum(-1)

    def score_all(self, h: Tensor, r: Tensor, entities: Tensor) -> Tensor:
        return (h * r) @ entities.t()
