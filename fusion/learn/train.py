"""Fine-tuning the fusion model on question/answer pairs; versioned checkpoints.

Each example becomes a gold relation path: given (generated questions), or inferred as the path
from the topic whose reached entities best match the answers (F1; weak supervision). The model
is trained with teacher forcing on the candidate actions that the capped retrieval offers at each
step, with early stopping on validation Hits@1. A checkpoint holds two heads trained on the same
data, as safetensors + config: without graph-encoder embeddings (the ablation), trained first,
and with them, which starts from the text head with its graph terms at zero and keeps them only
as far as validation supports.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

import torch

from core.settings import Settings
from fusion.exceptions import TrainingDataError
from fusion.language.linking import AliasIndex, EntityLinker, mask_question, names_index, normalize
from fusion.language.parse import (
    MAX_STEPS,
    PathHints,
    parse_question,
    step_priors,
    step_segment_vectors,
    step_token_masks,
)
from fusion.language.text import cached_vectors
from fusion.language.verbalize import (
    STOP,
    Action,
    Wording,
    action_texts,
    phrasing_choices,
)
from fusion.learn.questions import alias_index_of
from fusion.learn.stats import paired_outcomes, sign_test
from fusion.model.config import TrainConfig
from fusion.model.graphdata import DomainGraph
from fusion.model.model import FusionModel
from fusion.model.space import ActionSpace, GraphFeatures
from fusion.reasoner.checkpoint import ReasonerCheckpoint
from fusion.serve.checkpoint import Checkpoint, load_active, qa_artifacts, save_checkpoint
from fusion.serve.inference import (
    MASK,
    ModelScorer,
    QuestionContext,
    ZeroShotScorer,
    encode_questions,
)
from fusion.serve.retrieval import (
    BeamItem,
    Caps,
    MemoryExpander,
    Scorer,
    advance,
    beam_search,
    candidate_actions,
    keep_asked_type,
    rank_answers,
)
from graph.lock import ModelLock

ProgressFn = Callable[[float, str], None]


@dataclass
class Prepared:
    """One training example ready for the model."""

    question: str
    ctx: QuestionContext
    topic: str
    topics: list[str]
    topic_type: str
    gold: list[int]          # action ids, the last one a stop
    candidates: list[list[int]]
    answers: set[str]
    hops: int
    prior: torch.Tensor  # [MAX_STEPS, A], see fusion.language.parse.step_priors
    step_mask: torch.Tensor  # [MAX_STEPS, L], see fusion.language.parse.step_token_masks
    segments: torch.Tensor  # [MAX_STEPS, 384], see fusion.language.parse.step_segment_vectors
    hints: PathHints
    # the frontier before each gold step (the topic first), as the capped retrieval reaches it
    frontiers: list[list[str]]
    # (hop, phrasing index) per hop for generated questions (fusion.learn.questions), else None
    phrasings: tuple[tuple[Action, int], ...] | None = None

    def uses_validation_phrasing(self) -> bool:
        return self.phrasings is not None and any(
            index == validation_phrasing(step) for step, index in self.phrasings)


@lru_cache(maxsize=512)
def validation_phrasing(step: Action) -> int:
    """The training phrasing of a hop that model selection holds out (``split_validation``):
    of its right-branching ones (they occur at every hop position), the one whose MiniLM vector
    is farthest from the mean of the others — the wording least like the rest, as the held-out
    evaluation phrasings are. In-distribution questions are answered right from the first
    epoch and cannot tell an epoch that generalises from one that overfits."""
    pool = phrasing_choices(step, "train", nested=True)
    every = phrasing_choices(step, "train", nested=False)
    if len(every) < 3:
        return pool[-1]
    vectors = cached_vectors(action_texts(step, "train"))  # the texts of ``every``, in order
    position = {index: k for k, index in enumerate(every)}

    def likeness(index: int) -> float:
        others = torch.cat([vectors[:position[index]], vectors[position[index] + 1:]])
        return float(vectors[position[index]] @ torch.nn.functional.normalize(
            others.mean(0), dim=0))

    return min(pool, key=lambda index: (likeness(index), -index))


class NamedGraph(Protocol):
    """What ``resolve`` needs of a graph: its entities' names and its domain."""

    @property
    def names(self) -> Mapping[str, str]: ...

    @property
    def domain(self) -> str: ...


def resolve(graph: NamedGraph, values: Sequence[Any], by_name: dict[str, list[str]]
            ) -> list[str]:
    """Uids for a list of uids or names (a name may stand for several entities); ``by_name``
    is ``fusion.language.linking.names_index`` of the graph's names, which normalises names the way
    the lookup here does."""
    out: list[str] = []
    for value in values:
        text = str(value)
        if text in graph.names:
            out.append(text)
        elif f"{graph.domain}:{text}" in graph.names:
            out.append(f"{graph.domain}:{text}")
        else:
            out.extend(by_name.get(normalize(text), []))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class GoldPath:
    """A labelled relation path: from ``topic`` along ``steps`` to entities of ``answer_type``."""

    topic: str
    steps: list[Action]
    answer_type: str


@dataclass(frozen=True)
class Guide:
    """The zero-shot reading of a question that ``infer_path`` enumerates paths by."""

    scorer: ZeroShotScorer
    ctx: QuestionContext


def infer_path(graph: DomainGraph, topics: list[str], answers: set[str], caps: Caps,
               max_hops: int, guide: Guide | None = None) -> GoldPath | None:
    """The (topic, hops, answer type) whose reached entities best match ``answers`` (F1).

    In a dense graph several paths often reach exactly the answers (a company's one
    regulator is also what announced something about it): with ``guide`` the paths are
    enumerated by the zero-shot reading of the question, and among the best-matching ones the
    path the question describes best wins (on 100 generated finance questions in
    unseen wording, answers alone recovered the asked path for 53, guided for 98)."""
    expander = MemoryExpander(graph)

    def uniform(items: list[BeamItem], cands: list[list[Action]]) -> list[list[float]]:
        return [[0.0] * len(c) for c in cands]

    wide = Caps(per_type=caps.per_type, frontier=max(caps.frontier, 200), rows=20_000, beam=128,
                margin=None)
    scorer: Scorer = uniform
    hints = None
    if guide is not None:
        scorer = guide.scorer.for_question(guide.ctx, expander)
        hints = PathHints.of(parse_question(guide.ctx.text, guide.scorer.space.types,
                                            domain=guide.scorer.space.domain))
    best_key: tuple[float, float] | None = None  # (F1, then the tie-break below)
    best: GoldPath | None = None
    for topic in topics[:3]:
        for final in beam_search(expander, scorer, [(topic, 0.0)], max_hops, wide, hints=hints):
            reached = graph.answers({topic}, list(final.steps), final.answer_type, cap=5000)
            hit = len(reached & answers)
            if not hit:
                continue
            f1 = 2 * hit / (len(reached) + len(answers))
            # without a guide, ties go to the shorter path
            key = (round(f1, 9), final.logp if guide is not None else -final.hops)
            if best_key is None or key > best_key:
                best_key, best = key, GoldPath(topic, list(final.steps), final.answer_type)
    return best


@dataclass(frozen=True)
class TeacherSteps:
    """A gold path as the model is trained on it, one entry per step (the last a stop)."""

    gold: list[int]  # action ids
    candidates: list[list[int]]  # the action ids the capped retrieval offers
    frontiers: list[list[str]]  # the entities reached before the step (the topic first)


def teacher_steps(graph: DomainGraph, space: ActionSpace, path: GoldPath, caps: Caps,
                  max_hops: int) -> TeacherSteps | None:
    """Gold action ids, the candidate ids and the frontier at each step (None if retrieval
    loses the path)."""
    topic, steps, answer_type = path.topic, path.steps, path.answer_type
    expander = MemoryExpander(graph)
    item = BeamItem(topic, (), 0.0, [topic])
    gold: list[int] = []
    cands: list[list[int]] = []
    frontiers: list[list[str]] = []
    for t, action in enumerate([*steps, (answer_type, STOP)]):
        frontiers.append(list(item.frontier))
        adjacency = expander.expand_grouped(item.frontier, caps) if t < max_hops else None
        options = candidate_actions(item, adjacency, lambda u: graph.types.get(u, "Entity"))
        if t == 0:
            options = [a for a in options if a[1] != STOP]
        if action not in options or action not in space.index:
            return None
        gold.append(space.index[action])
        cands.append([space.index[a] for a in options if a in space.index])
        if action[1] != STOP:
            assert adjacency is not None
            item = advance(item, action, 0.0, adjacency, caps)
            if not item.frontier:
                return None
    return TeacherSteps(gold, cands, frontiers)


@dataclass(frozen=True)
class Linked:
    """A training row whose question names a known topic and whose answers are in the graph."""

    row: dict[str, Any]
    question: str
    masked: str  # the question with the topic mention as ``MASK``
    answers: set[str]
    topics: list[str]


@dataclass(frozen=True)
class Staged:
    """A linked row with its gold path, waiting for the batched MiniLM encoding."""

    question: str
    masked: str
    topics: list[str]  # the gold path's topic first
    teacher: TeacherSteps
    answers: set[str]
    hops: int
    wording: tuple[tuple[Action, int], ...] | None


def prepare(rows: Sequence[dict[str, Any]], graph: DomainGraph, space: ActionSpace,
            cfg: TrainConfig, index: AliasIndex | None = None) -> tuple[list[Prepared], int]:
    """Examples with gold paths and candidates; returns (examples, number skipped)."""
    caps = Caps(cfg.per_type, cfg.frontier, 20_000, cfg.beam)
    linker = EntityLinker(None, graph.domain, index or alias_index_of(graph))
    by_name = names_index(graph.names)
    linked: list[Linked] = []
    skipped = 0
    for row in rows:
        question = row["question"].strip()
        answers = set(resolve(graph, row["answers"], by_name))
        mentions = linker.link(question)
        mentions.sort(key=lambda m: (-(m.end - m.start), -m.score, m.start))
        topics = resolve(graph, row.get("topic_entities") or [], by_name)
        mention = None
        for m in mentions:
            if not topics or {c.uid for c in m.candidates} & set(topics):
                mention = m
                break
        if not topics and mention is not None:
            topics = [c.uid for c in mention.candidates]
        if not answers or not topics:
            skipped += 1
            continue
        linked.append(Linked(row, question, mask_question(question, mention, MASK), answers,
                             topics))
    # rows without a gold path get one inferred from their answers, guided by the question
    unlabelled = [item.masked for item in linked
                  if not (item.row.get("path") and item.row.get("answer_type"))]
    guides = dict(zip(unlabelled, encode_questions(unlabelled), strict=True))
    zero_shot = ZeroShotScorer(space)
    staged: list[Staged] = []
    for item in linked:
        row, answers, topics = item.row, item.answers, item.topics
        found: GoldPath | None = None
        wording: tuple[tuple[Action, int], ...] | None = None
        if row.get("path") and row.get("answer_type"):
            steps = [(str(r), str(d)) for r, d in row["path"]]
            for topic in topics:
                if graph.answers({topic}, steps, row["answer_type"]) & answers:
                    found = GoldPath(topic, steps, row["answer_type"])
                    break
            indexes = row.get("phrasings")
            if isinstance(indexes, list) and len(indexes) == len(steps):
                wording = tuple((step, int(i)) for step, i in zip(steps, indexes, strict=True))
        else:
            found = infer_path(graph, topics, answers, caps, cfg.max_hops,
                               Guide(zero_shot, guides[item.masked]))
        if found is None:
            skipped += 1
            continue
        forced = teacher_steps(graph, space, found, caps, cfg.max_hops)
        if forced is None:
            skipped += 1
            continue
        staged.append(Staged(item.question, item.masked,
                             [found.topic] + [t for t in topics if t != found.topic], forced,
                             answers, len(found.steps), wording))
    contexts = encode_questions([s.masked for s in staged])
    parses = [parse_question(s.masked, space.types, domain=space.domain) for s in staged]
    priors = step_priors(parses, torch.stack([c.pooled for c in contexts]) if contexts
                         else torch.zeros(0, 384), space.text, space.actions) \
        if staged else torch.zeros(0)
    segments = step_segment_vectors(parses)
    examples = [
        Prepared(s.question, ctx, s.topics[0], s.topics,
                 graph.types.get(s.topics[0], "Entity"), s.teacher.gold, s.teacher.candidates,
                 s.answers, s.hops, prior, step_token_masks(parse, ctx.offsets, ctx.mask),
                 segment, PathHints.of(parse), s.teacher.frontiers, s.wording)
        for s, ctx, prior, parse, segment
        in zip(staged, contexts, priors, parses, segments, strict=True)
    ]
    return examples, skipped


def _batch(examples: Sequence[Prepared], space: ActionSpace, features: GraphFeatures | None,
           use_graph: bool, frontier_graph: bool = False) -> dict[str, torch.Tensor | None]:
    length = max(int(e.ctx.tokens.shape[0]) for e in examples)
    dim = examples[0].ctx.tokens.shape[1]
    steps = max(len(e.gold) for e in examples)
    tokens = torch.zeros(len(examples), length, dim)
    mask = torch.zeros(len(examples), length, dtype=torch.bool)
    step_mask = torch.zeros(len(examples), steps, length, dtype=torch.bool)
    gold = torch.full((len(examples), steps), -1, dtype=torch.long)
    allowed = torch.zeros(len(examples), steps, len(space.actions), dtype=torch.bool)
    frontier = None
    if features is not None and use_graph and frontier_graph:
        frontier = features.mean_entity(
            [e.frontiers[t] if t < len(e.frontiers) else [] for e in examples
             for t in range(steps)]).view(len(examples), steps, -1)
    for i, e in enumerate(examples):
        n = e.ctx.tokens.shape[0]
        tokens[i, :n] = e.ctx.tokens
        mask[i, :n] = e.ctx.mask
        used = min(steps, MAX_STEPS)
        step_mask[i, :used, :n] = e.step_mask[:used]
        gold[i, :len(e.gold)] = torch.tensor(e.gold)
        for t, cands in enumerate(e.candidates):
            allowed[i, t, cands] = True
    return {
        "tokens": tokens, "mask": mask, "gold": gold, "allowed": allowed,
        "step_mask": step_mask,
        "segment": torch.stack([e.segments[:steps] for e in examples]),
        "pooled": torch.stack([e.ctx.pooled for e in examples]),
        "prior": torch.stack([e.prior[:steps] for e in examples]),
        "topic_type": space.topic_type_text([e.topic_type for e in examples]),
        "topic_graph": features.entity([e.topic for e in examples])
        if (features is not None and use_graph) else None,
        "frontier": frontier,
    }


def _loss(model: FusionModel, batch: dict[str, Any], actions: torch.Tensor,
          action_text: torch.Tensor) -> torch.Tensor:
    prior = batch["prior"]
    scores = model(batch["tokens"], batch["mask"], batch["pooled"], batch["topic_type"],
                   batch["topic_graph"], actions, batch["gold"], prior, batch["step_mask"],
                   batch["segment"], batch["frontier"])
    scores = scores.masked_fill(~batch["allowed"], -1e4)
    return torch.nn.functional.cross_entropy(scores.flatten(0, 1), batch["gold"].flatten(),
                                             ignore_index=-1)


def validation_hits(model: FusionModel, space: ActionSpace, features: GraphFeatures | None,
                    examples: Sequence[Prepared], graph: DomainGraph,
                    cfg: TrainConfig) -> tuple[float, float]:
    """Validation Hits@1 with the real beam search (over the in-memory graph): of the model's
    paths as they are and after the zero-shot rerank (``ZeroShotScorer.rerank``), from one
    beam search per question."""
    if not examples:
        return 0.0, 0.0
    plain, reranked = validation_outcomes(model, space, features, examples, graph, cfg)
    return sum(plain) / len(examples), sum(reranked) / len(examples)


def validation_outcomes(model: FusionModel, space: ActionSpace,
                        features: GraphFeatures | None, examples: Sequence[Prepared],
                        graph: DomainGraph, cfg: TrainConfig) -> tuple[list[bool], list[bool]]:
    """Per validation question, whether the top answer is right: without and with the
    zero-shot rerank (see ``validation_hits``)."""
    model.eval()
    scorer = ModelScorer(model, space, features)
    zero_shot = ZeroShotScorer(space)
    expander = MemoryExpander(graph)
    caps = Caps(cfg.per_type, cfg.frontier, 20_000, cfg.beam)
    plain: list[bool] = []
    reranked: list[bool] = []
    for e in examples:
        finals = beam_search(expander, scorer.for_question(e.ctx, expander),
                             [(t, 0.0) for t in e.topics[:3]], cfg.max_hops, caps,
                             hints=e.hints)
        ranked = rank_answers(keep_asked_type(finals, e.hints), expander, 1)
        plain.append(bool(ranked and ranked[0].uid in e.answers))
        ranked = rank_answers(keep_asked_type(zero_shot.rerank(e.ctx, finals, expander),
                                              e.hints), expander, 1)
        reranked.append(bool(ranked and ranked[0].uid in e.answers))
    return plain, reranked


class Split(NamedTuple):
    """One validation run's examples: those it trains on and those it validates on."""

    train: list[Prepared]
    val: list[Prepared]


def split_validation(examples: Sequence[Prepared], cfg: TrainConfig,
                     rng: random.Random) -> tuple[list[Split], str]:
    """((train, validation) pairs, how). With ``cfg.validation == "phrasing"`` generated
    questions are split by wording: those that use a hop's validation phrasing
    (``validation_phrasing``) validate, the others train. Otherwise (and for rows without
    wording, a user's file) a random split, or ``cfg.folds`` folds when there are fewer than
    ``cfg.kfold_below`` examples. Fewer than 10 examples are not split ("none")."""
    if len(examples) < 10:
        return [Split(list(examples), [])], "none"
    held = [e for e in examples if e.uses_validation_phrasing()] \
        if cfg.validation == "phrasing" else []
    if held and len(held) < len(examples):
        by_hops: dict[int, list[Prepared]] = {}
        for e in held:
            by_hops.setdefault(e.hops, []).append(e)
        for group in by_hops.values():
            rng.shuffle(group)
        val: list[Prepared] = []
        while len(val) < min(cfg.max_val, len(held)):  # the same share of each hop count
            for group in by_hops.values():
                if group and len(val) < cfg.max_val:
                    val.append(group.pop())
        return [Split([e for e in examples if not e.uses_validation_phrasing()], val)], \
            "phrasing"
    order = list(range(len(examples)))
    rng.shuffle(order)
    if len(examples) < cfg.kfold_below and cfg.folds >= 2:
        folds = [set(order[k::cfg.folds]) for k in range(cfg.folds)]
        return [Split([examples[i] for i in order if i not in fold],
                      [examples[i] for i in order if i in fold]) for fold in folds], "k-fold"
    n_val = min(cfg.max_val, max(1, int(len(examples) * cfg.val_fraction)))
    return [Split([examples[i] for i in order[n_val:]], [examples[i] for i in order[:n_val]])], \
        "random"


def _new_model(cfg: TrainConfig, graph_dim: int,
               init: dict[str, torch.Tensor] | None) -> FusionModel:
    model = FusionModel(cfg.hidden, graph_dim, use_graph=graph_dim > 0, dropout=cfg.dropout,
                        segment_attention=cfg.segment_attention,
                        frontier_graph=cfg.frontier_graph)
    if init is not None:
        model.load_state_dict(init)
    return model


def graph_init_from_text(text_state: dict[str, torch.Tensor], cfg: TrainConfig,
                         graph_dim: int) -> dict[str, torch.Tensor]:
    """A graph head's starting weights: the trained text head's, with the graph projections at
    zero, so that it scores exactly like the text head until training moves the graph terms
    (zero-initialised gating of a new input, as for ``FusionModel.out``)."""
    model = _new_model(cfg, graph_dim, None)
    missing, unexpected = model.load_state_dict(text_state, strict=False)
    if unexpected or any(not k.startswith("graph_") for k in missing):
        raise ValueError(f"not a text head of this shape: {missing or unexpected}")
    with torch.no_grad():  # every graph projection (the gate scales some of them)
        for name, param in model.named_parameters():
            if name.startswith("graph_") and name != "graph_gate":
                param.zero_()
    return {k: v.clone() for k, v in model.state_dict().items()}


def epoch_lr(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of training epoch ``epoch`` (0 = the first), see ``lr_schedule``."""
    if cfg.lr is None or cfg.epochs is None or cfg.lr_schedule is None:
        raise ValueError("TrainConfig.resolved() first")
    if cfg.lr_schedule == "constant" or cfg.epochs == 0:
        return cfg.lr
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(epoch, cfg.epochs) / cfg.epochs))


def _set_lr(optim: torch.optim.Optimizer, lr: float) -> None:
    for group in optim.param_groups:
        group["lr"] = lr


def _trainable(model: FusionModel, only_graph: bool) -> list[torch.nn.Parameter]:
    """The parameters to optimise: all, or the graph terms alone."""
    return [p for name, p in model.named_parameters()
            if not only_graph or name.startswith("graph_")]


def _train_epoch(model: FusionModel, optim: torch.optim.Optimizer, train: list[Prepared],
                 space: ActionSpace, features: GraphFeatures | None,
                 graph_actions: torch.Tensor | None, batch_size: int,
                 rng: random.Random) -> float:
    """One pass over ``train`` (shuffled); returns the mean training loss."""
    model.train()
    rng.shuffle(train)
    total = 0.0
    for start in range(0, len(train), batch_size):
        chunk = train[start:start + batch_size]
        batch = _batch(chunk, space, features, model.use_graph, model.frontier_graph)
        actions = model.action_vectors(space.text, space.kind, graph_actions)
        loss = _loss(model, batch, actions, space.text)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        total += float(loss.detach()) * len(chunk)
    return total / len(train)


@torch.no_grad()
def _val_loss(model: FusionModel, val: list[Prepared], space: ActionSpace,
              features: GraphFeatures | None, graph_actions: torch.Tensor | None) -> float:
    model.eval()
    total = 0.0
    for start in range(0, len(val), 64):
        chunk = val[start:start + 64]
        actions = model.action_vectors(space.text, space.kind, graph_actions)
        total += float(_loss(model, _batch(chunk, space, features, model.use_graph,
                                           model.frontier_graph), actions,
                             space.text)) * len(chunk)
    return total / max(1, len(val))


State = dict[str, torch.Tensor]


@dataclass
class Run:
    """One validation run of ``fit``: its own model and optimiser on its own split."""

    model: FusionModel
    optim: torch.optim.Optimizer
    train: list[Prepared]
    val: list[Prepared]
    batch_size: int


@dataclass(frozen=True)
class EpochResult:
    """Validation after an epoch (0: the starting model): Hits@1 of the model's paths as they
    are and after the zero-shot rerank, and the validation loss."""

    epoch: int
    hits: float
    reranked: float
    loss: float

    @property
    def score(self) -> float:
        """The Hits@1 the epoch is chosen by: the better of the two readings."""
        return max(self.hits, self.reranked)

    @property
    def rerank(self) -> bool:
        """Whether the rerank is kept: where it does not lose on validation (it helps on
        wording unlike the training questions and can undo what a model learnt)."""
        return self.reranked >= self.hits

    def beats(self, other: EpochResult) -> bool:
        """Better Hits@1, ties broken by the lower validation loss (else the earlier wins)."""
        return (self.score, -self.loss) > (other.score, -other.loss)

    def record(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "val_hits@1": round(self.score, 4),
                "val_hits@1_plain": round(self.hits, 4),
                "val_hits@1_reranked": round(self.reranked, 4), "val_loss": round(self.loss, 4)}


@dataclass(frozen=True)
class Snapshot:
    """An epoch's validation and each run's weights after it."""

    result: EpochResult
    states: list[State]


@dataclass
class Fitted:
    """A trained head, its metrics, and the weights each validation run had at the chosen
    epoch (trained on that run's training part only: what a head built on this one may
    validate from)."""

    model: FusionModel
    metrics: dict[str, Any]
    split_states: list[State]


def fit(examples: list[Prepared], space: ActionSpace, features: GraphFeatures | None,
        use_graph: bool, graph: DomainGraph, cfg: TrainConfig,
        progress: ProgressFn | None = None, init: State | None = None,
        label: str = "", split_inits: list[State] | None = None,
        only_graph: bool = False) -> Fitted:
    """Train one head.

    ``init``: the starting weights (of every run, and of the refit); ``split_inits``: other
    starting weights per validation run (``split_validation`` order), e.g. the text head's
    ``Fitted.split_states``, so that no run starts from weights fitted on its own validation
    questions. ``only_graph``: train the graph terms alone (a residual on a text head).

    The number of epochs is chosen on validation Hits@1 (ties: lower validation loss, then
    fewer epochs; or the earliest epoch within ``cfg.select_within_se`` standard errors of
    that), counting the starting model as epoch 0: untrained, it scores like
    the zero-shot prior (``FusionModel`` starts its learned terms at zero), so training is kept
    only where it helps on the validation questions. With a split by wording or k folds
    (``split_validation``; the folds train in lockstep and their validation questions count
    together) the model is then fitted again on every example for the chosen number of
    epochs."""
    cfg = cfg.resolved(len(examples))
    assert cfg.epochs is not None and cfg.lr is not None and cfg.patience is not None
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    splits, how = split_validation(examples, cfg, rng)
    if not splits[0].train:
        raise TrainingDataError("no usable training example")
    graph_dim = features.dim if (features is not None and use_graph) else 0
    graph_actions = space.graph_vectors(features) if graph_dim else None
    runs: list[Run] = []
    if split_inits is not None and len(split_inits) != len(splits):
        raise ValueError("one starting state per validation run")
    for k, (train, val) in enumerate(splits):
        model = _new_model(cfg, graph_dim, split_inits[k] if split_inits is not None else init)
        optim = torch.optim.AdamW(_trainable(model, only_graph), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
        runs.append(Run(model, optim, list(train), val,
                        min(cfg.batch_size, max(8, len(train) // 8))))  # several steps per epoch
    n_val = sum(len(split.val) for split in splits)

    outcomes: dict[int, list[bool]] = {}  # epoch -> per validation question, right or not

    def validate(epoch: int) -> EpochResult:
        """Validation of every run together; the per-question outcomes of the better of the
        two readings go to ``outcomes[epoch]``."""
        if not n_val:
            return EpochResult(epoch, 0.0, 0.0, 0.0)
        plain: list[bool] = []
        again: list[bool] = []
        loss = 0.0
        for run in runs:
            if run.val:
                p, a = validation_outcomes(run.model, space, features, run.val, graph, cfg)
                plain += p
                again += a
                loss += _val_loss(run.model, run.val, space, features, graph_actions) \
                    * len(run.val)
        result = EpochResult(epoch, sum(plain) / n_val, sum(again) / n_val, loss / n_val)
        outcomes[epoch] = again if result.rerank else plain
        return result

    def states() -> list[State]:
        return [{k: v.clone() for k, v in run.model.state_dict().items()} for run in runs]

    best = Snapshot(validate(0), states())  # the best epoch's validation and weights
    history = [best.result.record()]
    start = best
    # with ``select_within_se`` every epoch's snapshot, as the choice is then made at the end
    keep_all = cfg.select_within_se > 0
    trail = [best] if keep_all else []
    stale = 0
    for epoch in range(1, cfg.epochs + 1):
        for run in runs:
            _set_lr(run.optim, epoch_lr(cfg, epoch - 1))
        train_loss = sum(_train_epoch(run.model, run.optim, run.train, space, features,
                                      graph_actions, run.batch_size, rng)
                         for run in runs) / len(runs)
        current = validate(epoch)
        history.append({**current.record(), "train_loss": round(train_loss, 4)})
        if progress:
            progress(epoch / cfg.epochs, f"{label} epoch {epoch}: loss {train_loss:.3f}, "
                     f"val Hits@1 {current.score:.3f}")
        improved = not n_val or current.beats(best.result)
        if keep_all or improved:
            snapshot = Snapshot(current, states())
            if keep_all:
                trail.append(snapshot)
        if improved:
            best = snapshot
            stale = 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if n_val and keep_all:
        # the earliest epoch within ``select_within_se`` standard errors of the best Hits@1
        # (with 50 validation questions one question is 2 points)
        top = best.result.score
        se = math.sqrt(max(top * (1 - top), 0.0) / n_val)
        floor = top - cfg.select_within_se * se - 1e-9
        best = next(s for s in trail if s.result.score >= floor)
    graph_terms: dict[str, Any] | None = None
    if only_graph and n_val and cfg.graph_terms_p is not None:
        # keep the graph terms only where they beat the text head (epoch 0) on validation
        wins, losses = paired_outcomes(outcomes[best.result.epoch], outcomes[0])
        p = sign_test(wins, losses)
        kept = best.result.epoch > 0 and wins > losses and p < cfg.graph_terms_p
        graph_terms = {"kept": kept, "epoch": best.result.epoch, "wins": wins,
                       "losses": losses, "p": round(p, 4)}
        if not kept:
            best = start
    best_epoch = best.result.epoch
    best_states = best.states
    if how in ("phrasing", "k-fold"):
        # fit again on every example (the validation questions too) for the chosen epochs
        torch.manual_seed(cfg.seed)
        rng = random.Random(cfg.seed + 1)
        model = _new_model(cfg, graph_dim, init)
        optim = torch.optim.AdamW(_trainable(model, only_graph), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
        everything = list(examples)
        batch_size = min(cfg.batch_size, max(8, len(everything) // 8))
        for epoch in range(best_epoch):
            _set_lr(optim, epoch_lr(cfg, epoch))
            _train_epoch(model, optim, everything, space, features, graph_actions, batch_size,
                         rng)
            if progress:
                progress(1.0, f"{label} refit epoch {epoch + 1}/{best_epoch} on all examples")
    else:
        model = runs[0].model
        model.load_state_dict(best_states[0])
    model.eval()
    # no validation questions: keep the rerank (what a model trained on few rows can't check)
    rerank = best.result.rerank if n_val else True
    return Fitted(model, {
        "val_hits@1": round(best.result.score, 4), "best_epoch": best_epoch, "rerank": rerank,
        "validation": how, "folds": len(splits), "epochs_run": len(history) - 1,
        "lr": cfg.lr, "lr_schedule": cfg.lr_schedule, "max_epochs": cfg.epochs,
        "n_train": len(examples) if how in ("phrasing", "k-fold") else len(splits[0].train),
        "n_val": n_val, "history": history,
        **({"graph_terms": graph_terms} if graph_terms is not None else {})}, best_states)


def train_domain(settings: Settings, driver: Any, domain: str, rows: Sequence[dict[str, Any]],
                 cfg: TrainConfig | None = None, *, graph: DomainGraph | None = None,
                 use_graph: bool = True, ablation: bool = True, init_active: bool = False,
                 init_from: Checkpoint | None = None,
                 progress: ProgressFn | None = None,
                 activate: bool = True) -> dict[str, Any]:
    """Train (and publish) a QA checkpoint for ``domain`` from question/answer rows; with
    ``init_active`` (or a given ``init_from``) each head starts from that checkpoint's
    (few-shot fine-tuning). A run that activates its version holds the domain's QA
    ``ModelLock`` throughout (``ModelBusyError`` while another training or an activation
    holds it); one that only stores a version (``activate=False``, the benchmarks) needs none."""
    args = (settings, driver, domain, rows, cfg, graph, use_graph, ablation, init_active,
            init_from, progress)
    if not activate:
        return _train_domain(*args, lock=None)
    with ModelLock(driver, settings.neo4j_database, "qa", domain) as lock:
        return _train_domain(*args, lock=lock)


def _train_domain(settings: Settings, driver: Any, domain: str, rows: Sequence[dict[str, Any]],
                  cfg: TrainConfig | None, graph: DomainGraph | None, use_graph: bool,
                  ablation: bool, init_active: bool, init_from: Checkpoint | None,
                  progress: ProgressFn | None, *,
                  lock: ModelLock | None) -> dict[str, Any]:
    """``train_domain``'s work; its version becomes active when it holds a ``lock``."""
    from fusion.model.space import load_graph_features

    cfg = cfg or TrainConfig()
    torch.manual_seed(cfg.seed)
    if graph is None:
        graph = DomainGraph.load(driver, settings.neo4j_database, domain)
    features = load_graph_features(settings, domain) if use_graph else None
    init: dict[str, dict[str, torch.Tensor]] = {}
    previous_phrasings: dict[str, list[list[str]]] | None = None
    if init_active or init_from is not None:
        previous_any = init_from if init_from is not None else load_active(settings, domain)
        if isinstance(previous_any, ReasonerCheckpoint):
            raise TrainingDataError(
                f"the active QA model of {domain!r} is a reasoner ({previous_any.version}); "
                "few-shot fine-tuning of the fusion model starts from a fusion model: train "
                "the reasoner on your rows instead (`kgr train qa --data`)")
        previous = previous_any
        space = previous.space
        cfg = cfg.model_copy(update={"wording": previous.wording})  # its action texts
        previous_phrasings = previous.config.get("phrasings")
        init = {name: m.state_dict() for name, m in previous.heads.items()}
    else:
        space = ActionSpace.build(graph.relation_types(), graph.entity_types(), cfg.wording,
                                  domain)
    if progress:
        progress(0.0, "preparing examples")
    examples, skipped = prepare(rows, graph, space, cfg)
    if not examples:
        raise TrainingDataError(
            f"none of the {len(rows)} examples could be matched to a path in domain {domain!r}")
    heads: dict[str, FusionModel] = {}
    metrics: dict[str, Any] = {"examples": len(examples), "skipped": skipped}
    # the text head first; the graph head then starts from it with its graph terms at zero
    # (``graph_init_from_text``), so the ablation differs only in what the graph embeddings
    # add on top, and model selection (epoch 0 = the text head) keeps them only where they
    # help on validation. Trained from scratch, the graph head of the medical domain fell
    # below the text head: its validation dropped after one epoch and selection kept the prior.
    plan = []
    if ablation or features is None:
        plan.append(("text", False))
    if features is not None:
        plan.append(("graph", True))
    text: Fitted | None = None
    for i, (name, with_graph) in enumerate(plan):
        def sub(fraction: float, message: str, i: int = i) -> None:
            if progress:
                progress((i + fraction) / len(plan), message)

        # the previous checkpoint's head of the same name; a graph head without an encoder
        # now, or built for another encoder width, starts afresh
        head_init = init.get(name)
        if with_graph and head_init is not None and (
                features is None or head_init["graph_rel_proj.weight"].shape[1] != features.dim):
            head_init = None
        split_inits = None
        if with_graph and text is not None and features is not None:
            head_init = graph_init_from_text(text.model.state_dict(), cfg, features.dim)
            split_inits = [graph_init_from_text(state, cfg, features.dim)
                           for state in text.split_states]
        fitted = fit(examples, space, features, with_graph, graph, cfg, sub, init=head_init,
                     label=name, split_inits=split_inits,
                     only_graph=split_inits is not None and cfg.graph_residual_only)
        if not with_graph:
            text = fitted
        elif text is not None:
            fitted.metrics["init"] = "text head"
        metrics[name] = fitted.metrics
        if fitted.metrics.get("graph_terms", {}).get("kept") is False:
            continue  # no better than the text head on validation: the text head serves
        heads[name] = fitted.model
    # a few-shot model keeps the action texts, and so the phrasings, of the one it starts from
    version = save_checkpoint(settings, domain, space, heads, cfg, features, metrics,
                              activate=False, phrasings=previous_phrasings)
    if lock is not None:
        with lock.fenced():  # the ACTIVE pointer flips only while the lock is this run's
            qa_artifacts(settings).activate(domain, version)
    return {"domain": domain, "version": version, "encoder_version":
            features.version if features is not None else None, **metrics}


def train_from_generated(settings: Settings, driver: Any, domain: str, per_hop: int = 600,
                         epochs: int | None = None, seed: int = 0, use_graph: bool = True,
                         progress: ProgressFn | None = None,
                         wording: Wording = "all") -> dict[str, Any]:
    """What ``kgr up`` calls: generate ``per_hop`` training questions of 1, 2 and 3 hops from
    the domain graph in ``wording`` (every phrasing by default: the held-out split is for
    measuring, not for the model kgr serves) and train + activate a QA checkpoint on them."""
    from fusion.learn.questions import generate_questions

    graph = DomainGraph.load(driver, settings.neo4j_database, domain)
    rows = generate_questions(graph, {1: per_hop, 2: per_hop, 3: per_hop}, wording, seed)
    return train_domain(settings, driver, domain, rows,
                        TrainConfig(epochs=epochs, seed=seed, wording=wording),
                        graph=graph, use_graph=use_graph, progress=progress)
