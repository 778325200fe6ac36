"""Train and publish a reasoner for a domain from labelled rows (``kgr train qa --data``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.settings import Settings
from fusion.exceptions import TrainingDataError
from fusion.language.linking import EntityLinker, mask_question, names_index
from fusion.learn.questions import alias_index_of
from fusion.learn.train import resolve
from fusion.model.graphdata import DomainGraph
from fusion.model.space import ActionSpace, load_graph_features
from fusion.reasoner.answers import (
    AnswerScorerConfig,
    ScorerRow,
    capped,
    choose_weight,
    embedding_probs,
    fit_scorer,
    split_rows,
)
from fusion.reasoner.checkpoint import AnswerHead, hop_text, save_reasoner
from fusion.reasoner.learn import ProgressFn, fit, path_answer_scores, split
from fusion.reasoner.model import PathReasoner, ReasonerConfig, load_tokenizer
from fusion.reasoner.supervision import Example, LinkedRow, RowReport, build_examples
from fusion.reasoner.vocab import Vocab
from fusion.serve.checkpoint import qa_artifacts
from fusion.serve.inference import MASK, encode_questions
from graph.lock import ModelLock


class RowLinker:
    """A row's topic entities and its question with the topic masked, as the ask pipeline
    masks it (``fusion.language.linking.mask_question``)."""

    def __init__(self, graph: DomainGraph) -> None:
        self.graph = graph
        self.linker = EntityLinker(None, graph.domain, alias_index_of(graph))
        self.by_name = names_index(graph.names)

    def resolve(self, values: Sequence[Any]) -> list[str]:
        """Uids for a list of uids or names (a name may stand for several entities)."""
        return resolve(self.graph, values, self.by_name)

    def __call__(self, row: dict[str, Any]) -> LinkedRow | None:
        question = str(row["question"]).strip()
        given = self.resolve(row.get("topic_entities") or [])
        mentions = sorted(self.linker.link(question),
                          key=lambda m: (-(m.end - m.start), -m.score, m.start))
        for mention in mentions:
            uids = [c.uid for c in mention.candidates]
            if not given or set(uids) & set(given):
                topics = [u for u in given if u in uids] if given else uids
                return LinkedRow(topics, mask_question(question, mention, MASK))
        return None


def train_reasoner(settings: Settings, driver: Any, domain: str, rows: Sequence[dict[str, Any]],
                   cfg: ReasonerConfig | None = None, *, graph: DomainGraph | None = None,
                   progress: ProgressFn | None = None, activate: bool = True) -> dict[str, Any]:
    """Train a reasoner on ``rows`` ({question, answers, topic_entities?}) and publish it;
    with ``activate`` it holds the domain's QA ``ModelLock`` and becomes the served version.
    Rows that cannot be used are reported by reason; none usable is a ``TrainingDataError``
    and nothing is published."""
    if not activate:
        return _train(settings, driver, domain, rows, cfg, graph, progress, None)
    with ModelLock(driver, settings.neo4j_database, "qa", domain) as lock:
        return _train(settings, driver, domain, rows, cfg, graph, progress, lock)


def _train(settings: Settings, driver: Any, domain: str, rows: Sequence[dict[str, Any]],
           cfg: ReasonerConfig | None, graph: DomainGraph | None,
           progress: ProgressFn | None, lock: ModelLock | None) -> dict[str, Any]:
    cfg = cfg or ReasonerConfig()
    torch.manual_seed(cfg.seed)
    if graph is None:
        graph = DomainGraph.load(driver, settings.neo4j_database, domain)
    if progress:
        progress(0.0, "finding the paths that reach each row's answers")
    linker = RowLinker(graph)
    resolved = [{**row, "_answers": linker.resolve(row.get("answers") or [])} for row in rows]
    examples, report, keep_topic = build_examples(resolved, graph, linker, cfg.max_hops,
                                                  cfg.frontier_cap, cfg.max_candidates)
    if not examples:
        raise TrainingDataError(_nothing_usable(domain, report))
    space = ActionSpace.build(graph.relation_types(), graph.entity_types(), "all", domain)
    vocab = Vocab.of(space.actions, space.types)
    model = PathReasoner(hop_text(space, vocab), space.type_text, cfg)
    fitted = fit(model, examples, graph, vocab, cfg, load_tokenizer(), progress, keep_topic)
    metrics = {**fitted.metrics, "rows": report.summary(), "keep_topic": keep_topic}
    head: AnswerHead | None = None
    if cfg.answer_scorer:
        if progress:
            progress(0.95, "training the answer scorer over the graph embeddings")
        head, metrics["answer_scorer"] = train_answer_head(
            settings, domain, resolved, linker, examples, fitted.model, graph, vocab, cfg,
            keep_topic)
    store = qa_artifacts(settings)
    version = save_reasoner(store, domain, fitted.model, space, cfg, keep_topic, metrics,
                            fitted.history, head)
    if lock is not None:
        with lock.fenced():
            store.activate(domain, version)
    return {"domain": domain, "version": version, "model": "reasoner", **metrics,
            "history": fitted.history}


@dataclass(frozen=True)
class HeadRow:
    """A row the answer scorer can learn from: in the encoder's index, topic and answers."""

    line: int
    masked: str
    topic: str
    answers: frozenset[str]


def train_answer_head(settings: Settings, domain: str, rows: Sequence[dict[str, Any]],
                      linker: RowLinker, examples: Sequence[Example], reasoner: PathReasoner,
                      graph: DomainGraph, vocab: Vocab, cfg: ReasonerConfig, keep_topic: bool,
                      head_cfg: AnswerScorerConfig | None = None,
                      ) -> tuple[AnswerHead | None, dict[str, Any]]:
    """The answer scorer over the domain's active encoder (None without one), trained on every
    row whose topic and an answer the encoder knows, paths or not. The rows held out of the
    reasoner's training, and a share of the rows it could not use, are held out here too: the
    scorer's epoch and the path weight are chosen on them."""
    head_cfg = head_cfg or AnswerScorerConfig(seed=cfg.seed)
    features = load_graph_features(settings, domain)
    if features is None:
        return None, {"trained": False, "why": "the domain has no active graph encoder"}
    index = features.uid_to_index
    uids = [""] * len(index)
    for uid, i in index.items():
        uids[i] = uid
    usable: list[HeadRow] = []
    for i, row in enumerate(rows):
        if not str(row.get("question", "")).strip():
            continue
        found = linker(row)
        answers = frozenset(a for a in row.get("_answers") or () if a in index)
        topic = next((t for t in found.topics if t in index), None) if found else None
        if found and topic is not None and answers:
            usable.append(HeadRow(int(row.get("_line", i + 1)), found.masked, topic, answers))
    if not usable:
        return None, {"trained": False, "why": "no row's topic and answer are in the encoder"}
    _, reasoner_val = split(list(examples), cfg.validation_fraction, cfg.seed)
    held = {e.line for e in reasoner_val}
    reasoner_rows = {e.line for e in examples}
    others = [r for r in usable if r.line not in reasoner_rows]
    _, other_val = split_rows(len(others), head_cfg.validation_fraction, head_cfg.seed)
    held |= {others[i].line for i in other_val}
    vectors = torch.stack([c.pooled for c in encode_questions([r.masked for r in usable])])
    scorer_rows = [ScorerRow(i, index[r.topic], tuple(sorted(index[a] for a in r.answers)))
                   for i, r in enumerate(usable)]
    train = [s for s, r in zip(scorer_rows, usable, strict=True) if r.line not in held]
    val = [s for s, r in zip(scorer_rows, usable, strict=True) if r.line in held]
    entities = features.entity_embeddings
    fitted = fit_scorer(vectors, train, val, entities, head_cfg)
    weight, table = 1.0, dict[str, float]()
    if val:
        val_rows = [r for r in usable if r.line in held]
        paths = path_answer_scores(reasoner, load_tokenizer(), [r.masked for r in val_rows],
                                   [r.topic for r in val_rows], graph, vocab, cfg, keep_topic)
        probs = embedding_probs(fitted.model, vectors[[s.question for s in val]],
                                torch.tensor([s.topic for s in val]), entities)
        excludes = [frozenset() if keep_topic else frozenset({r.topic}) for r in val_rows]
        weight, table = choose_weight([capped(p) for p in paths], probs,
                                      [r.answers for r in val_rows], uids, index, head_cfg,
                                      excludes)
    metrics = {"trained": True, "encoder_version": features.version, "path_weight": weight,
               "hits@1_by_path_weight": table, "rows": len(usable),
               "rows_without_a_path": len(others), **fitted.metrics,
               "history": fitted.history}
    return AnswerHead(fitted.model, features.version, weight, head_cfg.top_k), metrics


def _nothing_usable(domain: str, report: RowReport) -> str:
    summary = report.summary()
    reasons = "; ".join(f"{reason}: {n}" for reason, n in summary["skipped_by_reason"].items())
    examples = "; ".join(f"line {e['line']}: {e['question'][:60]!r} ({reason})"
                         for reason, listed in summary["skipped_examples"].items()
                         for e in listed[:2])
    return (f"none of the {report.rows} rows can be used in domain {domain!r} ({reasons}); "
            f"e.g. {examples}")
