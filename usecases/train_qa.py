"""Train QA (``kgr train qa`` and ``POST /v1/train/qa``): gather the rows, pick the model
kind, train and publish."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from core.settings import Settings
from fusion.exceptions import QuestionError, TrainingDataError
from fusion.model.graphdata import DomainGraph
from fusion.reasoner.learn import ProgressFn
from fusion.serve.schemas import TrainQARequest

if TYPE_CHECKING:  # the service's module loads torch and the models' code
    from fusion.serve.pipeline import QAService

ModelKind = Literal["auto", "reasoner", "fusion"]


@dataclass(frozen=True)
class QATrainingRequest:
    """What to train on and how. ``model``: "reasoner" (learns the hop count and relations
    from question-answer pairs, ``fusion.reasoner``), "fusion" (the fusion model over the
    question's parse, made for generated questions), or "auto": the reasoner when labelled
    rows are given and no questions are generated, else the fusion model. An unusable
    request is refused when it is made, before a job is queued or the graph read."""

    rows: Sequence[dict[str, Any]] = ()
    generate_per_hop: int = 0
    model: ModelKind = "auto"
    epochs: int | None = None
    use_graph: bool = True
    init_active: bool = False
    hold_out_wording: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in get_args(ModelKind):
            raise QuestionError("model must be auto, reasoner or fusion")
        if not self.rows and not self.generate_per_hop:
            raise TrainingDataError("give data rows or generate_per_hop > 0")
        if self.init_active and self.kind() == "reasoner":
            raise TrainingDataError("--init-from-active applies to the fusion model; the "
                                    "reasoner learns from the rows given")

    @classmethod
    def of(cls, body: TrainQARequest) -> QATrainingRequest:
        """The request of ``POST /v1/train/qa``."""
        return cls(rows=[dict(r) for r in body.data or []],
                   generate_per_hop=body.generate_per_hop, model=body.model,
                   epochs=body.epochs, use_graph=body.graph_embeddings,
                   init_active=body.init_from_active, hold_out_wording=body.hold_out_wording)

    def kind(self) -> Literal["reasoner", "fusion"]:
        if self.model != "auto":
            return self.model
        return "reasoner" if self.rows and not self.generate_per_hop else "fusion"


def train_qa(settings: Settings, driver: Any, domain: str, request: QATrainingRequest,
             progress: ProgressFn | None = None,
             service: QAService | None = None) -> dict[str, Any]:
    """Train and activate a QA model for ``domain``; returns the training summary. A
    ``service`` that serves questions (the API's) drops what it had loaded of the domain, so
    that the next question uses the new model."""
    from fusion.language.verbalize import Wording
    from fusion.learn.questions import generate_questions
    from fusion.learn.train import train_domain
    from fusion.model.config import TrainConfig
    from fusion.reasoner.model import ReasonerConfig
    from fusion.reasoner.train import train_reasoner

    graph = DomainGraph.load(driver, settings.neo4j_database, domain)
    rows = list(request.rows)
    wording: Wording = "train" if request.hold_out_wording else "all"
    if request.generate_per_hop:
        n = request.generate_per_hop
        rows += generate_questions(graph, {1: n, 2: n, 3: n}, wording, request.seed)
    if request.kind() == "reasoner":
        cfg = ReasonerConfig(seed=request.seed, answer_scorer=request.use_graph)
        if request.epochs:
            cfg = cfg.model_copy(update={"epochs": request.epochs})
        result = train_reasoner(settings, driver, domain, rows, cfg, graph=graph,
                                progress=progress)
    else:
        result = train_domain(
            settings, driver, domain, rows,
            TrainConfig(epochs=request.epochs, seed=request.seed, wording=wording),
            graph=graph, use_graph=request.use_graph, init_active=request.init_active,
            progress=progress)
    if service is not None:
        service.invalidate(domain)
    return result
