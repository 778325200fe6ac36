"""The ask pipeline: link -> encode the question once -> beam search over relation paths with
bounded Neo4j expansion -> ranked answers with evidence paths and an explanation.

``QAService`` lives once per process (the API keeps it on ``app.state``); it caches per domain
the alias index, the loaded checkpoint and the graph features, keyed by their versions, and
one expander (with its bounded neighbour cache) per database.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch
from neo4j import Driver, RoutingControl

from core.errors import NotFoundError
from core.settings import Settings
from fusion.exceptions import QAModelNotReadyError, QuestionError
from fusion.language.linking import AliasIndex, EntityLinker, Mention, mask_question
from fusion.language.parse import PathHints, asks_count, parse_question
from fusion.language.text import get_text_encoder
from fusion.language.verbalize import (
    IN,
    OUT,
    PHRASINGS,
    Wording,
    declared_type_words,
    phrasing_source,
    phrasings,
    words,
)
from fusion.language.vocabulary import load_declared_phrasings
from fusion.model.space import ActionSpace, GraphFeatures, load_graph_features
from fusion.queries import (
    DOMAIN_RELATION_TYPES_QUERY,
    WARM_UP_TOPIC_QUERY,
)
from fusion.reasoner.answers import Fused, capped, embedding_probs, fuse
from fusion.reasoner.checkpoint import AnswerHead, ReasonerCheckpoint
from fusion.serve import threads
from fusion.serve.check import (
    YES_NO_RE,
    Pair,
    asked_direction,
    asked_relations,
    check_pair,
    path_text,
    rank_paths,
    shared_words,
)
from fusion.serve.checkpoint import Checkpoint, load_checkpoint, qa_artifacts
from fusion.serve.coordination import SEPARATOR_RE, Combined, Coordination, combine, coordinate
from fusion.serve.inference import (
    MASK,
    ModelScorer,
    QuestionContext,
    ZeroShotScorer,
    encode_questions,
    zero_shot_hints,
)
from fusion.serve.linkpred import LinkPredictor, PredictingExpander
from fusion.serve.retrieval import (
    Caps,
    Expander,
    Neo4jExpander,
    PathResult,
    RankedAnswer,
    Scorer,
    beam_search,
    keep_asked_type,
    path_result,
    rank_answers,
)
from fusion.serve.schemas import (
    MAX_QUESTION_CHARS,
    Answer,
    AnswerCount,
    AskResponse,
    CheckResult,
    EvidenceHop,
    EvidencePath,
    LinkedCandidate,
    LinkedEntity,
    Mode,
    PhrasingsResponse,
    RelationPhrasings,
)
from graph.driver import translate_errors
from graph.models import GraphPath
from graph.stamp import GraphStamp, read_graph_stamp
from graph.store import GraphStore

log = logging.getLogger("kgr.fusion")

TEXT_MODEL = "all-MiniLM-L6-v2"
# how long a domain that was seen to exist is trusted without asking Neo4j again (one round
# trip less per question; a deleted domain is noticed at the latest this much later)
DOMAIN_CHECK_TTL_S = 30.0
# The graph's write stamp (``graph.stamp``): every kgr write path bumps it (migrations applied
# by any process, e.g. ``kgr migrate`` or another API worker, ``graph.writer`` writes and
# domain deletes), so a delete and an add of the same size are seen too, which node and
# relationship counts missed. When it changes, the service forgets what it had read of the
# graph. Asked at most every GRAPH_CHECK_TTL_S (one unique-index lookup), so one look per 2 s
# costs nothing measurable and bounds stale answers to 2 s.
GRAPH_CHECK_TTL_S = 2.0


def check_question(question: str) -> str:
    text = (question or "").strip()
    if not text:
        raise QuestionError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return text


PLURAL_DO_RE = re.compile(r"(^|\W)do(\s+(?:the\s+)?)$", re.IGNORECASE)
# path answers an answer scorer's fused ranking starts from: a distribution over these is
# what its path weight was chosen against (``fusion.reasoner.answers``)
FUSED_PATH_ANSWERS = 50
COORDINATED_POOL = 500  # answers per topic that a coordinated question combines
READING_FLOOR = 0.1  # readings of a coordinated question kept against the likeliest one
COORDINATED_READINGS = 3  # likeliest paths whose shared answers are read from the whole graph
CHECK_PATHS = 10  # shortest paths read between the two entities of a yes/no question
CHECK_PAIRS = 4  # (subject, object) namesake pairs tried until one is linked
Reading = tuple[tuple[tuple[str, str], ...], str]  # a path's (steps, answer type)


def relation_label(step: tuple[str, str]) -> str:
    return step[0] if step[1] == "out" else f"^{step[0]}"


@dataclass
class Prepared:
    """A linked and encoded question."""

    question: str
    mentions: list[Mention]
    ctx: QuestionContext | None
    coordination: Coordination | None = None  # several topics in the topic slot

    @property
    def topics(self) -> list[Mention]:
        """The mentions whose entities the path starts from (the primary one alone, or the
        coordinated ones in question order)."""
        if self.coordination is not None:
            return list(self.coordination.mentions)
        return self.mentions[:1]


def namesakes(mention: Mention) -> list[str]:
    """The best candidate's uid, then the other candidates with its name and type."""
    best = mention.candidates[0]
    return [best.uid] + [c.uid for c in mention.candidates[1:]
                         if (c.name, c.type) == (best.name, best.type)]


def path_steps(path: GraphPath) -> list[str]:
    """The path's relations from its first node on: "HAS_PHENOTYPE", or "^ASSOCIATED_WITH"
    where the relationship points back along the path."""
    steps = []
    for here, rel in zip(path.nodes, path.relations, strict=False):
        steps.append(rel.type if rel.source == here.uid else f"^{rel.type}")
    return steps


def graph_evidence(path: GraphPath) -> EvidencePath:
    """A stored path as evidence (every relationship in its own direction)."""
    names = {n.uid: n.name for n in path.nodes}
    hops = [EvidenceHop(source=r.source, source_name=names.get(r.source, r.source), type=r.type,
                        target=r.target, target_name=names.get(r.target, r.target),
                        predicted=False, probability=None) for r in path.relations]
    return EvidencePath(relations=hops, text="; ".join(
        f"{h.source_name} -{words(h.type)}-> {h.target_name}" for h in hops))


def masked(prepared_question: str, mentions: list[Mention],
           coordination: Coordination | None) -> str:
    """The question with its topic slot masked (the coordinated span as one topic). The model
    reads one topic in its place, so a plural "do" before it is made singular: "Which companies
    do Apple and Meta control?" read as "... do [MASK] control?" took the reverse relation
    (no training phrasing has "do" before the topic), as "... does [MASK] control?" it does
    not. Only "do": a "have" before the span may be the main verb ("diseases that have X and
    Y")."""
    if coordination is None:
        return mask_question(prepared_question, mentions[0], MASK)
    before = PLURAL_DO_RE.sub(r"\1does\2", prepared_question[:coordination.start])
    return f"{before}{MASK}{prepared_question[coordination.end:]}"


@dataclass(frozen=True)
class DomainMention:
    """How well a question names an entity of one domain: its longest mention's length in
    characters, then that mention's score (``QAService.pick_domain`` compares them)."""

    length: int
    score: float
    domain: str


@dataclass(frozen=True)
class Pending:
    """An answer that a topic reaches by this path in the graph, its evidence not read yet."""

    steps: tuple[tuple[str, str], ...]
    answer_type: str
    logp: float


def reading_of(path: PathResult | Pending) -> Reading:
    """The relation path an answer was reached by: (steps, answer type)."""
    return (path.steps, path.answer_type)


def reading_answers(finals: list[PathResult], limit: int
                    ) -> list[RankedAnswer[PathResult | Pending]]:
    """One entry per (answer, reading) with the best path of that reading, best first; ties
    as in ``rank_answers`` (more supporting links, then the stronger relationship), and a
    predicted link weighs its path's probability down as there."""
    best: dict[tuple[str, Reading], tuple[float, int, int, PathResult]] = {}
    for final in finals:
        path_prob = math.exp(final.logp)
        for uid in final.answers:
            link = final.weight.get(uid)
            prob = path_prob if link is None else path_prob * link
            key = (uid, reading_of(final))
            support, position = final.support.get(uid, 1), final.order.get(uid, 0)
            if key not in best or (prob, support, -position) > \
                    (best[key][0], best[key][1], -best[key][2]):
                best[key] = (prob, support, position, final)
    ordered = sorted(best.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[1][2], kv[0][0]))
    return [RankedAnswer(uid, prob, final)
            for (uid, _), (prob, _, _, final) in ordered[:limit]]


def likely_readings(ranked: list[list[RankedAnswer[PathResult | Pending]]],
                    finals: list[list[PathResult]],
                    ) -> list[list[RankedAnswer[PathResult | Pending]]]:
    """The answers of the readings (relation paths) at least ``READING_FLOOR`` times as likely
    as the likeliest one, summed over the topics. "all" ranks shared answers first, so without
    the floor a reading the model all but rules out took the lead whenever both topics reach
    something by it: for "Which companies do Elon Musk and Jeff Bezos control?", Twitter,
    which both "relate to" (probability 0.0003), came before Tesla (CONTROL, 0.045)."""
    weight: dict[Reading, float] = {}
    for own in finals:
        for final in own:
            key = (final.steps, final.answer_type)
            weight[key] = weight.get(key, 0.0) + math.exp(final.logp)
    if not weight:
        return ranked
    floor = READING_FLOOR * max(weight.values())
    return [[entry for entry in answers if weight.get(reading_of(entry.path), 0.0) >= floor]
            for answers in ranked]


class DomainQA:
    """Answers questions about one domain with one (optional) checkpoint."""

    def __init__(self, settings: Settings, store: GraphStore, domain: str, expander: Expander,
                 index: AliasIndex, checkpoint: Checkpoint | ReasonerCheckpoint | None,
                 features: GraphFeatures | None, caps: Caps | None = None,
                 wording: Wording = "all") -> None:
        """``wording``: the phrasings of the zero-shot action texts when there is no checkpoint
        (a checkpoint brings its own); "train" for a benchmark of held-out wording."""
        self.settings = settings
        self.store = store
        self.domain = domain
        self.linker = EntityLinker(store, domain, index)
        self.checkpoint = checkpoint
        self.features = features
        self.caps = caps or Caps()
        # the phrasings the action texts (and the model) learnt: with "all", generated
        # questions in the held-out wording are no longer held out (``fusion.learn.evaluate``)
        self.wording: Wording = checkpoint.wording if checkpoint is not None else wording
        # the phrasings the domain declares (fusion.language.vocabulary)
        if store.driver is not None:
            load_declared_phrasings(store.driver, store.database, domain)
        if checkpoint is not None:
            self.space = checkpoint.space
        else:
            self.space = ActionSpace.build(self.live_relation_types(),
                                           sorted(set(index.types.values())), wording, domain)
        # the words of its relationship types that kgr has no phrasings of its own for (read
        # from their names) name relations, not entities, in its questions
        self.linker.use_relation_phrasings([
            p for rel in self.space.relation_types() if rel not in PHRASINGS
            for direction in (OUT, IN) for p in phrasings(rel, direction, domain)])
        self.linker.use_relation_types(self.space.relation_types())
        if isinstance(expander, Neo4jExpander):  # this domain's hops only (its allow-list)
            expander = expander.for_types(self.space.relation_types())
        self.expander = expander
        self.link_predictor: LinkPredictor | None = None  # loaded on the first ask that wants it
        self.coordinate = True  # several topics joined by "and" / "or" (off: the first alone)
        self.zero_shot = ZeroShotScorer(self.space)
        self.scorers: dict[str, ModelScorer] = {}
        # a reasoner (fusion.reasoner) is the fine-tuned model of a domain trained on labelled
        # rows; it reads the hop count itself, so no parse bounds its paths
        self.reasoner = checkpoint if isinstance(checkpoint, ReasonerCheckpoint) else None
        # its answer scorer over the graph embeddings, while the encoder it learnt is active
        self.answer_head: AnswerHead | None = None
        self.entity_uids: list[str] = []
        head = self.reasoner.answers if self.reasoner is not None else None
        if head is not None and features is not None:
            if features.version != head.encoder_version:
                log.warning("the answer scorer of %s was trained with encoder %s, not the "
                            "active %s; paths alone answer (retrain QA, or activate that "
                            "encoder)", domain, head.encoder_version, features.version)
            else:
                self.answer_head = head
                self.entity_uids = [""] * len(features.uid_to_index)
                for uid, i in features.uid_to_index.items():
                    self.entity_uids[i] = uid
        if checkpoint is not None and self.reasoner is None:
            trained_with = checkpoint.config.get("encoder_version")
            for name, model in checkpoint.heads.items():
                if model.use_graph and (features is None or features.dim != model.graph_dim):
                    log.warning("QA head %r of %s needs graph features of width %s; skipped",
                                name, domain, model.graph_dim)
                    continue
                # its graph terms were fitted to one encoder's vectors: another encoder's, even
                # of the same width, are another space, so the text head answers instead
                if model.use_graph and features is not None and trained_with is not None \
                        and features.version != trained_with:
                    log.warning("QA head %r of %s was trained with encoder %s, not the active %s; "
                                "skipped (retrain QA, or activate that encoder)", name, domain,
                                trained_with, features.version)
                    continue
                self.scorers[name] = ModelScorer(model, self.space, features)

    def live_relation_types(self) -> list[str]:
        with translate_errors():
            records, _, _ = self.store.driver.execute_query(
                DOMAIN_RELATION_TYPES_QUERY, {"domain": self.domain},
                database_=self.store.database, routing_=RoutingControl.READ)
        return sorted(r["type"] for r in records)

    # ------------------------------------------------------------------ steps
    def prepare(self, questions: list[str]) -> list[Prepared]:
        """Link every question and encode the linked ones (one MiniLM batch)."""
        joined = SEPARATOR_RE if self.coordinate else None
        linked = [(q, self.linker.link(q, joined)) for q in questions]
        for _, mentions in linked:
            for m in mentions:
                for c in m.candidates:
                    if isinstance(self.expander, Neo4jExpander):
                        self.expander.remember(c.uid, c.name, c.type)
        groups = [coordinate(q, ms) if ms and self.coordinate else None for q, ms in linked]
        texts = [masked(q, ms, group) for (q, ms), group in zip(linked, groups, strict=True)
                 if ms]
        contexts = iter(encode_questions(texts))
        return [Prepared(q, ms, next(contexts) if ms else None, group)
                for (q, ms), group in zip(linked, groups, strict=True)]

    def default_mode(self) -> Mode:
        return "fine-tuned" if self.trained else "zero-shot"

    @property
    def trained(self) -> bool:
        """Whether a fine-tuned model (fusion heads or a reasoner) answers."""
        return bool(self.scorers) or self.reasoner is not None

    def predictor(self) -> LinkPredictor:
        """The link predictor of the domain's active encoder (``ModelNotReadyError`` if none)."""
        if self.link_predictor is None:
            from graph.encoder.checkpoint import load_active_encoder

            self.link_predictor = LinkPredictor.from_bundle(
                load_active_encoder(self.settings, self.domain))
        return self.link_predictor

    def search(self, prepared: Prepared, max_hops: int, mode: Mode,
               use_graph: bool = True, expander: Expander | None = None,
               mention: Mention | None = None,
               ) -> tuple[list[PathResult], dict[str, Any]]:
        """The complete paths, best first, and which models scored them, from the entities of
        ``mention`` (default: the primary one); ``expander`` (default: the domain's) may be a
        ``PredictingExpander`` for this question."""
        assert prepared.ctx is not None
        expander = expander or self.expander
        mention = mention or prepared.mentions[0]
        topics = [(c.uid, math.log(max(c.score, 1e-6))) for c in mention.candidates]
        models: dict[str, Any] = {"text_encoder": TEXT_MODEL, "qa": None, "encoder": None,
                                  "graph_embeddings": False}
        if isinstance(expander, PredictingExpander):
            models["link_predictor"] = expander.predictor.version
        if mode != "zero-shot" and self.reasoner is not None:  # no parse: it reads the hops
            return self._reasoned(prepared, expander, topics, max_hops, models), models
        hints = PathHints.of(parse_question(prepared.ctx.text, self.space.types,
                                            domain=self.domain),
                             {c.type for c in mention.candidates})
        if mode == "zero-shot":
            hints = zero_shot_hints(hints, self.space)
            scorer = self.zero_shot.for_question(prepared.ctx, expander)
            finals = self._beam_search(expander, scorer, topics, max_hops, hints)
            self._drop_namesakes(finals)
            finals = self.zero_shot.rerank(prepared.ctx, finals, expander,
                                            align=hints.hops is None)
            return keep_asked_type(finals, hints), models
        head = "graph" if use_graph and "graph" in self.scorers else "text"
        if head not in self.scorers:
            raise QAModelNotReadyError(
                f"no fine-tuned QA model for domain {self.domain!r}"
                + ("" if self.scorers else "; train one with `kgr train qa`"))
        assert self.checkpoint is not None
        rerank = self.checkpoint.reranks(head)
        models.update(qa=self.checkpoint.version, graph_embeddings=head == "graph",
                      encoder=self.features.version if head == "graph" and self.features else None,
                      rerank=rerank)
        scorer = self.scorers[head].for_question(prepared.ctx, expander)
        finals = self._beam_search(expander, scorer, topics, max_hops, hints)
        self._drop_namesakes(finals)
        if rerank:
            finals = self.zero_shot.rerank(prepared.ctx, finals, expander)
        return keep_asked_type(finals, hints), models

    def _reasoned(self, prepared: Prepared, expander: Expander,
                  topics: list[tuple[str, float]], max_hops: int,
                  models: dict[str, Any]) -> list[PathResult]:
        """The reasoner's paths, executed by the beam search without the parse's hints."""
        assert self.reasoner is not None and prepared.ctx is not None
        models.update(qa=self.reasoner.version, reasoner=True)
        read = self.reasoner.runner.read([prepared.ctx.text])[0]
        walks = self.reasoner.keep_topic
        finals = self._beam_search(expander, read.scorer(), topics, max_hops, None, walks)
        if not walks:
            self._drop_namesakes(finals)
        return finals

    def _beam_search(self, expander: Expander, scorer: Scorer,
                     topics: list[tuple[str, float]], max_hops: int,
                     hints: PathHints | None, walks: bool = False) -> list[PathResult]:
        """``beam_search``; with a ``PredictingExpander`` two of them: recorded links extended by
        predicted ones (the paths and scores of the plain search), and the paths that need a
        hop no node on the way has recorded (``guess_hops``), e.g. a disease whose only gene
        association is missing."""
        if not isinstance(expander, PredictingExpander):
            return beam_search(expander, scorer, topics, max_hops, self.caps, hints=hints,
                               walks=walks)
        finals = beam_search(expander, scorer, topics, max_hops, self.caps, hints=hints,
                             predicted=expander.predicted, walks=walks)
        known = set(expander.predictor.relations)
        hops = [(rel, d) for rel in self.space.relation_types() if rel in known
                for d in (OUT, IN)]
        guessed = beam_search(expander, scorer, topics, max_hops, self.caps, hints=hints,
                              predicted=expander.predicted, guess_hops=hops, walks=walks)
        finals += [f for f in guessed if f.guessed]
        finals.sort(key=lambda f: (-f.logp, f.hops, f.steps, f.answer_type))
        return finals

    def answer(self, question: str, top_k: int = 10, max_hops: int = 3,
               mode: Mode | None = None, use_graph: bool = True,
               prepared: Prepared | None = None,
               predicted_links: bool = False, count: bool | None = None) -> AskResponse:
        """``count``: also count what the best answer's reading reaches (``AnswerCount``);
        None: when the question asks "how many"."""
        started = time.perf_counter()
        question = check_question(question)
        mode = mode or self.default_mode()
        if mode == "fine-tuned" and not self.trained:
            raise QAModelNotReadyError(
                f"no fine-tuned QA model for domain {self.domain!r}; train one with "
                f"`kgr train qa --domain {self.domain}` or ask with mode 'zero-shot'")
        prepared = prepared or self.prepare([question])[0]
        linked_at = time.perf_counter()
        linked = [
            LinkedEntity(mention=m.text, start=m.start, end=m.end, method=m.method,
                         candidates=[LinkedCandidate(uid=c.uid, name=c.name, type=c.type,
                                                     score=c.score) for c in m.candidates])
            for m in prepared.mentions
        ]
        models: dict[str, Any] = {"text_encoder": TEXT_MODEL}
        answers: list[Answer] = []
        counted: AnswerCount | None = None
        checked: CheckResult | None = None
        reason = None
        if not prepared.mentions:
            reason = f"no entity of domain {self.domain!r} was found in the question"
        else:
            expander: Expander = self.expander
            if predicted_links:
                index = self.linker.index
                expander = PredictingExpander(self.expander, self.predictor(), index.names,
                                              index.types)
            pair = check_pair(question, prepared.mentions) \
                if prepared.coordination is None else None
            if pair is not None and pair.subject.candidates[0].uid != \
                    pair.object.candidates[0].uid:
                answers, checked = self._check(question, pair, max_hops)
                if not answers:
                    reason = (f"no recorded path of at most {max_hops} hops links "
                              f"{pair.subject.candidates[0].name!r} and "
                              f"{pair.object.candidates[0].name!r}")
            elif prepared.coordination is None:
                finals, models = self.search(prepared, max_hops, mode, use_graph, expander)
                fuses = use_graph and models.get("reasoner") is True and \
                    self.answer_head is not None
                ranked = rank_answers(finals, expander, max(top_k, FUSED_PATH_ANSWERS)
                                      if fuses else top_k)
                if fuses:
                    answers = self._fused(prepared, ranked, finals, expander, top_k, models)
                    ranked = ranked[:top_k]
                else:
                    answers = [self._answer(uid, prob, final, finals, expander)
                               for uid, prob, final in ranked]
                if ranked and (asks_count(question) if count is None else count):
                    counted = self._count(prepared, ranked[0].path, expander)
            else:
                answers, models = self._coordinated(prepared, prepared.coordination, top_k,
                                                    max_hops, mode, use_graph, expander)
            if not answers and reason is None:
                names = " or ".join(repr(m.candidates[0].name) for m in prepared.topics)
                reason = f"no path of at most {max_hops} hops from {names} leads to an answer"
        done = time.perf_counter()
        return AskResponse(
            question=question, domain=self.domain, mode=mode, answers=answers,
            linked_entities=linked, reason=reason, models=models, count=counted,
            check=checked,
            coordination=prepared.coordination.operator if prepared.coordination else None,
            timings_ms={"link_encode": round(1000 * (linked_at - started), 2),
                        "retrieve_score": round(1000 * (done - linked_at), 2),
                        "total": round(1000 * (done - started), 2)},
        )

    def _coordinated(self, prepared: Prepared, group: Coordination, top_k: int, max_hops: int,
                     mode: Mode, use_graph: bool, expander: Expander,
                     ) -> tuple[list[Answer], dict[str, Any]]:
        """Answers of a question with several topics (``fusion.serve.coordination``): one search
        per topic, the same masked question; answers combined by the operator."""
        searched = [self.search(prepared, max_hops, mode, use_graph, expander, mention=m)
                    for m in group.mentions]
        ranked: list[list[RankedAnswer[PathResult | Pending]]]
        if group.operator == "all":  # per (answer, reading): topics must share the reading
            ranked = [list(reading_answers(finals, COORDINATED_POOL)) for finals, _ in searched]
            ranked = self._complete(ranked, [finals for finals, _ in searched], group, expander)
            ranked = likely_readings(ranked, [finals for finals, _ in searched])
        else:
            ranked = [list(rank_answers(finals, expander, COORDINATED_POOL))
                      for finals, _ in searched]
        groups = [[c.uid for c in m.candidates] for m in group.mentions]
        # a topic is no answer ("Which companies do Apple and Meta control?": not Meta, which
        # Apple controls, nor Apple, which controls itself in FinDKG)
        topics = {uid for uids in groups for uid in uids}
        ranked = [[entry for entry in answers if entry.uid not in topics] for answers in ranked]
        for _ in range(3):  # the evidence of the answers shown; an answer without any drops
            combined = combine(ranked, group.operator, top_k, reading_of)
            wanted: dict[tuple[int, Pending], list[str]] = {}
            for answer in combined:
                for topic, _, path in answer.reached:
                    if isinstance(path, Pending):
                        wanted.setdefault((topic, path), []).append(answer.uid)
            if not wanted:
                break
            found = {(topic, uid, pending): path_result(nodes, pending.steps,
                                                        pending.answer_type, pending.logp)
                     for (topic, pending), uids in wanted.items()
                     for uid, nodes in expander.paths_to(groups[topic], pending.steps,
                                                         uids).items()}
            asked = {(topic, uid, pending) for (topic, pending), uids in wanted.items()
                     for uid in uids}
            ranked = [[RankedAnswer(uid, prob, found.get((topic, uid, path), path)
                                    if isinstance(path, Pending) else path)
                       for uid, prob, path in answers
                       if not isinstance(path, Pending) or (topic, uid, path) not in asked
                       or (topic, uid, path) in found]
                      for topic, answers in enumerate(ranked)]
        shown = [c for c in combine(ranked, group.operator, top_k, reading_of)
                 if not any(isinstance(path, Pending) for _, _, path in c.reached)]
        return [self._coordinated_answer(c, group, expander)  # type: ignore[arg-type]  # no Pending
                for c in shown], searched[0][1]

    @staticmethod
    def _complete(ranked: list[list[RankedAnswer[PathResult | Pending]]],
                  finals: list[list[PathResult]], group: Coordination, expander: Expander,
                  ) -> list[list[RankedAnswer[PathResult | Pending]]]:
        """Add to each topic's answers the entities that every topic reaches by one of the
        likeliest readings (``COORDINATED_READINGS`` paths), read from the whole graph: each
        topic's own search reads capped neighbour lists (a disease with 80 phenotypes, a
        phenotype of 3,000 diseases), so what both reach may be in neither list. An added
        answer counts with that path's probability in the topic's own search (or, if its beam
        did not keep the path, in the search that did); its evidence path is read later, for
        the answers shown only (``Pending``)."""
        weight: dict[Reading, float] = {}
        logp: list[dict[Reading, float]] = []
        for own in finals:
            found: dict[Reading, float] = {}
            for final in own:
                if not final.guessed:
                    key = (final.steps, final.answer_type)
                    weight[key] = weight.get(key, 0.0) + math.exp(final.logp)
                    found[key] = max(found.get(key, -math.inf), final.logp)
            logp.append(found)
        groups = [[c.uid for c in m.candidates] for m in group.mentions]
        common: dict[Reading, list[str]] = {}
        taken: set[str] = set()
        for key in sorted(weight, key=lambda k: (-weight[k], k))[:COORDINATED_READINGS]:
            steps, answer_type = key
            for uid in expander.common_targets(groups, steps, COORDINATED_POOL):
                if uid not in taken and expander.node(uid).type == answer_type:
                    taken.add(uid)
                    common.setdefault(key, []).append(uid)
        out = []
        for topic, answers in enumerate(ranked):
            have = {(uid, reading_of(path)) for uid, _, path in answers}
            added = list(answers)
            for (steps, answer_type), targets in common.items():
                path_logp = logp[topic].get((steps, answer_type),
                                            max(found.get((steps, answer_type), -math.inf)
                                                for found in logp))
                pending = Pending(steps, answer_type, path_logp)
                added += [RankedAnswer(uid, math.exp(path_logp), pending) for uid in targets
                          if (uid, (steps, answer_type)) not in have]
            out.append(added)
        return out

    def _coordinated_answer(self, combined: Combined[PathResult], group: Coordination,
                            expander: Expander) -> Answer:
        uid = combined.uid
        name, etype = expander.node(uid)
        best = max(combined.reached, key=lambda r: r.probability).path
        evidence = [self._evidence(final, uid, expander) for _, _, final in combined.reached]
        asked = [m.candidates[0].name for m in group.mentions]
        reached = [expander.node(final.topic).name for _, _, final in combined.reached]
        missing = [asked[i] for i in range(len(asked))
                   if i not in {topic for topic, _, _ in combined.reached}]
        steps = " then ".join(
            (f"'{words(r)}'" if d == "out" else f"'{words(r)}' (reversed)") for r, d in best.steps)
        how = ("mean over the topics" if group.operator == "all"
               else "that at least one topic's path reaches it")
        explanation = (f"{name} ({etype}) is reached from {len(combined.reached)} of the "
                       f"{len(asked)} entities asked ({', '.join(reached)}) by {steps} "
                       f"(probability {combined.score:.2f}, {how})"
                       + (f"; not from {', '.join(missing)}" if missing else "")
                       + f"; e.g. {evidence[0].text}")
        return Answer(uid=uid, name=name, type=etype, score=round(combined.score, 6),
                      relation_path=[relation_label(s) for s in best.steps],
                      evidence=evidence, explanation=explanation,
                      reached_from=[final.topic for _, _, final in combined.reached])

    def _check(self, question: str, pair: Pair, max_hops: int
               ) -> tuple[list[Answer], CheckResult]:
        """Whether and how the graph links the two entities of a yes/no or "how are X and Y
        related" question: the shortest recorded paths between them (between the namesakes
        of each mention's best candidate, in order, until one pair is linked), ranked by the
        closeness of their words to the question; a yes/no question also names the relation
        it asks about ("Does X present Y?": HAS_PHENOTYPE), and a direct link by that relation
        comes first. The object is the one answer, with the ranked paths as its evidence."""
        relations = self.space.relation_types()
        subjects, objects = namesakes(pair.subject), namesakes(pair.object)
        paths: list[GraphPath] = []
        for s_uid, o_uid in [(s, o) for s in subjects for o in objects if s != o][:CHECK_PAIRS]:
            paths = self.store.shortest_paths(s_uid, o_uid, max_hops=max_hops,
                                              relation_types=relations, limit=CHECK_PATHS)
            if paths:
                break
        asked: str | None = None
        forward: bool | None = None
        if YES_NO_RE.search(question) and relations:
            # a relation whose phrasings share a content word with the question's comes
            # first ("in charge of": CONTROL, not OPERATE_IN), then the closest in meaning
            weights = asked_relations(question, pair, relations, self.domain)
            asked = relations[max(range(len(relations)), key=lambda i: (
                shared_words(question, pair, relations[i], self.domain), float(weights[i])))]
            forward = asked_direction(question, pair, asked, self.domain)
        subject, obj = pair.subject.candidates[0], pair.object.candidates[0]
        if not paths:
            return [], CheckResult(subject=subject.uid, object=obj.uid, connected=False,
                                   asked_relation=asked, asked_forward=forward,
                                   holds=False if asked else None)

        def asked_link(path: GraphPath) -> bool:
            """A direct link by the asked relation, the asked way round where the words say."""
            if len(path.relations) != 1 or path.relations[0].type != asked:
                return False
            return forward is None or (path.relations[0].source == path.nodes[0].uid) == forward

        encoded = get_text_encoder().encode([question] + [path_text(p) for p in paths])
        probs = rank_paths(encoded[0], encoded[1:])
        order = sorted(range(len(paths)), key=lambda i: (
            not asked_link(paths[i]),
            not (len(paths[i].relations) == 1 and paths[i].relations[0].type == asked),
            -float(probs[i]), i))
        best = paths[order[0]]
        start, end = best.nodes[0], best.nodes[-1]
        evidence = [graph_evidence(paths[i]) for i in order[:3]]
        steps = path_steps(best)
        hops = len(best.relations)
        holds = None if asked is None else asked_link(best)
        # a yes only for a recorded link by the relation asked, the way round the question
        # asks; another direct link, or a longer path, is how they are connected ("how are X
        # and Y related"), no "yes"
        if holds:
            lead = "Yes, directly"
        elif hops == 1 and best.relations[0].type == asked:
            lead = (f"Linked directly by '{words(asked)}', but the other way round from the "
                    "question")
        elif hops == 1 and asked is not None:
            lead = (f"Linked directly, but by '{words(best.relations[0].type)}', not by "
                    f"'{words(asked)}' as asked")
        elif hops == 1:
            lead = "Directly"
        else:
            lead = f"Not directly; connected in {hops} hops"
        explanation = (f"{lead}: {evidence[0].text} (the likeliest reading of {len(paths)} "
                       f"shortest path{'s' if len(paths) > 1 else ''}, probability "
                       f"{float(probs[order[0]]):.2f})")
        answer = Answer(uid=end.uid, name=end.name, type=end.types[0] if end.types else "Entity",
                        score=round(float(probs[order[0]]), 6), relation_path=steps,
                        evidence=evidence, explanation=explanation)
        return [answer], CheckResult(subject=start.uid, object=end.uid, connected=True,
                                     hops=hops, relation_path=steps, asked_relation=asked,
                                     asked_forward=forward, holds=holds)

    @staticmethod
    def _count(prepared: Prepared, best: PathResult, expander: Expander) -> AnswerCount:
        """What ``best``'s reading reaches from its topic and the topic's namesakes among the
        candidates (two "Rett syndrome" records are one disease to the asker)."""
        named = next(((c.name, c.type) for m in prepared.topics for c in m.candidates
                      if c.uid == best.topic), None)
        topics = list(dict.fromkeys([best.topic] + [
            c.uid for m in prepared.topics for c in m.candidates
            if named is not None and (c.name, c.type) == named]))
        value, exact = expander.count_targets(topics, best.steps, best.answer_type)
        return AnswerCount(value=value, exact=exact, type=best.answer_type, topics=topics,
                           relation_path=[relation_label(s) for s in best.steps])

    def _drop_namesakes(self, finals: list[PathResult]) -> None:
        """Remove answers named like the path's topic: for "Which diseases are characterized by
        Liposarcoma?" (a phenotype and a disease of that name) the disease Liposarcoma is true
        but says nothing. The question generator leaves them out of the gold answers too."""
        for final in finals:
            namesakes = self.linker.index.same_name(final.topic)
            if len(namesakes) > 1:
                final.answers = [u for u in final.answers if u not in namesakes]

    def _fused(self, prepared: Prepared, ranked: list[RankedAnswer[PathResult]],
               finals: list[PathResult], expander: Expander, top_k: int,
               models: dict[str, Any]) -> list[Answer]:
        """The path answers and the answer scorer's, ranked by ``fuse`` (the weight training
        chose on held-out rows); the scorer's own answers are marked inferred."""
        head, features = self.answer_head, self.features
        assert head is not None and features is not None and prepared.ctx is not None
        topic = prepared.mentions[0].candidates[0].uid
        index = features.uid_to_index
        if topic not in index:  # an entity added after the encoder was trained
            return [self._answer(uid, prob, final, finals, expander)
                    for uid, prob, final in ranked[:top_k]]
        probs = embedding_probs(head.model, prepared.ctx.pooled.unsqueeze(0),
                                torch.tensor([index[topic]]), features.entity_embeddings)[0]
        exclude = frozenset() if self.reasoner is not None and self.reasoner.keep_topic \
            else frozenset({topic})
        fused = fuse(capped({uid: prob for uid, prob, _ in ranked}), probs,
                     self.entity_uids, index, head.path_weight, head.top_k, exclude)
        by_uid = {uid: final for uid, _, final in ranked}
        models.update(encoder=features.version, graph_embeddings=True, answer_scorer=True)
        return [self._answer(f.uid, f.score, by_uid[f.uid], finals, expander) if f.from_path
                else self._inferred(f, topic) for f in fused[:top_k]]

    def _inferred(self, fused: Fused, topic: str) -> Answer:
        names, types = self.linker.index.names, self.linker.index.types
        name, etype = names.get(fused.uid, fused.uid), types.get(fused.uid, "Entity")
        text = (f"inferred by the graph embeddings (p={fused.embedding_prob:.2f}): no recorded "
                f"path of the question's reading from {names.get(topic, topic)} reaches it")
        return Answer(uid=fused.uid, name=name, type=etype, score=round(fused.score, 6),
                      relation_path=[], inferred=True,
                      evidence=[EvidencePath(relations=[], text=text, inferred=True,
                                             score=round(fused.embedding_prob, 6))],
                      explanation=f"{name} ({etype}) is {text}")

    @staticmethod
    def _evidence(final: PathResult, uid: str, expander: Expander) -> EvidencePath:
        name = lambda u: expander.node(u).name  # noqa: E731
        predicted = expander.predicted if isinstance(expander, PredictingExpander) else {}
        hops = [EvidenceHop(source=h, source_name=name(h), type=r, target=t, target_name=name(t),
                            predicted=(h, r, t) in predicted,
                            probability=round(predicted[(h, r, t)], 6)
                            if (h, r, t) in predicted else None)
                for h, r, t in final.evidence(uid)]
        text = "; ".join(f"{e.source_name} -{words(e.type)}"
                         f"{f' (predicted, p={e.probability:.2f})' if e.predicted else ''}"
                         f"-> {e.target_name}" for e in hops)
        return EvidencePath(relations=hops, text=text)

    def _answer(self, uid: str, prob: float, final: PathResult,
                finals: list[PathResult], expander: Expander) -> Answer:
        evidence = [self._evidence(final, uid, expander)]
        for other in finals[:20]:
            if len(evidence) >= 3:
                break
            if other is not final and uid in other.back[-1] and other.answer_type == \
                    final.answer_type:
                path = self._evidence(other, uid, expander)
                if path.text not in {e.text for e in evidence}:
                    evidence.append(path)
        name, etype = expander.node(uid)
        topic = expander.node(final.topic).name
        steps = " then ".join(
            (f"'{words(r)}'" if d == "out" else f"'{words(r)}' (reversed)") for r, d in final.steps)
        support = final.support.get(uid, 1)
        paths = sum(uid in other.answers for other in finals)
        summed = f", summed over the {paths} paths that reach it" if paths > 1 else ""
        guessed = sum(h.predicted for h in evidence[0].relations)
        explanation = (f"{name} ({etype}) is reached from {topic} by {steps}"
                       f" (probability {prob:.2f}{summed}); e.g. {evidence[0].text}"
                       + (f"; {support} links lead to it" if support > 1 else "")
                       + (f"; {guessed} of its links are predicted by the graph encoder, not "
                          "recorded in the graph" if guessed else ""))
        return Answer(uid=uid, name=name, type=etype, score=round(prob, 6),
                      relation_path=[relation_label(s) for s in final.steps],
                      evidence=evidence, explanation=explanation)


class QAService:
    """Per-process cache of ``DomainQA`` objects; reloads when an active version changes."""

    def __init__(self, settings: Settings, driver: Driver, caps: Caps | None = None) -> None:
        self.settings = settings
        self.store = GraphStore(driver, settings.neo4j_database)
        self.expander = Neo4jExpander(driver, settings.neo4j_database)
        self.caps = caps
        self._domains: dict[str, tuple[tuple[str | None, str | None], DomainQA]] = {}
        self._indexes: dict[str, AliasIndex] = {}
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()
        self.graph_check_ttl_s = GRAPH_CHECK_TTL_S
        self._graph_stamp: GraphStamp | None = None
        self._graph_checked_at = -math.inf
        self.warmed_up: dict[str, float] | None = None  # seconds per domain, once warmed up

    def check_graph(self) -> None:
        """Forget what was read of the graph when its write stamp (``graph.stamp``) has changed
        since the last look (at most one look per ``graph_check_ttl_s``). A write that
        bypasses kgr's write paths (raw Cypher) is not seen."""
        now = time.monotonic()
        if now - self._graph_checked_at < self.graph_check_ttl_s:
            return
        self._graph_checked_at = now
        stamp = read_graph_stamp(self.store.driver, self.store.database)
        if self._graph_stamp is not None and stamp != self._graph_stamp:
            self.graph_changed()
        self._graph_stamp = stamp

    def check_domain(self, domain: str) -> None:
        """404 for an unknown domain; a known one is re-checked every DOMAIN_CHECK_TTL_S."""
        seen = self._checked.get(domain)
        if seen is not None and time.monotonic() - seen < DOMAIN_CHECK_TTL_S:
            return
        self.store.check_domain(domain)
        self._checked[domain] = time.monotonic()

    def _versions(self, domain: str) -> tuple[str | None, str | None]:
        from graph.artifacts import ArtifactStore

        encoder = ArtifactStore(self.settings.artifacts_dir, "encoder").active_version(domain)
        return qa_artifacts(self.settings).active_version(domain), encoder

    def domain(self, domain: str) -> DomainQA:
        versions = self._versions(domain)
        with self._lock:
            cached = self._domains.get(domain)
            if cached is not None and cached[0] == versions:
                return cached[1]
            index = self._indexes.get(domain)
            if index is None:
                index = AliasIndex.load(self.store.driver, self.store.database, domain)
                if not index.names:
                    raise NotFoundError(f"unknown domain {domain!r}")
                self._indexes[domain] = index
            checkpoint = None
            if versions[0] is not None:
                checkpoint = load_checkpoint(qa_artifacts(self.settings).path(domain, versions[0]))
            features = load_graph_features(self.settings, domain)
            # a domain's questions read only its own entities: a yes/no question's paths too
            qa = DomainQA(self.settings, self.store.scoped([domain], sensitive=True), domain,
                          self.expander, index, checkpoint, features, self.caps)
            self._domains[domain] = (versions, qa)
            return qa

    def invalidate(self, domain: str) -> None:
        """Reload the models and the alias index of ``domain`` on its next question."""
        with self._lock:
            self._domains.pop(domain, None)
            self._indexes.pop(domain, None)
            self._checked.pop(domain, None)

    def graph_changed(self) -> None:
        """Forget everything read from the graph (alias indexes, hops, neighbours), e.g. after
        a migration: the next questions read the graph as it is now."""
        with self._lock:
            self._domains.clear()
            self._indexes.clear()
            self._checked.clear()
        self.expander.clear()

    def pick_domain(self, question: str, allowed: Collection[str] | None = None) -> str | None:
        """The domain whose entity names the question mentions best (among the domains with a
        trained QA model, when there are any); None when no domain's names occur in it.
        ``allowed``: consider only these domains (the caller's key's; None: all)."""
        best: DomainMention | None = None
        domains = [d for d in self.store.domains() if allowed is None or d in allowed]
        trained = [d for d in domains if qa_artifacts(self.settings).active_version(d)]
        for name in trained or domains:
            mentions = self.domain(name).linker.exact(question)
            if mentions:
                top = max(mentions, key=lambda m: (m.end - m.start, m.score))
                found = DomainMention(top.end - top.start, top.score, name)
                # on a tie the domain listed first stays
                if best is None or (found.length, found.score) > (best.length, best.score):
                    best = found
        return best.domain if best is not None else None

    def _nothing_found(self, question: str, mode: Mode | None,
                       allowed: Collection[str] | None = None) -> AskResponse:
        domains = [d for d in self.store.domains() if allowed is None or d in allowed]
        reason = ("no entity of any domain (" + ", ".join(domains) + ") was found in the "
                  "question; pass a domain to ask it there") if domains else \
            "the graph holds no domain yet"
        # nothing was scored: the mode is the one asked for, else the one needing no model
        return AskResponse(question=question, domain=None, mode=mode or "zero-shot",
                           answers=[], linked_entities=[], reason=reason,
                           models={"text_encoder": TEXT_MODEL}, timings_ms={})

    def warm_up(self) -> dict[str, float]:
        """Load every domain that has a QA model and answer one question about it, so that the
        first question a user asks does not pay for MiniLM's first forward pass, the domain's
        alias index and checkpoint, and Neo4j's query plans. Returns seconds per domain."""
        seconds: dict[str, float] = {}
        for name in self.store.domains():
            if not qa_artifacts(self.settings).active_version(name):
                continue
            started = time.perf_counter()
            with translate_errors():
                records, _, _ = self.store.driver.execute_query(
                    WARM_UP_TOPIC_QUERY, {"domain": name}, database_=self.store.database,
                    routing_=RoutingControl.READ)
            if records:
                self.ask(f"What is related to {records[0]['name']}?", name)
            seconds[name] = round(time.perf_counter() - started, 2)
        self.warmed_up = seconds
        return seconds

    def phrasings(self, domain: str) -> PhrasingsResponse:
        """How questions name each relationship type of ``domain`` now, where those words come
        from, and whether the active model learnt them (404 for an unknown domain)."""
        qa = self.domain(domain)  # reads the domain's declared phrasings
        relations = [RelationPhrasings(
            relation=rel, forward=phrasings(rel, OUT, domain), backward=phrasings(rel, IN, domain),
            forward_source=phrasing_source(rel, OUT, domain),
            backward_source=phrasing_source(rel, IN, domain)) for rel in qa.live_relation_types()]
        checkpoint = qa.checkpoint
        return PhrasingsResponse(
            domain=domain, relations=relations, type_words=declared_type_words(domain),
            model=checkpoint.version if checkpoint is not None else None,
            model_current=checkpoint.phrasings_current() if checkpoint is not None else None)

    def ask(self, question: str, domain: str | None = None, top_k: int = 10, max_hops: int = 3,
            mode: Mode | None = None, use_graph: bool = True,
            predicted_links: bool = False, count: bool | None = None,
            allowed: Collection[str] | None = None) -> AskResponse:
        """One question: ``ask_batch`` of one."""
        return self.ask_batch([question], domain, top_k, max_hops, mode, use_graph,
                              predicted_links, count, allowed)[0]

    def ask_batch(self, questions: list[str], domain: str | None = None, top_k: int = 10,
                  max_hops: int = 3, mode: Mode | None = None, use_graph: bool = True,
                  predicted_links: bool = False, count: bool | None = None,
                  allowed: Collection[str] | None = None) -> list[AskResponse]:
        """``ask`` for many questions, in their order: each domain links and encodes its
        questions in one MiniLM batch, which is most of what one question costs besides the
        search. Every question is checked before any is answered (``QuestionError`` naming the
        first bad one). Each answer's ``link_encode`` time is its equal share of its batch's.
        ``allowed``: the only domains the caller may ask (None: all): another ``domain`` is
        unknown (404), and a question without one is matched against these only."""
        checked = []
        for i, question in enumerate(questions):
            try:
                checked.append(check_question(question))
            except QuestionError as exc:
                if len(questions) == 1:
                    raise
                raise QuestionError(f"question {i + 1}: {exc.message}") from exc
        threads.for_ask()
        self.check_graph()
        if domain is not None:
            if allowed is not None and domain not in allowed:
                raise NotFoundError(f"unknown domain {domain!r}")
            self.check_domain(domain)
        out: list[AskResponse | None] = [None] * len(checked)
        by_domain: dict[str, list[int]] = {}
        for i, question in enumerate(checked):
            picked = domain if domain is not None else self.pick_domain(question, allowed)
            if picked is None:  # as within one domain: no entity found is an answer, not an error
                out[i] = self._nothing_found(question, mode, allowed)
            else:
                by_domain.setdefault(picked, []).append(i)
        for name, rows in by_domain.items():
            qa = self.domain(name)
            started = time.perf_counter()
            prepared = qa.prepare([checked[i] for i in rows])
            share = round(1000 * (time.perf_counter() - started) / len(rows), 2)
            for i, ready in zip(rows, prepared, strict=True):
                response = qa.answer(checked[i], top_k, max_hops, mode, use_graph,
                                     prepared=ready, predicted_links=predicted_links,
                                     count=count)
                timings = response.timings_ms
                timings["link_encode"] = round(timings["link_encode"] + share, 2)
                timings["total"] = round(timings["total"] + share, 2)
                out[i] = response
        return [r for r in out if r is not None]
