"""Hyperparameters of one encoder training run (saved with every checkpoint as config.json)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

# nodes x edges above which 1-N training is too slow for CPUs (e.g. FinDKG: 13.6k x 82k)
BIG_GRAPH_WORK = 2e8


class EncoderConfig(BaseModel):
    """Model, loss, optimiser, schedule and split settings.

    The default is the configuration that measured best on the small benchmark graphs:
    a ComplEx decoder on shallow embeddings (``num_layers=0``), 1-N cross-entropy over all
    entities with reciprocal relations and an N3 regulariser. ``num_layers > 0`` adds R-GCN
    (``layer="rgcn"``) or CompGCN-style (``layer="compgcn"``) message passing;
    ``loss="negative"`` trains with sampled negatives instead of 1-N.
    """

    model_config = ConfigDict(extra="forbid")

    decoder: Literal["distmult", "complex", "rotate"] = "complex"
    dim: int = Field(default=400, ge=2, le=4096, description="reals per entity")
    num_layers: int = Field(default=0, ge=0, le=4, description="message-passing layers (0 = none)")
    layer: Literal["rgcn", "compgcn"] = Field(
        default="rgcn", description="rgcn: a weight per relation type (basis/block "
        "decomposition); compgcn: one shared weight, messages composed with the relation")
    num_bases: int | None = Field(default=None, ge=1)
    num_blocks: int | None = Field(default=None, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    gamma: float = Field(default=6.0, gt=0.0, description="RotatE margin")
    init_scale: float = Field(default=1e-3, gt=0.0)

    neighbor_sampling: bool = Field(
        default=False, description="mini-batch R-GCN on sampled neighbourhoods (big graphs); "
        "needs loss='negative'")
    fanouts: list[int] = Field(default_factory=lambda: [10, 10],
                               description="neighbours sampled per node and hop")

    loss: Literal["1n", "negative"] = "1n"
    num_negatives: int = Field(default=64, ge=1)
    shared_negatives: bool = Field(
        default=False, description="one set of negatives per batch (much faster on big graphs)")
    adversarial_temperature: float = Field(default=1.0, ge=0.0)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    n3: float = Field(default=5e-3, ge=0.0, description="N3 regularisation weight")

    optimizer: Literal["adagrad", "adam"] = "adagrad"
    lr: float = Field(default=0.1, gt=0.0)
    batch_size: int = Field(default=500, ge=1)
    epochs: int = Field(default=100, ge=1, le=100_000)
    eval_every: int = Field(default=5, ge=1)
    patience: int = Field(default=4, ge=1, description="evaluations without a better MRR")
    max_seconds: float | None = Field(
        default=None, gt=0.0, description="wall-clock training budget: training stops at the "
        "first batch past it, evaluates and keeps the best state (benchmarks against peers "
        "given the same budget)")
    max_eval_triples: int | None = Field(default=5000, ge=1)
    eval_batch_size: int = Field(default=512, ge=1)

    valid_fraction: float = Field(default=0.05, ge=0.0, lt=0.5)
    test_fraction: float = Field(default=0.05, ge=0.0, lt=0.5)
    seed: int = 0
    device: str = "auto"
    amp: bool = True

    @model_validator(mode="after")
    def _check(self) -> EncoderConfig:
        if self.decoder in ("complex", "rotate") and self.dim % 2:
            raise ValueError(f"the {self.decoder} decoder needs an even dim, got {self.dim}")
        if self.neighbor_sampling and self.loss != "negative":
            raise ValueError("neighbor_sampling needs loss='negative' (1-N encodes every node)")
        if self.num_bases is not None and self.num_blocks is not None:
            raise ValueError("choose num_bases or num_blocks, not both")
        if self.num_blocks is not None and self.dim % self.num_blocks:
            raise ValueError(f"dim {self.dim} is not divisible by num_blocks {self.num_blocks}")
        return self

    @classmethod
    def for_graph(cls, num_nodes: int, num_edges: int, **overrides: object) -> EncoderConfig:
        """The default for a graph of this size: 1-N ComplEx-N3 when scoring every entity for
        every training triple is cheap enough (small graphs: best measured quality), else
        batch-shared negative sampling (big graphs such as the full HPO graph on CPU)."""
        base: dict[str, object] = {}
        if num_nodes * max(num_edges, 1) > BIG_GRAPH_WORK:
            base = {"dim": 200, "loss": "negative", "num_negatives": 1024,
                    "shared_negatives": True, "optimizer": "adam", "lr": 1e-2, "n3": 0.0,
                    "init_scale": 0.1, "batch_size": 1000, "epochs": 3, "eval_every": 1,
                    "patience": 2, "max_eval_triples": 1000}
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)
