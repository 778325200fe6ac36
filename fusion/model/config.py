"""Hyperparameters of a fusion-model training run (``fusion.learn.train``), recorded in each
checkpoint. What each default was chosen on is in ``bench/RESULTS.md``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from fusion.language.verbalize import Wording


class TrainConfig(BaseModel):
    """Hyperparameters of a QA training run."""

    hidden: int = 192
    dropout: float = 0.1
    # ``epochs``, ``lr``, ``lr_schedule`` and ``patience``: None = by the size of the training
    # set (``resolved``): ``MANY_EXAMPLES`` or ``FEW_EXAMPLES``
    epochs: int | None = None
    batch_size: int = 16
    lr: float | None = None
    # "cosine": epoch e (from 0) trains at lr * (1 + cos(pi * e / epochs)) / 2, the same in the
    # selection runs and the refit
    lr_schedule: Literal["cosine", "constant"] | None = None
    weight_decay: float = 1e-4
    patience: int | None = None
    val_fraction: float = 0.1
    # a file smaller than this chooses its epochs by k-fold cross-validation, because a 10%
    # split of a few tens of questions validates on too few to pick an epoch
    kfold_below: int = 200
    folds: int = 5
    seed: int = 0
    max_hops: int = 3
    per_type: int = 30
    frontier: int = 60
    beam: int = 8
    max_val: int = 240
    # how generated questions (rows that record their phrasings) are split for model
    # selection: "random" (worded like the training ones, so every phrasing is trained on) or
    # "phrasing" (a hop's ``validation_phrasing`` held out of training)
    validation: Literal["random", "phrasing"] = "random"
    segment_attention: bool = True
    # model selection: the earliest epoch within this many standard errors of the best
    # validation Hits@1; 0 picks the best epoch
    select_within_se: float = 0.0
    # a graph head starts from the text head and trains only its graph terms (a residual), so
    # that it cannot undo what the text head learnt
    graph_residual_only: bool = True
    # the graph terms are kept only where they answer more validation questions than the text
    # head they start from, by an exact sign test at this level; otherwise the text head serves
    # (``models.graph_embeddings`` false). None keeps them whenever selection picks an epoch
    # past 0. A test, because selection breaks Hits@1 ties by loss, which alone would keep
    # terms that answer no more questions
    graph_terms_p: float | None = 0.05
    # the graph head sees where each path prefix stands: the mean graph embedding of its
    # frontier (``FusionModel.frontier_graph``)
    frontier_graph: bool = True
    # the phrasings the action texts are built from: "all" for the models kgr serves, "train"
    # for a benchmark that measures held-out wording (its training rows must match:
    # ``generate_questions(..., split="train")``); recorded in the checkpoint, so that
    # ``kgr eval qa`` can say when its generated questions are not held out
    wording: Wording = "all"

    def resolved(self, n_examples: int) -> TrainConfig:
        """This config with its None fields set for a training set of ``n_examples``: fewer
        than ``kfold_below`` (a user's few-shot file) take ``FEW_EXAMPLES``, more
        ``MANY_EXAMPLES``."""
        defaults = FEW_EXAMPLES if n_examples < self.kfold_below else MANY_EXAMPLES
        return self.model_copy(update={k: v for k, v in defaults.items()
                                       if getattr(self, k) is None})


# Generated questions (1,800 for a built-in domain): a low rate decaying over the epochs, so
# that any epoch selection keeps has settled
MANY_EXAMPLES: dict[str, Any] = {"epochs": 12, "lr": 1e-3, "lr_schedule": "cosine",
                                 "patience": 5}
# Tens of a user's questions (few-shot from the active model, k-fold selection): few optimiser
# steps an epoch, so a higher rate, and every epoch is tried (patience = epochs) because a few
# validation questions a fold make a plateau noise
FEW_EXAMPLES: dict[str, Any] = {"epochs": 30, "lr": 3e-3, "lr_schedule": "constant",
                                "patience": 30}
