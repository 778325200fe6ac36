"""Hits@1, Hits@5 and mean reciprocal rank per hop count, end to end through the pipeline."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from fusion.language.linking import names_index
from fusion.learn.train import resolve
from fusion.serve.pipeline import DomainQA
from fusion.serve.schemas import Mode

ProgressFn = Callable[[float, str], None]


def reciprocal_rank(ranked: Sequence[str], gold: set[str]) -> float:
    """1 / rank of the first correct answer (0 when none is in the list)."""
    for position, uid in enumerate(ranked, 1):
        if uid in gold:
            return 1.0 / position
    return 0.0


def hits_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return float(any(uid in gold for uid in ranked[:k]))


def summarize(rows: Sequence[tuple[int, Sequence[str], set[str]]]) -> dict[str, dict[str, float]]:
    """``rows`` of (hops, ranked uids, gold uids) -> metrics per hop count and 'all'."""
    groups: dict[str, list[tuple[Sequence[str], set[str]]]] = defaultdict(list)
    for hops, ranked, gold in rows:
        groups[str(hops)].append((ranked, gold))
        groups["all"].append((ranked, gold))
    out = {}
    for key in sorted(groups, key=lambda k: (k == "all", k)):
        items = groups[key]
        n = len(items)
        out[key] = {
            "n": n,
            "hits@1": round(sum(hits_at(r, g, 1) for r, g in items) / n, 4),
            "hits@5": round(sum(hits_at(r, g, 5) for r, g in items) / n, 4),
            "mrr": round(sum(reciprocal_rank(r, g) for r, g in items) / n, 4),
        }
    return out


def evaluate_rows(qa: DomainQA, rows: Sequence[dict[str, Any]], mode: Mode,
                  use_graph: bool = True, max_hops: int = 3, top_k: int = 20,
                  progress: ProgressFn | None = None,
                  batch_size: int = 64, per_question: bool = False,
                  predicted_links: bool = False) -> dict[str, Any]:
    """Metrics of ``qa`` on rows ``{"question", "answers", "hops"?}`` (answers: uids or names).

    Rows without "hops" are counted under the hop count of the predicted best path. With
    ``per_question`` the result also holds each row's Hits@1, in row order (for paired
    comparisons of two models on one set). ``predicted_links``: retrieval also follows the
    links the graph encoder predicts (``fusion.serve.linkpred``)."""
    # normalised as training normalises them: "Tesla Inc." is "tesla inc" in both
    by_name = names_index(qa.linker.index.names)
    graph_like = _NameView(qa)
    results: list[tuple[int, Sequence[str], set[str]]] = []
    started = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        prepared = qa.prepare([str(r["question"]) for r in chunk])
        for row, prep in zip(chunk, prepared, strict=True):
            gold = set(resolve(graph_like, row["answers"], by_name))
            response = qa.answer(prep.question, top_k, max_hops, mode, use_graph, prepared=prep,
                                 predicted_links=predicted_links)
            ranked = [a.uid for a in response.answers]
            hops = int(row.get("hops") or (len(response.answers[0].relation_path)
                                           if response.answers else 0))
            results.append((hops, ranked, gold))
        if progress:
            progress(min(1.0, (start + len(chunk)) / len(rows)),
                     f"{mode}{'' if use_graph else ' (no graph)'}: {start + len(chunk)} questions")
    metrics = summarize(results)
    elapsed = time.perf_counter() - started
    out: dict[str, Any] = {
        # whether the graph head answered: a checkpoint whose graph head was not kept
        # (``TrainConfig.graph_terms_p``) answers with its text head even when asked for it
        "mode": mode,
        "graph_embeddings": use_graph and mode == "fine-tuned" and (
            "graph" in qa.scorers or qa.answer_head is not None),
        "predicted_links": predicted_links,
        "metrics": metrics, "seconds": round(elapsed, 2),
        "ms_per_question": round(1000 * elapsed / max(1, len(rows)), 2)}
    if qa.wording == "all" and any(r.get("split") == "eval" for r in rows):
        out["note"] = (
            "these generated questions use the held-out phrasings, which this model learnt "
            "(served models learn every phrasing): the figures are not for unseen wording; "
            "bench/qa_quality.py measures models trained without them")
    if per_question:
        out["hits@1_per_question"] = [hits_at(r, g, 1) for _, r, g in results]
    return out


class _NameView:
    """What ``fusion.learn.train.resolve`` needs of a graph, from the alias index."""

    def __init__(self, qa: DomainQA) -> None:
        self.names = qa.linker.index.names
        self.domain = qa.domain
