"""Train and publish a reasoner for a domain from labelled rows (``kgr train qa --data``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from core.settings import Settings
from fusion.checkpoint import qa_artifacts
from fusion.exceptions import TrainingDataError
from fusion.graphdata import DomainGraph
from fusion.inference import MASK
from fusion.linking import EntityLinker, mask_question, names_index
from fusion.questions import alias_index_of
from fusion.reasoner.checkpoint import hop_text, save_reasoner
from fusion.reasoner.learn import ProgressFn, fit
from fusion.reasoner.model import PathReasoner, ReasonerConfig, load_tokenizer
from fusion.reasoner.supervision import RowReport, build_examples
from fusion.reasoner.vocab import Vocab
from fusion.space import ActionSpace
from fusion.train import resolve
from graph.lock import ModelLock


class RowLinker:
    """A row's topic entities and its question with the topic masked, as the ask pipeline
    masks it (``fusion.linking.mask_question``)."""

    def __init__(self, graph: DomainGraph) -> None:
        self.graph = graph
        self.linker = EntityLinker(None, graph.domain, alias_index_of(graph))
        self.by_name = names_index(graph.names)

    def resolve(self, values: Sequence[Any]) -> list[str]:
        """Uids for a list of uids or names (a name may stand for several entities)."""
        return resolve(self.graph, values, self.by_name)

    def __call__(self, row: dict[str, Any]) -> tuple[list[str], str] | None:
        question = str(row["question"]).strip()
        given = self.resolve(row.get("topic_entities") or [])
        mentions = sorted(self.linker.link(question),
                          key=lambda m: (-(m.end - m.start), -m.score, m.start))
        for mention in mentions:
            uids = [c.uid for c in mention.candidates]
            if not given or set(uids) & set(given):
                topics = [u for u in given if u in uids] if given else uids
                return topics, mask_question(question, mention, MASK)
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
    store = qa_artifacts(settings)
    version = save_reasoner(store, domain, fitted.model, space, cfg, keep_topic, metrics,
                            fitted.history)
    if lock is not None:
        with lock.fenced():
            store.activate(domain, version)
    return {"domain": domain, "version": version, "model": "reasoner", **metrics,
            "history": fitted.history}


def _nothing_usable(domain: str, report: RowReport) -> str:
    summary = report.summary()
    reasons = "; ".join(f"{reason}: {n}" for reason, n in summary["skipped_by_reason"].items())
    examples = "; ".join(f"line {e['line']}: {e['question'][:60]!r} ({reason})"
                         for reason, listed in summary["skipped_examples"].items()
                         for e in listed[:2])
    return (f"none of the {report.rows} rows can be used in domain {domain!r} ({reasons}); "
            f"e.g. {examples}")
