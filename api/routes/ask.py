"""/v1/ask: graph-augmented question answering; /v1/train/qa and /v1/eval/qa as admin jobs."""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import (
    AdminDep,
    AdminStoreDep,
    DriverDep,
    JobsDep,
    MetricsDep,
    QAServiceDep,
    ReaderDep,
    SettingsDep,
)
from api.errors import errors
from api.jobs import EVAL_QA, TRAIN_QA, Job
from api.metrics import Metrics
from fusion.serve.schemas import (
    AskBatchRequest,
    AskBatchResponse,
    AskRequest,
    AskResponse,
    EvalQARequest,
    PhrasingsResponse,
    TrainQARequest,
)
from usecases import ask as asking
from usecases.evaluate import QAEvaluationRequest, evaluate_qa
from usecases.train_qa import QATrainingRequest
from usecases.train_qa import train_qa as train_qa_model

router = APIRouter(tags=["ask"])


def observe_answers(metrics: Metrics, responses: list[AskResponse]) -> None:
    """Count each question's outcome in ``/metrics`` (``kgr_questions_total``)."""
    for r in responses:
        outcome = "answered" if r.answers else "no_entity" if not r.linked_entities \
            else "no_answer"
        metrics.observe_answer(r.domain, r.mode, outcome)


@router.post("/v1/ask", response_model=AskResponse, summary="Answer a question from the graph",
             responses=errors(404, 409))
def ask(body: AskRequest, service: QAServiceDep, metrics: MetricsDep,
        principal: ReaderDep) -> AskResponse:
    """Ranked answers with scores, evidence paths and an explanation, the linked entities, the
    model versions and the timings. 200 with no answers (and the reason) when the question
    names no entity of the domain; 404 for an unknown domain; 409 for mode 'fine-tuned' before
    a model is trained, or for ``predicted_links`` before an encoder is trained. A "how
    many" question (or ``count: true``) also gets ``count``: how many entities the best
    answer's reading reaches in the whole graph."""
    response = asking.ask(service, body.question, body, principal.domain_list)
    observe_answers(metrics, [response])
    return response


@router.post("/v1/ask/batch", response_model=AskBatchResponse,
             summary="Answer up to 64 questions in one request", responses=errors(404, 409))
def ask_batch(body: AskBatchRequest, service: QAServiceDep, metrics: MetricsDep,
              principal: ReaderDep) -> AskBatchResponse:
    """As `/v1/ask` for each question, with the same options, in their order; each domain's
    questions are linked and encoded in one batch, so a batch costs less per question than
    single requests (`bench/ask_latency.py --batch`). Every question is checked first: one that
    is blank gives 422 for the batch, naming it; without a domain, each question goes to its
    own."""
    started = time.perf_counter()
    results = asking.ask_batch(service, body.questions, body, principal.domain_list)
    observe_answers(metrics, results)
    return AskBatchResponse(results=results, timings_ms={
        "total": round(1000 * (time.perf_counter() - started), 2)})


@router.get("/v1/ask/phrasings", response_model=PhrasingsResponse,
            summary="How questions name each relationship type of a domain",
            responses=errors(404))
def domain_phrasings(domain: Annotated[str, Query(min_length=1, max_length=100)],
                     service: QAServiceDep, principal: ReaderDep) -> PhrasingsResponse:
    """Each relationship type's phrasings ({x}: the entity a question names), where they come
    from (declared in the domain's migration, kgr's own, read from the type's name, or fixed
    frames: declare phrasings for those), and whether the active QA model learnt them. 404
    for an unknown domain."""
    return service.phrasings(principal.check_domain(domain))


@router.post("/v1/ask/refresh", summary="Forget what the ask service has read of the graph")
def refresh(service: QAServiceDep, _: AdminDep) -> dict[str, bool]:
    """The service notices migrations and writes that add or delete nodes or relationships on
    its own; a write made outside kgr that changes only properties (a renamed entity, a new
    alias) is seen after this call."""
    service.graph_changed()
    return {"refreshed": True}


@router.post("/v1/train/qa", response_model=Job, status_code=202,
             summary="Train the QA model of a domain (background job)",
             responses=errors(404, 409))
def train_qa(body: TrainQARequest, service: QAServiceDep, settings: SettingsDep,
             driver: DriverDep, store: AdminStoreDep, jobs: JobsDep) -> Job:
    store.check_domain(body.domain)
    run = partial(train_qa_model, settings, driver, body.domain, QATrainingRequest.of(body),
                  service=service)
    return jobs.submit_for_model(TRAIN_QA, "qa", body.domain, run)


@router.post("/v1/eval/qa", response_model=Job, status_code=202,
             summary="Evaluate the QA model of a domain (background job)",
             responses=errors(404, 409))
def eval_qa(body: EvalQARequest, service: QAServiceDep, settings: SettingsDep,
            driver: DriverDep, store: AdminStoreDep, jobs: JobsDep) -> Job:
    store.check_domain(body.domain)
    return jobs.submit(EVAL_QA, body.domain, partial(
        evaluate_qa, settings, driver, service, body.domain, QAEvaluationRequest.of(body)))
