"""/v1/ask: graph-augmented question answering; /v1/train/qa and /v1/eval/qa as admin jobs."""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import AdminDep, AdminStoreDep, DriverDep, JobsDep, ReaderDep, SettingsDep
from api.errors import errors
from api.jobs import EVAL_QA, TRAIN_QA, Job
from fusion.pipeline import QAService
from fusion.schemas import (
    AskBatchRequest,
    AskBatchResponse,
    AskRequest,
    AskResponse,
    EvalQARequest,
    PhrasingsResponse,
    TrainQARequest,
)
from graph.lock import ModelLock

router = APIRouter(tags=["ask"])

_SERVICE_LOCK = threading.Lock()


def qa_service(request: Request) -> QAService:
    """One QAService per app (models, alias indexes and neighbour caches loaded once)."""
    return service_of(request.app.state)


def service_of(state: Any) -> QAService:
    """The app's QAService (``app.state``), made on first use."""
    with _SERVICE_LOCK:
        service = getattr(state, "qa_service", None)
        if service is None:
            service = QAService(state.settings, state.driver)
            state.qa_service = service
    return service


def observe_answers(request: Request, responses: list[AskResponse]) -> None:
    """Count each question's outcome in ``/metrics`` (``kgr_questions_total``)."""
    for r in responses:
        outcome = "answered" if r.answers else "no_entity" if not r.linked_entities \
            else "no_answer"
        request.app.state.metrics.observe_answer(r.domain, r.mode, outcome)


@router.post("/v1/ask", response_model=AskResponse, summary="Answer a question from the graph",
             responses=errors(404, 409))
def ask(body: AskRequest, request: Request, principal: ReaderDep) -> AskResponse:
    """Ranked answers with scores, evidence paths and an explanation, the linked entities, the
    model versions and the timings. 200 with no answers (and the reason) when the question
    names no entity of the domain; 404 for an unknown domain; 409 for mode 'fine-tuned' before
    a model is trained, or for ``predicted_links`` before an encoder is trained. A "how
    many" question (or ``count: true``) also gets ``count``: how many entities the best
    answer's reading reaches in the whole graph."""
    response = qa_service(request).ask(body.question, body.domain, body.top_k, body.max_hops,
                                       body.mode, predicted_links=body.predicted_links,
                                       count=body.count, allowed=principal.domain_list)
    observe_answers(request, [response])
    return response


@router.post("/v1/ask/batch", response_model=AskBatchResponse,
             summary="Answer up to 64 questions in one request", responses=errors(404, 409))
def ask_batch(body: AskBatchRequest, request: Request,
              principal: ReaderDep) -> AskBatchResponse:
    """As `/v1/ask` for each question, with the same options, in their order; each domain's
    questions are linked and encoded in one batch, so a batch costs less per question than
    single requests (`bench/ask_latency.py --batch`). Every question is checked first: one that
    is blank gives 422 for the batch, naming it; without a domain, each question goes to its
    own."""
    started = time.perf_counter()
    results = qa_service(request).ask_batch(
        body.questions, body.domain, body.top_k, body.max_hops, body.mode,
        predicted_links=body.predicted_links, count=body.count, allowed=principal.domain_list)
    observe_answers(request, results)
    return AskBatchResponse(results=results, timings_ms={
        "total": round(1000 * (time.perf_counter() - started), 2)})


@router.get("/v1/ask/phrasings", response_model=PhrasingsResponse,
            summary="How questions name each relationship type of a domain",
            responses=errors(404))
def domain_phrasings(domain: Annotated[str, Query(min_length=1, max_length=100)],
                     request: Request, principal: ReaderDep) -> PhrasingsResponse:
    """Each relationship type's phrasings ({x}: the entity a question names), where they come
    from (declared in the domain's migration, kgr's own, read from the type's name, or fixed
    frames: declare phrasings for those), and whether the active QA model learnt them. 404
    for an unknown domain."""
    return qa_service(request).phrasings(principal.check_domain(domain))


@router.post("/v1/ask/refresh", summary="Forget what the ask service has read of the graph")
def refresh(request: Request, _: AdminDep) -> dict[str, bool]:
    """The service notices migrations and writes that add or delete nodes or relationships on
    its own; a write made outside kgr that changes only properties (a renamed entity, a new
    alias) is seen after this call."""
    qa_service(request).graph_changed()
    return {"refreshed": True}


@router.post("/v1/train/qa", response_model=Job, status_code=202,
             summary="Train the QA model of a domain (background job)",
             responses=errors(404, 409))
def train_qa(body: TrainQARequest, request: Request, settings: SettingsDep, driver: DriverDep,
             store: AdminStoreDep, jobs: JobsDep) -> Job:
    from fusion.exceptions import TrainingDataError
    from fusion.training import QATrainingRequest, train_qa

    store.check_domain(body.domain)
    plan = QATrainingRequest(
        rows=[dict(r) for r in body.data or []], generate_per_hop=body.generate_per_hop,
        model=body.model, epochs=body.epochs, use_graph=body.graph_embeddings,
        init_active=body.init_from_active, hold_out_wording=body.hold_out_wording)
    if not plan.rows and not plan.generate_per_hop:
        raise TrainingDataError("give data rows or generate_per_hop > 0")
    service = qa_service(request)

    def run(progress: Any) -> dict[str, Any]:
        result = train_qa(settings, driver, body.domain, plan, progress)
        service.invalidate(body.domain)
        return result

    lock = ModelLock(driver, settings.neo4j_database, "qa", body.domain)
    return jobs.submit(TRAIN_QA, body.domain, run, precheck=lock.check_free)


@router.post("/v1/eval/qa", response_model=Job, status_code=202,
             summary="Evaluate the QA model of a domain (background job)",
             responses=errors(404, 409))
def eval_qa(body: EvalQARequest, request: Request, settings: SettingsDep, driver: DriverDep,
            store: AdminStoreDep, jobs: JobsDep) -> Job:
    from fusion.evaluate import evaluate_rows
    from fusion.graphdata import DomainGraph
    from fusion.questions import generate_splits

    store.check_domain(body.domain)
    service = qa_service(request)

    def run(progress: Any) -> dict[str, Any]:
        rows = [dict(r) for r in body.data or []]
        if not rows:
            graph = DomainGraph.load(driver, settings.neo4j_database, body.domain)
            _, rows = generate_splits(graph, 600, body.generate_per_hop)
        qa = service.domain(body.domain)
        results = {}
        for i, mode in enumerate(body.modes):
            def sub(f: float, m: str, i: int = i) -> None:
                progress((i + f) / len(body.modes), m)

            results[mode] = evaluate_rows(
                qa, rows, "zero-shot" if mode == "zero-shot" else "fine-tuned",
                use_graph=mode == "fine-tuned", progress=sub,
                predicted_links=body.predicted_links)
        return {"domain": body.domain, "questions": len(rows), "results": results}

    return jobs.submit(EVAL_QA, body.domain, run)
