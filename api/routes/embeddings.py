"""Embeddings: similar entities (vector index), link prediction, and encoder training jobs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AdminStoreDep, DriverDep, JobsDep, ReaderStoreDep, SettingsDep
from api.errors import errors
from api.jobs import TRAIN_ENCODER, Job, ProgressFn
from core.errors import InvalidInputError
from graph.encoder import encoder_artifacts, load_active_encoder
from graph.encoder.serve import (
    MAX_K,
    active_embedding,
    predict_links,
    similar_entities,
)
from graph.schema import check_allowed, live_entity_types
from usecases.train_encoder import EncoderOptions, EncoderTrainingRequest, train_encoder

router = APIRouter(tags=["embeddings"])


class SimilarItem(BaseModel):
    uid: str
    name: str | None
    types: list[str]
    score: float = Field(description="cosine similarity of the embeddings")


class SimilarResponse(BaseModel):
    uid: str
    domain: str
    version: str = Field(description="the encoder version whose embeddings answered")
    items: list[SimilarItem]


class PredictionItem(BaseModel):
    uid: str
    name: str | None
    types: list[str]
    score: float
    known: bool = Field(description="the fact is already in the graph")


class PredictResponse(BaseModel):
    head: str | None
    relation: str
    tail: str | None
    domain: str
    version: str
    items: list[PredictionItem]


class TrainEncoderRequest(BaseModel):
    """Start training the encoder of one domain; unset fields keep the defaults chosen for
    the graph's size (``EncoderConfig.for_graph``)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    domain: str = Field(min_length=1, max_length=100)
    epochs: int | None = Field(default=None, ge=1, le=10_000)
    dim: int | None = Field(default=None, ge=2, le=4096)
    decoder: Literal["distmult", "complex", "rotate"] | None = None
    num_layers: int | None = Field(default=None, ge=0, le=4)
    loss: Literal["1n", "negative"] | None = None
    lr: float | None = Field(default=None, gt=0.0, le=10.0)
    batch_size: int | None = Field(default=None, ge=1, le=100_000)
    seed: int | None = None

    def training(self) -> EncoderTrainingRequest:
        """The run asked for (``InvalidInputError`` for options ``EncoderConfig`` refuses)."""
        return EncoderTrainingRequest(EncoderOptions(**self.model_dump(exclude={"domain"})))


class EncoderStatus(BaseModel):
    domain: str
    version: str | None = Field(description="active model version (artifacts)")
    served_version: str | None = Field(description="version of the vectors in Neo4j")
    dim: int | None
    metrics: dict[str, Any] = Field(default_factory=dict)


Uid = Annotated[str, Path(min_length=1, max_length=512)]
K = Annotated[int, Query(ge=1, le=MAX_K, description="how many results")]


@router.get("/v1/entities/{uid}/similar", response_model=SimilarResponse,
            summary="Entities with the nearest embeddings (cosine, vector index)",
            responses=errors(404, 409))
def similar(
    uid: Uid, driver: DriverDep, settings: SettingsDep, store: ReaderStoreDep, k: K = 10,
    type: Annotated[list[str] | None, Query(description="keep only these entity types")] = None,
    domain: Annotated[str | None, Query(description="must be the entity's domain")] = None,
) -> SimilarResponse:
    database = settings.neo4j_database
    entity = store.get_entity(uid)  # 404 outside the key's domains, as for a missing one
    store.check_visible(domain)
    types = None
    if type:
        types = check_allowed(type, live_entity_types(driver, database), "entity type")
    version, hits = similar_entities(driver, database, uid, k, types, domain)
    return SimilarResponse(
        uid=uid, domain=domain or entity.domain, version=version,
        items=[SimilarItem(uid=h.uid, name=h.name, types=h.types, score=h.score) for h in hits],
    )


@router.get("/v1/predict", response_model=PredictResponse,
            summary="Link prediction: top-k tails of (head, relation, ?) or heads of "
                    "(?, relation, tail)", responses=errors(404, 409))
def predict(
    driver: DriverDep, settings: SettingsDep, store: ReaderStoreDep,
    relation: Annotated[str, Query(min_length=1, max_length=64)],
    head: Annotated[str | None, Query(max_length=512)] = None,
    tail: Annotated[str | None, Query(max_length=512)] = None,
    k: K = 10,
    exclude_known: Annotated[bool, Query(description="leave out facts already known")] = False,
) -> PredictResponse:
    if (head is None) == (tail is None):
        raise InvalidInputError("give exactly one of 'head' and 'tail'")
    anchor = head if head is not None else tail
    assert anchor is not None
    database = settings.neo4j_database
    domain = store.get_entity(anchor).domain  # 404 outside the key's domains
    bundle = load_active_encoder(settings, domain)
    hits = predict_links(driver, database, bundle, relation, head=head, tail=tail, k=k,
                         exclude_known=exclude_known)
    return PredictResponse(
        head=head, relation=relation, tail=tail, domain=domain, version=bundle.version,
        items=[PredictionItem(uid=h.uid, name=h.name, types=h.types, score=h.score,
                              known=h.known) for h in hits],
    )


@router.get("/v1/embeddings/{domain}", response_model=EncoderStatus,
            summary="The encoder version a domain serves", responses=errors(404))
def encoder_status(domain: str, driver: DriverDep, settings: SettingsDep,
                   store: ReaderStoreDep) -> EncoderStatus:
    store.check_domain(domain)
    served = active_embedding(driver, settings.neo4j_database, domain)
    version = encoder_artifacts(settings).active_version(domain)
    metrics: dict[str, Any] = {}
    if version is not None:
        metrics = load_active_encoder(settings, domain).metrics
    return EncoderStatus(domain=domain, version=version,
                         served_version=served.version if served else None,
                         dim=served.dim if served else None, metrics=metrics)


@router.post("/v1/train/encoder", response_model=Job, status_code=202,
             summary="Train a domain's encoder in the background (admin); one job per domain",
             responses=errors(404, 409))
def train_encoder_job(body: TrainEncoderRequest, driver: DriverDep, settings: SettingsDep,
                      store: AdminStoreDep, jobs: JobsDep) -> Job:
    store.check_domain(body.domain)
    request = body.training()

    def run(progress: ProgressFn) -> dict[str, Any]:
        return asdict(train_encoder(settings, driver, body.domain, request, progress))

    return jobs.submit_for_model(TRAIN_ENCODER, "encoder", body.domain, run)
