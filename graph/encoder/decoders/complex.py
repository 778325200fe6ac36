"""ComplEx: ``Re(<h, r, conj(t)>)``."""

from __future__ import annotations

import torch
from torch import Tensor

from graph.encoder.decoders.base import Decoder, halves


class ComplEx(Decoder):
    """``Re(<h, r, conj(t)>)``; a vector of ``dim`` reals holds ``dim/2`` complex numbers."""

    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        (hr, hi), (rr, ri), (tr, ti) = halves(h), halves(r), halves(t)
        return (hr * rr * tr + hr * ri * ti + hi * rr * ti - hi * ri * tr).sum(-1)

    def score_all(self, h: Tensor, r: Tensor, entities: Tensor) -> Tensor:
        (hr, hi), (rr, ri) = halves(h), halves(r)
        # [q_re | q_im] @ [e_re | e_im]^T: one matmul against the contiguous entity matrix
        query = torch.cat([hr * rr - hi * ri, hr * ri + hi * rr], dim=-1)
        return query @ entities.t()

    def factors(self, h: Tensor, r: Tensor, t: Tensor) -> list[Tensor]:
        out = []
        for x in (h, r, t):
            re, im = halves(x)
            out.append(torch.sqrt(re * re + im * im + 1e-12))
        return out
