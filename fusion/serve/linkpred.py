"""Predicted links: the graph encoder's link prediction as extra neighbours for retrieval.

A domain graph is incomplete: a gene-disease association nobody has recorded yet, a company's
stake that no article of the window mentioned. With ``predicted_links`` the beam search also
follows, for each (node, hop) it reads, the ``top_m`` entities that the encoder's decoder
scores highest as the missing end of that hop (softmax over all entities, the probability its
1-N training fits), leaving out the neighbours the graph already has. A path's probability for an
answer is multiplied by the probability of every predicted link on the way to it, so recorded
links come first; the answer's evidence marks the predicted links and their probabilities.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from fusion.language.verbalize import IN
from fusion.serve.retrieval import Action, Caps, Expander, Grouped, NodeInfo, Request, stored_triple

Triple = tuple[str, str, str]  # (head, relation, tail) in the stored direction

DEFAULT_TOP_M = 3


class LinkPredictor:
    """Scores missing tails with a trained encoder: ``x: [N, d]`` the entity vectors, ``score``
    a ``(x, heads: [B], rels: [B]) -> [B, N]`` decoder whose ``rels >= R`` are the inverse
    relations (head prediction), as ``graph.encoder.model.KGEncoder.score_tails``."""

    def __init__(self, x: Tensor, score: Any, uids: Sequence[str],
                 relation_types: Sequence[str], version: str = "",
                 top_m: int = DEFAULT_TOP_M) -> None:
        if top_m < 1:
            raise ValueError("top_m must be at least 1")
        self.x = x
        self.score = score
        self.uids = list(uids)
        self.index = {u: i for i, u in enumerate(self.uids)}
        self.relations = {r: i for i, r in enumerate(relation_types)}
        self.version = version
        self.top_m = top_m
        self._lock = threading.Lock()  # one decoder call at a time (torch threads are shared)

    @classmethod
    def from_bundle(cls, bundle: Any, top_m: int = DEFAULT_TOP_M) -> LinkPredictor:
        """From a loaded ``graph.encoder.checkpoint.EncoderBundle``."""
        assert bundle.model is not None
        return cls(bundle.entity_embeddings, bundle.model.score_tails, bundle.uids,
                   bundle.relation_types, bundle.version, top_m)

    @torch.no_grad()
    def predict(self, requests: Sequence[Request], known: Grouped
                ) -> dict[Request, list[tuple[str, float]]]:
        """Per (node, hop): at most ``top_m`` (entity, probability), best first, none of them
        the node itself or a neighbour that ``known`` already lists for that hop."""
        rows = [(uid, action) for uid, action in requests
                if uid in self.index and action[0] in self.relations]
        if not rows:
            return {}
        num_relations = len(self.relations)
        heads = torch.tensor([self.index[uid] for uid, _ in rows])
        rels = torch.tensor([self.relations[rel] + (num_relations if direction == IN else 0)
                             for _, (rel, direction) in rows])
        with self._lock:
            probs = torch.softmax(self.score(self.x, heads, rels).float(), dim=-1)
        extra = max(8, self.top_m)
        top = probs.topk(min(self.top_m + extra, probs.shape[1]), dim=-1)
        out: dict[Request, list[tuple[str, float]]] = {}
        for i, (uid, action) in enumerate(rows):
            have = set(known.get(uid, {}).get(action, ()))
            picked: list[tuple[str, float]] = []
            for p, j in zip(top.values[i].tolist(), top.indices[i].tolist(), strict=True):
                target = self.uids[j]
                if not p > 0.0:  # nothing more is likely (or the decoder gave no number)
                    break
                if target != uid and target not in have:
                    picked.append((target, p))
                    if len(picked) == self.top_m:
                        break
            out[(uid, action)] = picked
        return out


class PredictingExpander:
    """An ``Expander`` that lists, after each hop's recorded neighbours, the predicted ones;
    ``predicted`` keeps their probabilities by stored triple. One per question: it collects.
    ``names`` and ``types`` (the domain's alias index) name predicted entities, which the base
    expander has not read."""

    def __init__(self, base: Expander, predictor: LinkPredictor, names: Mapping[str, str],
                 types: Mapping[str, str]) -> None:
        self.base = base
        self.predictor = predictor
        self.names = names
        self.types = types
        self.predicted: dict[Triple, float] = {}

    def node(self, uid: str) -> NodeInfo:
        if uid in self.types:
            return NodeInfo(self.names.get(uid, uid), self.types[uid])
        return self.base.node(uid)

    def actions(self, uids: Sequence[str]) -> Mapping[str, Any]:
        return self.base.actions(uids)

    def paths_to(self, sources: Sequence[str], steps: Sequence[Action],
                 targets: Sequence[str]) -> dict[str, list[str]]:
        return self.base.paths_to(sources, steps, targets)  # recorded links only

    def common_targets(self, groups: Sequence[Sequence[str]], steps: Sequence[Action],
                       limit: int) -> list[str]:
        return self.base.common_targets(groups, steps, limit)  # recorded links only

    def count_targets(self, sources: Sequence[str], steps: Sequence[Action],
                      answer_type: str) -> tuple[int, bool]:
        return self.base.count_targets(sources, steps, answer_type)  # recorded links only

    def neighbours(self, requests: Sequence[Request], caps: Caps) -> Grouped:
        grouped = self.base.neighbours(requests, caps)
        out: Grouped = {uid: {a: list(t) for a, t in by.items()} for uid, by in grouped.items()}
        # a hop whose recorded list may be incomplete is not predicted for, since a prediction
        # could repeat a recorded link that was not read: a full list (``caps.per_type``), and
        # every request from the one where the rows ran out (``caps.rows``, in request order)
        short: list[Request] = []
        read = 0
        for uid, action in dict.fromkeys(requests):
            count = len(grouped.get(uid, {}).get(action, ()))
            read += count
            if read >= caps.rows:
                break
            if count < caps.per_type:
                short.append((uid, action))
        for (uid, action), picks in self.predictor.predict(short, grouped).items():
            if not picks:
                continue
            targets = out.setdefault(uid, {}).setdefault(action, [])
            for target, prob in picks:
                targets.append(target)
                self.predicted[stored_triple(uid, action, target)] = prob
        return out
