"""A QA model version on disk: publishing a fusion checkpoint (safetensors per head, the action
space's vectors, ``config.json``) and loading any QA version, fusion or reasoner. Serving reads
versions through this module and never imports training code."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from core.settings import Settings
from fusion.exceptions import QAModelNotReadyError
from fusion.language.verbalize import Wording, phrasing_table
from fusion.model.config import TrainConfig
from fusion.model.model import FusionModel
from fusion.model.space import ActionSpace, GraphFeatures
from fusion.reasoner.checkpoint import ReasonerCheckpoint, is_reasoner, load_reasoner
from graph.artifacts import ArtifactStore

ARTIFACT_KIND = "qa"
MODEL_FILE = "model.safetensors"
TEXT_MODEL_FILE = "model_text.safetensors"
SPACE_FILE = "space.safetensors"
CONFIG_FILE = "config.json"


def qa_artifacts(settings: Settings) -> ArtifactStore:
    return ArtifactStore(settings.artifacts_dir, ARTIFACT_KIND)


def save_checkpoint(settings: Settings, domain: str, space: ActionSpace,
                    heads: dict[str, FusionModel], cfg: TrainConfig,
                    features: GraphFeatures | None, metrics: dict[str, Any],
                    activate: bool = True,
                    phrasings: dict[str, list[list[str]]] | None = None) -> str:
    """Publish a new version folder: safetensors per head + space vectors + config.json.
    ``phrasings``: those the space's texts come from (default: the domain's now)."""
    store = qa_artifacts(settings)
    version = store.new_version_name()
    folder = store.staging_dir(domain, version)
    for name, model in heads.items():
        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  str(folder / (MODEL_FILE if name == "graph" else TEXT_MODEL_FILE)))
    save_file({"text": space.text.contiguous(), "type_text": space.type_text.contiguous()},
              str(folder / SPACE_FILE))
    store.write_json(folder / CONFIG_FILE, {
        "domain": domain, "version": version, "config": cfg.model_dump(),
        "actions": [list(a) for a in space.actions], "types": space.types,
        "heads": {name: {"graph_dim": m.graph_dim if m.use_graph else 0, "hidden": m.hidden,
                         "segment_attention": m.segment_attention,
                         "frontier_graph": m.frontier_graph,
                         "rerank": bool(metrics.get(name, {}).get("rerank", False))}
                  for name, m in heads.items()},
        "encoder_version": features.version if features is not None else None,
        "text_model": "sentence-transformers/all-MiniLM-L6-v2",
        # the phrasings its action texts were built from (``Checkpoint.phrasings_current``)
        "phrasings": phrasings if phrasings is not None else
        phrasing_table(space.relation_types(), space.domain),
        "metrics": metrics, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    store.publish(domain, version, folder, activate=activate)
    return version


@dataclass
class Checkpoint:
    """A loaded QA version: its action space and heads ('graph' and/or 'text')."""

    version: str
    space: ActionSpace
    heads: dict[str, FusionModel]
    config: dict[str, Any]

    def phrasings_current(self) -> bool | None:
        """Whether its domain's phrasings are still those it was trained with (None: a
        checkpoint from before they were recorded). A domain that declares new phrasings
        (``fusion.language.vocabulary``) needs a new model to learn them."""
        recorded = self.config.get("phrasings")
        if recorded is None:
            return None
        return bool(recorded == phrasing_table(self.space.relation_types(), self.space.domain))

    def reranks(self, head: str) -> bool:
        """Whether training chose the zero-shot rerank for ``head`` (``fit``); False for
        checkpoints from before that choice."""
        return bool(self.config["heads"].get(head, {}).get("rerank", False))

    @property
    def wording(self) -> Wording:
        """The phrasings it learnt from; checkpoints from before the choice used "train"."""
        return "all" if self.config["config"].get("wording") == "all" else "train"


def load_checkpoint(folder: Path) -> Checkpoint | ReasonerCheckpoint:
    """A QA version: a fusion checkpoint or a reasoner (``fusion.reasoner``)."""
    if is_reasoner(folder):
        return load_reasoner(folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    vectors = load_file(str(folder / SPACE_FILE))
    actions = [(a[0], a[1]) for a in config["actions"]]
    space = ActionSpace(actions, config["types"], vectors["text"], vectors["type_text"],
                        config.get("domain"),
                        "all" if config["config"].get("wording") == "all" else "train")
    cfg = TrainConfig(**config["config"])
    heads: dict[str, FusionModel] = {}
    for name, head in config["heads"].items():
        model = FusionModel(head["hidden"], head["graph_dim"], use_graph=head["graph_dim"] > 0,
                            dropout=cfg.dropout,
                            segment_attention=bool(head.get("segment_attention", False)),
                            frontier_graph=bool(head.get("frontier_graph", False)))
        model.load_state_dict(load_file(str(folder / (MODEL_FILE if name == "graph"
                                                      else TEXT_MODEL_FILE))))
        heads[name] = model.eval()
    return Checkpoint(folder.name, space, heads, config)


def load_active(settings: Settings, domain: str) -> Checkpoint | ReasonerCheckpoint:
    store = qa_artifacts(settings)
    if store.active_version(domain) is None:
        raise QAModelNotReadyError(
            f"no fine-tuned QA model for domain {domain!r}; run `kgr train qa --domain {domain}` "
            "or ask in zero-shot mode")
    return load_checkpoint(store.active_path(domain))


