"""The decoder interface: scores (head, relation, tail) embeddings, 1-N or matched rows."""

from __future__ import annotations

from torch import Tensor, nn


class Decoder(nn.Module):
    """Scores (head, relation, tail) embeddings. ``h, t: [B, dim]``, ``r: [B, rel_dim]``.

    The decoders have no weights of their own (the encoder holds the entity and relation
    tables); ``reset_parameters`` exists so that every module of the encoder can be reset."""

    def reset_parameters(self) -> None:
        """Nothing to reset: a decoder holds no parameters."""

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


def halves(x: Tensor) -> tuple[Tensor, Tensor]:
    """(real, imaginary) halves; ``unbind`` (not slicing) keeps the backward pass cheap."""
    re, im = x.unflatten(-1, (2, x.shape[-1] // 2)).unbind(-2)
    return re, im
