"""Train the encoder (``kgr train encoder`` and ``POST /v1/train/encoder``): train a domain's
graph encoder, save a versioned checkpoint and serve it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from core.errors import InvalidInputError
from core.settings import Settings

if TYPE_CHECKING:  # torch and the encoder load in seconds: only when a run starts
    from neo4j import Driver

    from graph.encoder.pipeline import Progress


@dataclass(frozen=True)
class EncoderOptions:
    """The hyperparameters a user may set (``graph.encoder.EncoderConfig`` fields); None
    keeps the default chosen for the graph's size (``EncoderConfig.for_graph``)."""

    epochs: int | None = None
    dim: int | None = None
    decoder: str | None = None
    num_layers: int | None = None
    loss: str | None = None
    lr: float | None = None
    batch_size: int | None = None
    patience: int | None = None
    eval_every: int | None = None
    seed: int | None = None

    def overrides(self) -> dict[str, Any]:
        """The options set, checked now (before the graph is read): a bad value is an
        ``InvalidInputError`` that names it."""
        from graph.encoder import EncoderConfig

        chosen = {k: v for k, v in asdict(self).items() if v is not None}
        try:
            EncoderConfig.for_graph(0, 0, **chosen)
        except ValueError as exc:
            raise InvalidInputError(f"invalid encoder configuration: {exc}") from exc
        return chosen


@dataclass(frozen=True)
class EncoderTrainingRequest:
    """A training run: the options, DDP ``processes`` and whether the vectors are written
    back into Neo4j (the served embeddings)."""

    options: EncoderOptions = field(default_factory=EncoderOptions)
    processes: int = 1
    write_back: bool = True

    def __post_init__(self) -> None:
        self.options.overrides()  # a bad option is refused before a job is queued


@dataclass(frozen=True)
class EncoderTrained:
    """The new active version, its metrics and the size of what it learnt."""

    version: str
    metrics: dict[str, Any]
    entities: int
    relations: int


def train_encoder(settings: Settings, driver: Driver, domain: str,
                  request: EncoderTrainingRequest,
                  progress: Progress | None = None) -> EncoderTrained:
    """Train, publish and serve a new encoder version of ``domain``; the previous one stays
    served if any step fails."""
    from graph.encoder import load_active_encoder, train_domain

    version = train_domain(settings, driver, domain, None, progress=progress,
                           write_back=request.write_back, processes=request.processes,
                           overrides=request.options.overrides())
    bundle = load_active_encoder(settings, domain)
    return EncoderTrained(version=version, metrics=bundle.metrics, entities=len(bundle.uids),
                          relations=len(bundle.relation_types))
