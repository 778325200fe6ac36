"""Checkpoints: ``model.safetensors`` (all weights), ``embeddings.safetensors`` (the encoded
entity and relation vectors that serving uses), ``config.json`` (hyperparameters, sizes,
metrics) and ``index.json`` (uids, entity types, relation types) in one artifact version folder;
``EncoderBundle`` is what a loaded version offers."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from core.errors import InvalidInputError, ModelNotReadyError
from core.settings import Settings
from graph.artifacts import ArtifactStore
from graph.encoder.config import EncoderConfig
from graph.encoder.data import KGData
from graph.encoder.model import KGEncoder

ARTIFACT_KIND = "encoder"
MODEL_FILE = "model.safetensors"
EMBEDDINGS_FILE = "embeddings.safetensors"
CONFIG_FILE = "config.json"
INDEX_FILE = "index.json"


def encoder_artifacts(settings: Settings) -> ArtifactStore:
    return ArtifactStore(settings.artifacts_dir, ARTIFACT_KIND)


@torch.no_grad()
def save_checkpoint(folder: Path, model: KGEncoder, config: EncoderConfig, data: KGData,
                    graph: tuple[Tensor, Tensor] | None = None,
                    metrics: dict[str, Any] | None = None) -> None:
    """Write a complete checkpoint of ``model`` (trained on ``data``) into ``folder``."""
    model.eval()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / MODEL_FILE))
    x = model.encode(*(graph if graph is not None else (None, None))).detach().float().cpu()
    save_file({
        "entity": x.contiguous(),
        "relation_raw": model.relation.weight.detach().float().cpu().clone().contiguous(),
        "relation": model.relation_embeddings().detach().float().cpu().clone().contiguous(),
    }, str(folder / EMBEDDINGS_FILE))
    ArtifactStore.write_json(folder / CONFIG_FILE, {
        "config": config.model_dump(),
        "num_nodes": model.num_nodes,
        "num_relations": model.num_relations,
        "domains": data.domains,
        "metrics": metrics or {},
    })
    (folder / INDEX_FILE).write_text(json.dumps({
        "uids": data.uids, "entity_types": data.entity_types,
        "relation_types": data.relation_types,
    }))


@dataclass
class EncoderBundle:
    """A loaded encoder version: the served vectors, the uid index and a scorer.

    ``entity_embeddings: [N, d]`` (encoded, real view), ``relation_embeddings: [R, d']`` (real
    view of the forward relations: re/im halves for ComplEx, cos/sin for RotatE)."""

    version: str
    domain: str
    entity_embeddings: Tensor
    relation_embeddings: Tensor
    uid_to_index: dict[str, int]
    relation_types: list[str]
    uids: list[str]
    entity_types: list[str]
    config: EncoderConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    model: KGEncoder | None = None

    def relation_index(self, relation: str) -> int:
        try:
            return self.relation_types.index(relation)
        except ValueError:
            raise InvalidInputError(
                f"unknown relation {relation!r}; the model knows: {', '.join(self.relation_types)}"
            ) from None

    @torch.no_grad()
    def score_tails(self, heads: Tensor, rels: Tensor) -> Tensor:
        """``[B, N]`` scores; ``rels >= R`` are inverse relations (i.e. head prediction)."""
        assert self.model is not None
        return self.model.score_tails(self.entity_embeddings, heads, rels)


def load_checkpoint(folder: Path, domain: str = "", version: str | None = None) -> EncoderBundle:
    """Load a checkpoint folder written by ``save_checkpoint``."""
    meta = json.loads((folder / CONFIG_FILE).read_text())
    index = json.loads((folder / INDEX_FILE).read_text())
    config = EncoderConfig(**meta["config"])
    model = KGEncoder(
        meta["num_nodes"], meta["num_relations"], config.dim, decoder=config.decoder,
        num_layers=config.num_layers, num_bases=config.num_bases, num_blocks=config.num_blocks,
        dropout=config.dropout, gamma=config.gamma, layer=config.layer,
    )
    model.load_state_dict(load_file(str(folder / MODEL_FILE)))
    model.eval()
    vectors = load_file(str(folder / EMBEDDINGS_FILE))
    uids = index["uids"]
    return EncoderBundle(
        version=version or folder.name, domain=domain, entity_embeddings=vectors["entity"],
        relation_embeddings=vectors["relation"], uid_to_index={u: i for i, u in enumerate(uids)},
        relation_types=index["relation_types"], uids=uids,
        entity_types=index.get("entity_types") or [""] * len(uids), config=config,
        metrics=meta.get("metrics", {}), model=model,
    )


_CACHE: dict[tuple[str, str], EncoderBundle] = {}
_CACHE_LOCK = threading.Lock()


def load_active_encoder(settings: Settings, domain: str) -> EncoderBundle:
    """The active encoder of ``domain`` (cached per version); ``ModelNotReadyError`` if none."""
    store = encoder_artifacts(settings)
    version = store.active_version(domain)
    if version is None:
        raise ModelNotReadyError(f"no encoder is trained for domain {domain!r}; train one first")
    key = (str(store.domain_dir(domain).resolve()), version)
    with _CACHE_LOCK:
        bundle = _CACHE.get(key)
    if bundle is None:
        bundle = load_checkpoint(store.path(domain, version), domain, version)
        with _CACHE_LOCK:
            for old in [k for k in _CACHE if k[0] == key[0]]:
                del _CACHE[old]
            _CACHE[key] = bundle
    return bundle
