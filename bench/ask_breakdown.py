"""Where a fresh question's time goes: in-process asks, timed per part.

Builds a ``QAService`` in this process (no HTTP; same settings as the CLI), warms it up as the
server does, then asks ``--count`` questions of ``bench/ask_latency.py``'s fresh templates about
entities at ``--offset`` in each template's sample (a new offset gives questions no run has
asked, so Neo4j has not read their neighbourhoods since it started). Prints p50 / p90 / p99,
the mean milliseconds per question of each part, and the slowest questions with theirs:

- ``degrees`` / ``neighbours``: the retrieval's Neo4j round trips (driver time included);
- ``path_texts``: MiniLM on the verbalised paths of the rerank (only texts not met before);
- ``qa_model``: the fusion model's scoring (initial states, prefix GRU, step scores);
- ``type_check``: ``fusion.serve.retrieval.type_penalty``, the types the question names against what
  each scored hop reaches (pure Python over the neighbours already read);
- ``link_encode``: linking and the question's MiniLM pass (the service's own timing).

It wraps those functions to time them: a profile, not a benchmark with a peer.

    .venv/bin/python bench/ask_breakdown.py --offset 700 --count 200
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ask_latency import FRESH_TEMPLATES, QUESTIONS, SAMPLE_NAMES_QUERY  # noqa: E402

Parts = collections.defaultdict[str, float]  # part -> milliseconds


def timed(part: Callable[[Any, tuple[Any, ...]], str], fn: Callable[..., Any],
          parts: Parts) -> Callable[..., Any]:
    """``fn`` adding its milliseconds to ``parts[part(self, args)]``."""
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(self, *args, **kwargs)
        finally:
            parts[part(self, args)] += 1000 * (time.perf_counter() - started)
    return wrapper


def instrument(parts: Parts) -> None:
    import fusion.language.text as text
    import fusion.model.model as model
    import fusion.serve.retrieval as retrieval

    def query_kind(expander: Any, args: tuple[Any, ...]) -> str:
        queries = expander._query_set()
        return {queries.degrees: "degrees", queries.neighbours: "neighbours"}.get(
            args[0], "other_queries")

    run = retrieval.Neo4jExpander._run
    retrieval.Neo4jExpander._run = timed(query_kind, run, parts)  # type: ignore[method-assign]
    text.TextEncoder.encode = timed(  # type: ignore[method-assign]
        lambda *_: "path_texts", text.TextEncoder.encode, parts)
    for name in ("initial_state", "prefix_states", "step_scores"):
        setattr(model.FusionModel, name,
                timed(lambda *_: "qa_model", getattr(model.FusionModel, name), parts))
    penalty = retrieval.type_penalty

    def type_check(*args: Any, **kwargs: Any) -> float:
        started = time.perf_counter()
        try:
            return penalty(*args, **kwargs)
        finally:
            parts["type_check"] += 1000 * (time.perf_counter() - started)
    retrieval.type_penalty = type_check


def fresh_questions(driver: Any, database: str, offset: int, count: int) -> list[tuple[str, str]]:
    per_template = count // len(FRESH_TEMPLATES) + 1
    out: list[tuple[str, str]] = []
    for i, (domain, etype, template) in enumerate(FRESH_TEMPLATES):
        records, _, _ = driver.execute_query(
            SAMPLE_NAMES_QUERY, {"domain": domain, "type": etype, "skip": offset + 50 * i,
                                 "limit": per_template}, database_=database)
        out += [(template.format(r["name"]), domain) for r in records]
    out.sort(key=lambda q: zlib.crc32(q[0].encode()))  # mix templates, a stable order
    return out[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--offset", type=int, default=700,
                        help="entities skipped in each template's sample (new: fresh reads)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--slowest", type=int, default=8)
    args = parser.parse_args()

    from core.settings import get_settings
    from fusion.serve import threads
    from fusion.serve.pipeline import QAService
    from graph.driver import make_driver

    settings = get_settings()
    parts: Parts = collections.defaultdict(float)
    instrument(parts)
    with make_driver(settings) as driver:
        questions = fresh_questions(driver, settings.neo4j_database, args.offset, args.count)
        service = QAService(settings, driver)
        threads.serve(settings.serve_torch_threads)  # as the API does
        print("warm-up (s):", service.warm_up())
        for domain, asked in QUESTIONS.items():
            for question in asked:
                service.ask(question, domain, top_k=10, max_hops=3)
        rows: list[tuple[float, str, dict[str, float]]] = []
        total: Parts = collections.defaultdict(float)
        for question, domain in questions:
            parts.clear()
            started = time.perf_counter()
            response = service.ask(question, domain, top_k=10, max_hops=3)
            ms = 1000 * (time.perf_counter() - started)
            parts["link_encode"] += response.timings_ms["link_encode"]
            rows.append((ms, question, dict(parts)))
            for name, part_ms in parts.items():
                total[name] += part_ms
    if not rows:
        raise SystemExit("no questions: the offset is past every template's sample")
    latencies = sorted(r[0] for r in rows)

    def at(q: float) -> float:
        return latencies[min(len(latencies) - 1, round(q * (len(latencies) - 1)))]

    print(f"{len(rows)} fresh questions (offset {args.offset}): p50 "
          f"{statistics.median(latencies):.1f} ms, p90 {at(0.9):.1f}, p99 {at(0.99):.1f}, "
          f"max {latencies[-1]:.1f}")
    names = ["link_encode", "degrees", "neighbours", "other_queries", "path_texts", "qa_model",
             "type_check"]
    mean = sum(latencies) / len(latencies)
    shares = {n: total[n] / len(rows) for n in names}
    print("mean ms per question: " + ", ".join(f"{n} {v:.1f}" for n, v in shares.items())
          + f", rest {mean - sum(shares.values()):.1f} (total {mean:.1f})")
    for ms, question, spent in sorted(rows, key=lambda r: -r[0])[:args.slowest]:
        detail = ", ".join(f"{n} {spent[n]:.0f}" for n in names if spent.get(n))
        print(f"{ms:7.1f} ms  {detail}  | {question[:80]}")


if __name__ == "__main__":
    main()
