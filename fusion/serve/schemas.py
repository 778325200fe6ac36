"""Pydantic models of the ask API (shared by the API, the CLI and the benchmarks)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["zero-shot", "fine-tuned"]
EvalMode = Literal["zero-shot", "fine-tuned", "fine-tuned-no-graph"]
MAX_QUESTION_CHARS = 500


class AskOptions(BaseModel):
    """How to answer: the fields a single question and a batch share."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    domain: str | None = Field(default=None, max_length=100,
                               description="Domain to ask; default: the one whose entities the "
                               "question mentions")
    top_k: int = Field(default=10, ge=1, le=100)
    max_hops: int = Field(default=3, ge=1, le=3)
    mode: Mode | None = Field(default=None, description="default: fine-tuned when a model is "
                              "trained for the domain, else zero-shot")
    predicted_links: bool = Field(
        default=False, description="also follow links that the domain's graph encoder predicts "
        "but the graph does not record (marked in the evidence, with their probability); "
        "needs a trained encoder")
    count: bool | None = Field(
        default=None, description="also say how many entities the best reading reaches "
        "(`count` in the answer); default: when the question asks 'how many'")


class AskRequest(AskOptions):
    """A natural-language question about one domain's graph."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "Which genes are associated with Marfan syndrome?", "domain": "medical"},
        {"question": "Who controls Tesla Inc.?", "domain": "finance", "top_k": 5,
         "max_hops": 2},
    ]})

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS,
                          description="e.g. 'Which genes are associated with Marfan syndrome?'")


MAX_BATCH_QUESTIONS = 64


class AskBatchRequest(AskOptions):
    """Several questions answered in one request, with the same options."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"questions": ["Which genes are associated with Marfan syndrome?",
                       "What phenotypes does Marfan syndrome present?"],
         "domain": "medical", "top_k": 5},
    ]})

    questions: list[Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]] = \
        Field(min_length=1, max_length=MAX_BATCH_QUESTIONS)



class EvidenceHop(BaseModel):
    """One relationship of an evidence path, in its stored direction."""

    source: str
    source_name: str
    type: str
    target: str
    target_name: str
    predicted: bool = Field(default=False, description="predicted by the graph encoder, "
                            "not recorded in the graph")
    probability: float | None = Field(default=None,
                                      description="link-prediction probability, if predicted")


class EvidencePath(BaseModel):
    """A path in the graph from the topic entity to the answer; or, for an inferred answer,
    no path (``inferred``) and the graph-embedding scorer's probability."""

    relations: list[EvidenceHop]
    text: str
    inferred: bool = Field(default=False, description="no recorded path: the answer scorer "
                           "over the graph embeddings gives it (``score``)")
    score: float | None = Field(default=None, description="the embedding scorer's probability "
                                "of an inferred answer")


class Answer(BaseModel):
    uid: str
    name: str
    type: str
    score: float = Field(description="probability that the question's relation path reaches "
                         "it (with several topics: combined as `coordination` says; with "
                         "`models.answer_scorer`: weighed with the graph-embedding scorer's)")
    relation_path: list[str] = Field(description="e.g. ['HAS_PHENOTYPE', '^IS_A'] (^ = reversed)")
    evidence: list[EvidencePath]
    explanation: str
    inferred: bool = Field(default=False, description="found by the answer scorer over the "
                           "graph embeddings, not by a recorded path (see its evidence)")
    reached_from: list[str] | None = Field(
        default=None, description="with several topics joined by and/or: the uids of the "
        "topic entities whose paths reach this answer (one evidence path each)")


class LinkedCandidate(BaseModel):
    uid: str
    name: str
    type: str
    score: float


class LinkedEntity(BaseModel):
    mention: str
    start: int
    end: int
    method: str
    candidates: list[LinkedCandidate]


class AnswerCount(BaseModel):
    """How many entities the best answer's reading reaches: its relation path from its topic
    (and the topic's namesakes), read from the whole graph (the answers list is cut to
    ``top_k``)."""

    value: int = Field(description="distinct entities of `type` that the path reaches from "
                       "`topics` (the topics themselves not counted)")
    exact: bool = Field(description="false when a hop had more than 5,000 distinct nodes and "
                        "was cut: `value` is then a lower bound")
    type: str
    topics: list[str] = Field(description="uids the path starts from: the best answer's topic "
                              "and the candidates of its mention with the same name and type")
    relation_path: list[str]


class CheckResult(BaseModel):
    """A question about two named entities ("Does X present Y?", "How is X related to Y?"):
    whether the graph links them within ``max_hops``, and by which relation path."""

    subject: str = Field(description="uid of the first entity named")
    object: str = Field(description="uid of the second entity named")
    connected: bool
    hops: int | None = Field(default=None, description="length of the shortest paths found")
    relation_path: list[str] = Field(
        default_factory=list, description="relations of the likeliest path from subject to "
        "object (^ = the relationship points back)")
    asked_relation: str | None = Field(
        default=None, description="the relation a yes/no question asks about ('Does X "
        "present Y?': HAS_PHENOTYPE); null for 'how are X and Y related'")
    asked_forward: bool | None = Field(
        default=None, description="a yes/no question: whether its words ask subject "
        "-asked_relation-> object (true: 'Does X present Y?'), the reverse (false: 'Is X "
        "presented by Y?'), or do not tell (null: 'Is X associated with Y?')")
    holds: bool | None = Field(
        default=None, description="a yes/no question: whether a recorded relationship of "
        "`asked_relation` links the two directly, the way round `asked_forward` says")


class AskResponse(BaseModel):
    question: str
    domain: str | None = Field(description="the domain asked; None when the request named none "
                               "and no domain's entity occurs in the question")
    mode: Mode
    answers: list[Answer]
    linked_entities: list[LinkedEntity]
    reason: str | None = Field(default=None, description="why there is no answer, if none")
    coordination: Literal["all", "any"] | None = Field(
        default=None, description="several topics joined in the question: 'all' (and: "
        "answers that every topic reaches first, then those most reach) or 'any' (or)")
    count: AnswerCount | None = Field(
        default=None, description="with `count` (by default for 'how many' questions) and "
        "one topic: how many entities the best answer's reading reaches")
    check: CheckResult | None = Field(
        default=None, description="for a yes/no or 'how are X and Y related' question about "
        "two entities: whether and how the graph links them (the answer is the second "
        "entity, with the shortest paths as evidence)")
    models: dict[str, str | bool | None]
    timings_ms: dict[str, float]


class AskBatchResponse(BaseModel):
    results: list[AskResponse] = Field(description="one answer per question, in their order")
    timings_ms: dict[str, float]


PhrasingOrigin = Literal["declared", "built-in", "name", "frames"]


class RelationPhrasings(BaseModel):
    """How questions name one relationship type of a domain ({x}: the entity named)."""

    relation: str
    forward: list[str] = Field(description="read forwards: {x} -relation-> answer")
    backward: list[str] = Field(description="read backwards: answer -relation-> {x}")
    forward_source: PhrasingOrigin = Field(
        description="declared (the domain's migration), built-in (kgr's), name (read from the "
        "type's name) or frames (fixed frames around its words: worth declaring phrasings)")
    backward_source: PhrasingOrigin


class PhrasingsResponse(BaseModel):
    domain: str
    relations: list[RelationPhrasings]
    type_words: dict[str, list[str]] = Field(
        default_factory=dict, description="other words for entity types that the domain "
        "declares ('medications' for Drug), beside each type's own noun")
    model: str | None = Field(default=None, description="the active QA model's version")
    model_current: bool | None = Field(
        default=None, description="whether the active model was trained with these "
        "phrasings (false: train it again to learn them; null: no model, or one from before "
        "phrasings were recorded)")


class QARowsRequest(BaseModel):
    """A domain's QA model and the rows to work on (without them: generated questions)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    domain: str = Field(max_length=100)
    data: list[dict[str, object]] | None = Field(
        default=None, description='rows {"question", "answers", "topic_entities"?, "hops"?}')


class TrainQARequest(QARowsRequest):
    """Train a QA model: on generated questions, or on uploaded-before rows, or both."""

    generate_per_hop: int = Field(default=600, ge=0, le=20_000,
                                  description="generated training questions per hop count")
    epochs: int | None = Field(default=None, ge=1, le=500,
                               description="most epochs (default: by the number of questions)")
    graph_embeddings: bool = True
    init_from_active: bool = False
    model: Literal["auto", "reasoner", "fusion"] = Field(
        default="auto", description="reasoner: learns the hop count and relations from "
        "labelled rows; fusion: made for generated questions; auto: the reasoner when data "
        "rows are given and generate_per_hop is 0, else fusion")
    hold_out_wording: bool = Field(
        default=False, description="learn only the training phrasings, as the benchmarks do, "
        "so that generated evaluation questions are in unseen wording (default: every "
        "phrasing, for serving)")


class EvalQARequest(QARowsRequest):
    """Evaluate a QA model on the rows given, or on generated questions in held-out wording."""

    generate_per_hop: int = Field(default=100, ge=0, le=5000)
    modes: list[EvalMode] = Field(
        default_factory=lambda: list(get_args(EvalMode)))
    predicted_links: bool = Field(default=False, description="retrieval also follows the "
                                  "links the graph encoder predicts (see AskRequest)")
