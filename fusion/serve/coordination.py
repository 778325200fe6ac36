"""Coordinated topics: "Which diseases present both arachnodactyly and ectopia lentis?"

A question may name several entities, joined by "and" or "or" (and commas), in the one slot
of the topic. Each of them is asked the same relation path: the model reads one masked question
("Which diseases present [MASK]?") and the search runs from each entity in turn. The answers
then combine by the operator:

- "and" (``all``): the entities that every topic reaches by the same relation path come
  first, then those that all but one reach, and so on: for a differential diagnosis, a
  disease that explains four of five phenotypes is still worth listing, after those that
  explain all five. Within a coverage count, by the mean of the per-topic probabilities (a
  topic that does not reach it adds 0).
- "or" (``any``): every entity that some topic reaches, by the probability that at least one
  of the topics' paths does (noisy-or).

With several hops the combination is over the answers ("genes of the diseases that present X
and Y": the genes that both X's and Y's diseases have), not over each intermediate hop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Literal, NamedTuple, TypeVar

from fusion.language.linking import Mention

Operator = Literal["all", "any"]
T = TypeVar("T")

# the text between two coordinated mentions: "and", "or", ", ", ", and", "as well as", "&"
SEPARATOR_RE = re.compile(r"\s*(?:,\s*(?:and|or)?|and|or|as well as|&|plus)\s*", re.IGNORECASE)
# a word before the first mention that belongs to the coordination ("both X and Y")
LEADER_RE = re.compile(r"\b(?:both|either|all of|any of|each of)\s+$", re.IGNORECASE)
MAX_TOPICS = 5


@dataclass(frozen=True)
class Coordination:
    """Mentions joined in the topic slot, in question order, each with the candidates of the
    types they share only; ``start:end`` is the span they take, with a leading "both" or
    "either" (masked as one topic)."""

    mentions: tuple[Mention, ...]
    operator: Operator
    start: int
    end: int


def _types(mention: Mention) -> set[str]:
    return {c.type for c in mention.candidates}


def coordinate(question: str, mentions: Sequence[Mention]) -> Coordination | None:
    """The coordination around the primary mention (``mentions[0]``), or None when it stands
    alone. Mentions join when only a separator lies between them and they share a candidate
    type; at least one separator must be a word ("X, Y" alone is no coordination: "FBN1, the
    gene" is one topic)."""
    if len(mentions) < 2:
        return None
    primary = mentions[0]
    ordered = sorted(mentions, key=lambda m: m.start)
    at = ordered.index(primary)
    chain = [primary]
    separators: list[str] = []
    shared = _types(primary)
    for step in (1, -1):  # right of the primary, then left of it
        i = at + step
        while 0 <= i < len(ordered) and len(chain) < MAX_TOPICS:
            other = ordered[i]
            left, right = (chain[-1], other) if step == 1 else (other, chain[0])
            gap = question[left.end:right.start]
            if right.start < left.end or not SEPARATOR_RE.fullmatch(gap) \
                    or not shared & _types(other):
                break
            shared &= _types(other)
            separators.append(gap.strip().lower())
            if step == 1:
                chain.append(other)
            else:
                chain.insert(0, other)
            i += step
    if len(chain) < 2 or all(s == "," for s in separators):
        return None
    start = chain[0].start
    leader = LEADER_RE.search(question, 0, start)
    if leader is not None:
        start = leader.start()
    operator: Operator = "any" if any(re.search(r"\bor\b", s) for s in separators) or (
        leader is not None and leader.group().split()[0].lower() in ("either", "any")) else "all"
    # "ALS and redundant neck skin": the phenotype ALS, not the disease of that name
    chain = [replace(m, candidates=[c for c in m.candidates if c.type in shared])
             for m in chain]
    return Coordination(tuple(chain), operator, start, chain[-1].end)


class Reach(NamedTuple, Generic[T]):
    """One topic (its index into the coordination's mentions) that reaches an answer, with its
    probability and best path."""

    topic: int
    probability: float
    path: T


@dataclass
class Combined(Generic[T]):
    """One answer of a coordinated question: its score, and for each topic that reaches it
    (index into the coordination's mentions) that topic's probability and best path."""

    uid: str
    score: float
    reached: list[Reach[T]]


def combine(ranked: Sequence[Sequence[tuple[str, float, T]]], operator: Operator,
            limit: int, reading: Callable[[T], Hashable] | None = None) -> list[Combined[T]]:
    """``ranked[i]``: topic i's answers ``(uid, probability, path)``, best first. The combined
    answers, best first (see the module docstring); ties keep the order of the first topic
    that lists them.

    For ``all`` with ``reading`` (the relation path a ``path`` follows), topic i's list holds
    one entry per (answer, reading) and an answer counts as reached by several topics only
    through the *same* reading: "diseases with X and Y" asks one relation of both, and in a
    dense graph an entity that X reaches by one relation and Y by another would otherwise
    pass for shared. Its coverage is then its best reading's, and its score the sum over its
    readings of that coverage of the mean per-topic probability (the probability that the
    question's path is one of them)."""
    first_seen: dict[str, tuple[int, int]] = {}
    count = max(1, len(ranked))
    out = []
    if operator == "all" and reading is not None:
        cells: dict[str, dict[Hashable, dict[int, tuple[float, T]]]] = {}
        for topic, answers in enumerate(ranked):
            for position, (uid, prob, path) in enumerate(answers):
                first_seen.setdefault(uid, (topic, position))
                cell = cells.setdefault(uid, {}).setdefault(reading(path), {})
                if topic not in cell or prob > cell[topic][0]:
                    cell[topic] = (prob, path)
        for uid, by_reading in cells.items():
            coverage = max(len(cell) for cell in by_reading.values())
            best = [cell for cell in by_reading.values() if len(cell) == coverage]
            mass = [sum(p for p, _ in cell.values()) for cell in best]
            top = best[max(range(len(best)), key=lambda i: mass[i])]
            out.append(Combined(uid, min(1.0, sum(mass) / count),
                                [Reach(t, p, path) for t, (p, path) in sorted(top.items())]))
    else:
        reached: dict[str, list[Reach[T]]] = {}
        for topic, answers in enumerate(ranked):
            for position, (uid, prob, path) in enumerate(answers):
                reached.setdefault(uid, []).append(Reach(topic, prob, path))
                first_seen.setdefault(uid, (topic, position))
        for uid, hits in reached.items():
            if operator == "all":
                score = sum(p for _, p, _ in hits) / count
            else:
                miss = 1.0
                for _, p, _ in hits:
                    miss *= 1.0 - min(1.0, p)
                score = 1.0 - miss
            out.append(Combined(uid, score, hits))
    if operator == "all":
        out.sort(key=lambda c: (-len(c.reached), -c.score, first_seen[c.uid]))
    else:
        out.sort(key=lambda c: (-c.score, first_seen[c.uid]))
    return out[:limit]
