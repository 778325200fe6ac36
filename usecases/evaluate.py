"""Evaluate: the QA model of a domain (``kgr eval qa``, ``POST /v1/eval/qa``) and its encoder
(``kgr eval encoder``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from core.settings import Settings
from fusion.exceptions import QuestionError
from fusion.reasoner.learn import ProgressFn
from fusion.serve.schemas import EvalMode, EvalQARequest

if TYPE_CHECKING:  # the service's module loads torch and the models' code
    from neo4j import Driver

    from fusion.serve.pipeline import QAService
    from graph.encoder import EncoderBundle

# the held-out evaluation questions are generated beside this many training ones per hop
# count, so that they are drawn as ``kgr train questions`` draws them
TRAIN_PER_HOP = 600


def eval_mode(mode: str, use_graph: bool = True) -> EvalMode:
    """The evaluation mode of the CLI's ``--mode`` and ``--no-graph-embeddings``."""
    if mode not in ("fine-tuned", "zero-shot"):
        raise QuestionError("mode must be fine-tuned or zero-shot")
    return "fine-tuned-no-graph" if mode == "fine-tuned" and not use_graph else mode  # type: ignore[return-value]


@dataclass(frozen=True)
class QAEvaluationRequest:
    """What to evaluate on: the ``rows`` given ({question, answers, hops?}), or, without
    them, ``generate_per_hop`` generated questions per hop count with held-out templates;
    each of ``modes`` is measured on the same rows."""

    rows: Sequence[dict[str, Any]] = ()
    generate_per_hop: int = 100
    modes: Sequence[EvalMode] = get_args(EvalMode)
    predicted_links: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [m for m in self.modes if m not in get_args(EvalMode)]
        if unknown:
            raise QuestionError(f"modes must be some of {', '.join(get_args(EvalMode))}")

    @classmethod
    def of(cls, body: EvalQARequest) -> QAEvaluationRequest:
        """The request of ``POST /v1/eval/qa``."""
        return cls(rows=[dict(r) for r in body.data or []],
                   generate_per_hop=body.generate_per_hop, modes=body.modes,
                   predicted_links=body.predicted_links)


def evaluate_qa(settings: Settings, driver: Driver, service: QAService, domain: str,
                request: QAEvaluationRequest,
                progress: ProgressFn | None = None) -> dict[str, Any]:
    """Hits@1, Hits@5 and MRR per hop count, for each mode: ``{"domain", "questions",
    "results": {mode: fusion.learn.evaluate.evaluate_rows's result}}``."""
    from fusion.learn.evaluate import evaluate_rows
    from fusion.learn.questions import generate_splits
    from fusion.model.graphdata import DomainGraph

    rows = [dict(r) for r in request.rows]
    if not rows:
        graph = DomainGraph.load(driver, settings.neo4j_database, domain)
        _, rows = generate_splits(graph, TRAIN_PER_HOP, request.generate_per_hop, request.seed)
    qa = service.domain(domain)
    modes = list(request.modes)
    results: dict[str, Any] = {}
    for i, mode in enumerate(modes):
        def sub(f: float, message: str, i: int = i) -> None:
            if progress is not None:
                progress((i + f) / len(modes), message)

        results[mode] = evaluate_rows(
            qa, rows, "zero-shot" if mode == "zero-shot" else "fine-tuned",
            use_graph=mode == "fine-tuned", progress=sub,
            predicted_links=request.predicted_links)
    return {"domain": domain, "questions": len(rows), "results": results}


@dataclass(frozen=True)
class EncoderEvaluation:
    """The active encoder's filtered link-prediction metrics (``metrics["test"]`` ranked
    again when asked to recompute) and how many versions are stored."""

    domain: str
    version: str
    metrics: dict[str, Any]
    versions_stored: int


def evaluate_encoder(settings: Settings, driver: Driver | None, domain: str,
                     recompute: bool = False) -> EncoderEvaluation:
    """The metrics recorded at training; with ``recompute`` (needs ``driver``) the graph is
    exported again, the training split rebuilt with the same seed and its test triples ranked
    with the active model (facts added since then count, removed ones drop out)."""
    from graph.encoder import encoder_artifacts, load_active_encoder

    bundle = load_active_encoder(settings, domain)
    metrics: dict[str, Any] = dict(bundle.metrics)
    if recompute:
        if driver is None:
            raise ValueError("recomputing the metrics needs a driver")
        metrics["test"] = _rank_test_triples(settings, driver, domain, bundle)
    return EncoderEvaluation(domain=domain, version=bundle.version, metrics=metrics,
                             versions_stored=len(encoder_artifacts(settings).versions(domain)))


def _rank_test_triples(settings: Settings, driver: Driver, domain: str,
                       bundle: EncoderBundle) -> dict[str, Any]:
    import torch

    from graph.encoder import FilterIndex, export_domains, split_triples
    from graph.encoder.evaluate import evaluate

    data = export_domains(driver, settings.neo4j_database, [domain], settings.batch_size)
    config = bundle.config
    splits = split_triples(data.triples(), config.valid_fraction, config.test_fraction,
                           config.seed)
    # the graph's entities and relation types as the model numbers them; -1: unknown to it
    rel_map = torch.tensor([bundle.relation_types.index(r) if r in bundle.relation_types
                            else -1 for r in data.relation_types] or [0], dtype=torch.long)
    ent_map = torch.tensor([bundle.uid_to_index.get(u, -1) for u in data.uids],
                           dtype=torch.long)

    def remap(t: torch.Tensor) -> torch.Tensor:
        out = torch.stack([ent_map[t[:, 0]], rel_map[t[:, 1]], ent_map[t[:, 2]]], 1)
        return out[(out >= 0).all(1)]

    known = FilterIndex(remap(splits.all()), len(bundle.relation_types))
    num_rel = len(bundle.relation_types)

    def tails(h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return bundle.score_tails(h, r)

    def heads(r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return bundle.score_tails(t, r + num_rel)

    result = evaluate(tails, heads, remap(splits.test), known)
    return {k: v.as_dict() for k, v in result.items()}
