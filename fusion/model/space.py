"""The action space of one domain (hops and answer types) with its text and graph features."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

from core.errors import ModelNotReadyError
from core.settings import Settings
from fusion.language.lexical import action_stems
from fusion.language.verbalize import IN, OUT, STOP, Action, Wording, action_texts, noun
from fusion.model.model import KIND_IN, KIND_OUT, KIND_STOP

log = logging.getLogger("kgr.fusion")


@dataclass
class GraphFeatures:
    """The graph encoder's vectors used by the fusion model (see ``graph.encoder``).

    ``entity_embeddings: [N, d]``, ``relation_embeddings: [R, d]``."""

    version: str
    entity_embeddings: torch.Tensor
    relation_embeddings: torch.Tensor
    uid_to_index: dict[str, int]
    relation_types: list[str]

    @property
    def dim(self) -> int:
        return int(self.entity_embeddings.shape[1])

    def entity(self, uids: list[str]) -> torch.Tensor:
        """``[len(uids), d]``; zeros for uids the encoder has not seen."""
        out = torch.zeros(len(uids), self.dim)
        for i, uid in enumerate(uids):
            idx = self.uid_to_index.get(uid)
            if idx is not None:
                out[i] = self.entity_embeddings[idx]
        return out

    def mean_entity(self, groups: list[list[str]]) -> torch.Tensor:
        """``[len(groups), d]``: the mean embedding of each group's known uids (zeros when it
        has none), e.g. the frontier of each path prefix."""
        out = torch.zeros(len(groups), self.dim)
        for i, uids in enumerate(groups):
            rows = [self.uid_to_index[u] for u in uids if u in self.uid_to_index]
            if rows:
                out[i] = self.entity_embeddings[rows].mean(0)
        return out


def load_graph_features(settings: Settings, domain: str) -> GraphFeatures | None:
    """The active encoder's vectors for ``domain``, or None when no encoder is trained."""
    try:
        from graph.encoder import load_active_encoder
    except ImportError:
        try:
            from graph.encoder.checkpoint import load_active_encoder
        except ImportError:
            return None
    try:
        bundle: Any = load_active_encoder(settings, domain)
    except ModelNotReadyError:
        return None
    relation = bundle.relation_embeddings.float()
    entity = bundle.entity_embeddings.float()
    if relation.shape[1] != entity.shape[1]:  # e.g. a complex view: bring both to one width
        width = min(relation.shape[1], entity.shape[1])
        relation, entity = relation[:, :width], entity[:, :width]
    return GraphFeatures(bundle.version, entity, relation, dict(bundle.uid_to_index),
                         list(bundle.relation_types))


@dataclass
class ActionSpace:
    """Every action of a domain; ``text: [A, 384]`` (the normalised mean of the action's
    texts in one wording, ``fusion.language.verbalize.action_texts``), ``kind: [A]``, ``types`` for
    the
    topic."""

    actions: list[Action]
    types: list[str]
    text: torch.Tensor
    type_text: torch.Tensor
    # whose declared phrasings (``fusion.language.verbalize.declare``) the texts and the rerank read
    domain: str | None = None
    wording: Wording = "all"  # which phrasings the texts (and ``stems``) were built from

    @classmethod
    def build(cls, relation_types: list[str], entity_types: list[str],
              wording: Wording = "all", domain: str | None = None) -> ActionSpace:
        from fusion.language.text import get_text_encoder

        actions: list[Action] = [(r, d) for r in sorted(relation_types) for d in (OUT, IN)]
        actions += [(t, STOP) for t in sorted(entity_types)]
        encoder = get_text_encoder()
        texts = [action_texts(a, wording, domain) for a in actions]
        flat = encoder.encode([t for group in texts for t in group])
        sizes = torch.tensor([len(group) for group in texts])
        owner = torch.repeat_interleave(torch.arange(len(actions)), sizes)
        summed = torch.zeros(len(actions), flat.shape[1]).index_add_(0, owner, flat)
        text = torch.nn.functional.normalize(summed, dim=-1)  # mean direction per action
        type_text = encoder.encode([noun(t) for t in sorted(entity_types)])
        return cls(actions, sorted(entity_types), text, type_text, domain, wording)

    def __post_init__(self) -> None:
        self.index = {a: i for i, a in enumerate(self.actions)}
        self.type_index = {t: i for i, t in enumerate(self.types)}
        self.kind = torch.tensor([
            KIND_STOP if k == STOP else (KIND_OUT if k == OUT else KIND_IN) for _, k in self.actions
        ])

    @cached_property
    def stems(self) -> list[frozenset[str]]:
        """Per action, the word stems of its phrasings (``fusion.language.lexical``; none for
        stops)."""
        return action_stems([action_texts(a, self.wording, self.domain) if a[1] != STOP else []
                             for a in self.actions])

    def relation_types(self) -> list[str]:
        return sorted({name for name, kind in self.actions if kind != STOP})

    def graph_vectors(self, features: GraphFeatures | None) -> torch.Tensor | None:
        """``[A, d]``: each hop's relation embedding (zeros for stops and unknown relations)."""
        if features is None:
            return None
        out = torch.zeros(len(self.actions), features.dim)
        for i, (name, kind) in enumerate(self.actions):
            if kind != STOP and name in features.relation_types:
                out[i] = features.relation_embeddings[features.relation_types.index(name)]
        return out

    def topic_type_text(self, types: list[str]) -> torch.Tensor:
        """``[len(types), 384]`` (zeros for a type the space does not know)."""
        out = torch.zeros(len(types), self.type_text.shape[1])
        for i, t in enumerate(types):
            if t in self.type_index:
                out[i] = self.type_text[self.type_index[t]]
        return out
