"""Paired comparisons of two models on the same questions (the ablation, model selection)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test of paired outcomes (McNemar's exact test): the probability,
    with no real difference, of a split at least this uneven between ``wins`` and ``losses``
    (questions only one of two models answers)."""
    n = wins + losses
    if n == 0:
        return 1.0
    low = min(wins, losses)
    tail = sum(math.comb(n, k) for k in range(low + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_outcomes(first: Sequence[bool], second: Sequence[bool]) -> tuple[int, int]:
    """(questions only ``first`` answers, questions only ``second`` answers)."""
    if len(first) != len(second):
        raise ValueError("paired outcomes need the same questions")
    wins = sum(a and not b for a, b in zip(first, second, strict=True))
    losses = sum(b and not a for a, b in zip(first, second, strict=True))
    return wins, losses
