"""Which relation paths reach a labelled row's answers, and which rows cannot be used.

A row gives a question, its answers and maybe its topic entities; the path is not given (or
not trusted: a user's gold paths may not exist). Every path of 1..``max_hops`` hops that exists
from the topic is followed on the in-memory graph, as sets of entities; a path that reaches
some answers is a candidate, weighted by the overlap (Jaccard) of what it reaches with the
answers. Training maximises the model's probability of the candidates (``fusion.reasoner.learn``),
so the hop count and the relations are learnt, never read from the wording by rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fusion.language.verbalize import Action
from fusion.model.graphdata import DomainGraph

REASON_TOPIC = "topic not found"
REASON_ANSWER = "answer not found"
REASON_PATH = "no path within max_hops"
REASON_EMPTY = "empty question"
EXAMPLES_PER_REASON = 5


@dataclass(frozen=True)
class Reached:
    """A relation path from a topic and the entities of one type it ends on."""

    steps: tuple[Action, ...]
    answer_type: str
    entities: frozenset[str]


@dataclass(frozen=True)
class Candidate:
    """A path that reaches some answers: its hops, answer type and overlap weight (0, 1]."""

    steps: tuple[Action, ...]
    answer_type: str
    weight: float


class LinkedRow(NamedTuple):
    """A row's topic candidates (uids) and its question with the topic masked."""

    topics: list[str]
    masked: str


@dataclass(frozen=True)
class TopicPaths:
    """One topic candidate of a row and the paths from it that reach the row's answers."""

    topic: str
    paths: list[Candidate]


@dataclass
class Example:
    """A usable row: the question with its topic masked, and the candidate paths."""

    line: int
    question: str
    masked: str
    topic: str
    answers: frozenset[str]
    candidates: list[Candidate]


@dataclass
class Unusable:
    line: int
    question: str
    reason: str


@dataclass
class RowReport:
    """What became of the rows: how many were used, and the others by reason with examples."""

    rows: int = 0
    used: int = 0
    unusable: list[Unusable] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts = Counter(u.reason for u in self.unusable)
        examples: dict[str, list[dict[str, Any]]] = {}
        for u in self.unusable:
            listed = examples.setdefault(u.reason, [])
            if len(listed) < EXAMPLES_PER_REASON:
                listed.append({"line": u.line, "question": u.question})
        return {"rows": self.rows, "used": self.used, "skipped": len(self.unusable),
                "skipped_by_reason": dict(counts), "skipped_examples": examples}


# A domain's questions may come back to their topic ("the husband of X's wife" is X): when at
# least this share of the usable rows lists its own topic among its answers, the model is
# trained, and served, with paths that may end on their topic (``keeps_topic``).
TOPIC_ANSWER_SHARE = 0.01


def walk(graph: DomainGraph, topic: str, max_hops: int, frontier_cap: int,
         keep_topic: bool = False) -> Iterator[Reached]:
    """Every relation path of 1..max_hops hops from ``topic`` that reaches something, with
    what it reaches per answer type (the topic itself only with ``keep_topic``). A path whose
    frontier grows past ``frontier_cap`` nodes is followed no further (a hub)."""
    stack: list[tuple[tuple[Action, ...], frozenset[str]]] = [((), frozenset([topic]))]
    while stack:
        steps, frontier = stack.pop()
        actions = sorted({a for u in frontier for a in graph.adj.get(u, {})})
        for action in actions:
            reached = frozenset(graph.follow(set(frontier), action))
            if not reached:
                continue
            path = steps + (action,)
            by_type: dict[str, set[str]] = {}
            for uid in reached:
                if keep_topic or uid != topic:
                    by_type.setdefault(graph.types.get(uid, "Entity"), set()).add(uid)
            for answer_type, entities in sorted(by_type.items()):
                yield Reached(path, answer_type, frozenset(entities))
            if len(path) < max_hops and len(reached) <= frontier_cap:
                stack.append((path, reached))


def candidates(graph: DomainGraph, topic: str, answers: frozenset[str], max_hops: int,
               frontier_cap: int, limit: int, keep_topic: bool = False) -> list[Candidate]:
    """The paths from ``topic`` that reach some of ``answers``, best overlap first, then
    shorter, at most ``limit``."""
    found = []
    for reached in walk(graph, topic, max_hops, frontier_cap, keep_topic):
        hit = len(reached.entities & answers)
        if hit:
            weight = hit / len(reached.entities | answers)
            found.append(Candidate(reached.steps, reached.answer_type, weight))
    found.sort(key=lambda c: (-c.weight, len(c.steps), c.steps, c.answer_type))
    return found[:limit]


def keeps_topic(linked: Sequence[tuple[Sequence[str], frozenset[str]]]) -> bool:
    """Whether at least ``TOPIC_ANSWER_SHARE`` of the rows (their topic candidates, their
    answers) list a topic among their answers."""
    if not linked:
        return False
    share = sum(bool(set(topics) & answers) for topics, answers in linked) / len(linked)
    return share >= TOPIC_ANSWER_SHARE


def build_examples(rows: Sequence[dict[str, Any]], graph: DomainGraph,
                   link: Callable[[dict[str, Any]], LinkedRow | None],
                   max_hops: int, frontier_cap: int, limit: int,
                   keep_topic: bool | None = None) -> tuple[list[Example], RowReport, bool]:
    """Usable examples, the report of the rest, and whether paths may end on their topic
    (``keeps_topic`` of the rows unless ``keep_topic`` is given).

    ``link(row) -> LinkedRow | None`` finds the topic (a row's
    ``topic_entities`` or the question's best linked mention); the answers are
    ``row['_answers']`` (uids, resolved by the caller)."""
    report = RowReport(rows=len(rows))
    examples: list[Example] = []
    linked_rows = [(row, link(row) if str(row.get("question", "")).strip() else None)
                   for row in rows]
    if keep_topic is None:
        keep_topic = keeps_topic([(found.topics, frozenset(row.get("_answers") or ()))
                                  for row, found in linked_rows if found])
    for i, (row, linked) in enumerate(linked_rows):
        line = int(row.get("_line", i + 1))
        question = str(row.get("question", "")).strip()
        if not question:
            report.unusable.append(Unusable(line, question, REASON_EMPTY))
            continue
        answers = frozenset(row.get("_answers") or ())
        if not linked:
            report.unusable.append(Unusable(line, question, REASON_TOPIC))
            continue
        if not answers:
            report.unusable.append(Unusable(line, question, REASON_ANSWER))
            continue
        topics, masked = linked
        best: TopicPaths | None = None
        for topic in topics[:3]:
            found = candidates(graph, topic, answers, max_hops, frontier_cap, limit,
                               keep_topic)
            if found and (best is None or found[0].weight > best.paths[0].weight):
                best = TopicPaths(topic, found)
        if best is None:
            report.unusable.append(Unusable(line, question, REASON_PATH))
            continue
        examples.append(Example(line, question, masked, best.topic, answers, best.paths))
    report.used = len(examples)
    return examples, report, keep_topic
