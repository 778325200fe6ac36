"""The reasoner's output vocabulary: the (relation, direction) hops and the answer types it
scores; shared by training, the checkpoint and serving."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fusion.language.verbalize import STOP, Action


@dataclass
class Vocab:
    """Hop ids and type ids of the model's outputs."""

    hops: list[Action]
    types: list[str]

    def __post_init__(self) -> None:
        self.hop_index = {a: i for i, a in enumerate(self.hops)}
        self.type_index = {t: i for i, t in enumerate(self.types)}

    @classmethod
    def of(cls, actions: Sequence[Action], types: Sequence[str]) -> Vocab:
        return cls([a for a in actions if a[1] != STOP], list(types))

    def path_ids(self, steps: Sequence[Action], answer_type: str
                 ) -> tuple[list[int], int] | None:
        """Hop ids and the type id of a path, None if the space lacks one of them."""
        if answer_type not in self.type_index or any(s not in self.hop_index for s in steps):
            return None
        return [self.hop_index[s] for s in steps], self.type_index[answer_type]
