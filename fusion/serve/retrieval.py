"""Bounded retrieval and the beam search over relation paths.

From the linked topic entities the search expands one hop at a time, guided by the question:
for the frontier of each path prefix it first asks which (relation, direction) hops exist there
(degree counts, which Neo4j keeps per node and type), scores them with the model, and then reads
neighbours only for the hops that can still enter the ``beam`` — best first, per (node,
relation, direction) at most ``caps.per_type`` of them, strongest relationship first. So a hub
such as "United States" (4,200 relationships over 23 hops) costs one typed read of the hop the
question asks for, not a scan of all its relationships, and the graph is never read whole.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from neo4j import Driver, RoutingControl

from core.errors import InvalidInputError
from fusion.language.parse import PathHints
from fusion.language.verbalize import IN, OUT, STOP, Action
from fusion.model.graphdata import DomainGraph, entity_type
from fusion.queries import (
    ACTION_DEGREES_QUERY_TEMPLATE,
    COMMON_FRONTIER,
    COMMON_TARGETS_QUERY_TEMPLATE,
    COUNT_FRONTIER,
    COUNT_TARGETS_QUERY_TEMPLATE,
    DEGREE_IN_TEMPLATE,
    DEGREE_OUT_TEMPLATE,
    IN_PATTERN_TEMPLATE,
    NEIGHBOUR_BRANCH_TEMPLATE,
    NEIGHBOURS_QUERY_TEMPLATE,
    OUT_PATTERN_TEMPLATE,
    PATH_TO_QUERY_TEMPLATE,
    WIDE_ACTIONS_QUERY,
    WIDE_NEIGHBOURS_QUERY,
    WIDE_SCHEMA_TYPES,
    count_walk,
    path_pattern,
    set_walk,
)
from graph.driver import translate_errors
from graph.schema import quote_relation_type

MAX_HOPS = 3
# covariant (a RankedAnswer is immutable): answers with a PathResult may stand where answers
# with a PathResult or a still unread path are expected
P = TypeVar("P", covariant=True)
# log-probability taken off a path step that contradicts the question's parse (PathHints):
# large enough to decide between otherwise close paths, finite because a parse can be wrong
HINT_PENALTY = 6.0
# taken off a backward hop where the subject rules read the question forwards ("What does X
# produce?"; ``PathHints.forward_steps``): smaller, as those rules are a coarser reading; in
# the step priors the same rule is a bonus, which a fine-tuned head can outweigh
DIRECTION_PENALTY = 3.0
# What the nodes a hop reaches say about the types a question names for them (``type_penalty``).
# "the companies that X controls" says that what X controls is mostly companies, not that one
# company is among them (the question generator names each inner hop by the most common type
# it reaches, and people do as well): an inner hop whose reached nodes are mostly of another
# type pays this. Finance 3-hop questions in held-out wording, zero-shot: 0.773 without, 0.807
# with 3 or 6 nats (bench/RESULTS.md, round of 2026-12-06).
MAJORITY_PENALTY = 3.0
# The answer's type, named for the last hop, is the type of one entity the path reaches, so
# the path's probability of that name is the share of its reached entities with that type:
# the path pays -ANSWER_TYPE_WEIGHT * log(share), at most HINT_PENALTY (1.0: the likelihood
# itself; 0.5 kept less of the gain, 0.813 against 0.833 at 3 hops in the run above).
ANSWER_TYPE_WEIGHT = 1.0

def path_result(nodes: Sequence[str], steps: Sequence[Action], answer_type: str,
                logp: float) -> PathResult:
    """A ``PathResult`` for one known path ``nodes[0] -> ... -> nodes[-1]`` (its answer)."""
    back = [{nodes[k + 1]: (nodes[k], rel, direction)}
            for k, (rel, direction) in enumerate(steps)]
    return PathResult(nodes[0], tuple(steps), answer_type, logp, [nodes[-1]], back,
                      {nodes[-1]: 1})


@dataclass(frozen=True)
class ActionQueries:
    """The two retrieval queries for one allow-list of relationship types."""

    actions: tuple[Action, ...]  # hop actions, in the order of the degree list and branches
    degrees: str
    neighbours: str
    wide: bool = False  # the WIDE_* forms: types as parameters, hops read from relationships


def action_queries(relation_types: Iterable[str], wide: bool | None = None) -> ActionQueries:
    """Build the degree and neighbour queries for ``relation_types`` (the domain's schema:
    each type is checked and backtick-quoted by ``quote_relation_type``, never taken raw).
    ``wide`` (default: more than ``WIDE_SCHEMA_TYPES`` types): the forms whose cost does not
    grow with the number of types."""
    types = sorted(set(relation_types))
    if wide if wide is not None else len(types) > WIDE_SCHEMA_TYPES:
        for rel in types:
            quote_relation_type(rel)  # the same check of every name
        return ActionQueries(tuple((rel, d) for rel in types for d in (OUT, IN)),
                             WIDE_ACTIONS_QUERY, WIDE_NEIGHBOURS_QUERY, wide=True)
    actions: list[Action] = []
    degrees: list[str] = []
    branches: list[str] = []
    for rel in types:
        quoted = quote_relation_type(rel)
        for direction, degree, pattern in ((OUT, DEGREE_OUT_TEMPLATE, OUT_PATTERN_TEMPLATE),
                                           (IN, DEGREE_IN_TEMPLATE, IN_PATTERN_TEMPLATE)):
            branches.append(NEIGHBOUR_BRANCH_TEMPLATE.format(
                index=len(actions), pattern=pattern.format(rel=quoted)))
            degrees.append(degree.format(rel=quoted))
            actions.append((rel, direction))
    if not actions:  # a domain without relationships: nothing to read, no query to run
        return ActionQueries((), "", "")
    return ActionQueries(
        tuple(actions),
        ACTION_DEGREES_QUERY_TEMPLATE.format(degrees=", ".join(degrees)),
        NEIGHBOURS_QUERY_TEMPLATE.format(branches="\n  UNION ALL\n".join(branches)),
    )


Row = tuple[str, str, str]  # (relation type, direction, neighbour uid)


@dataclass(frozen=True)
class Caps:
    """Bounds of one retrieval: per (node, relation, direction), per frontier, per query."""

    per_type: int = 30
    frontier: int = 60
    rows: int = 4000
    beam: int = 8
    # a prefix more than this many nats below the best one is not expanded (its neighbours
    # would be read for a path that practically cannot win); None keeps the whole beam.
    # 8 nats read 69% fewer nodes on medical questions, 11% on finance, same Hits@1.
    margin: float | None = 8.0

    def check(self) -> None:
        if not (1 <= self.per_type <= 1000 and 1 <= self.frontier <= 1000
                and 1 <= self.rows <= 50_000 and 1 <= self.beam <= 256
                and (self.margin is None or self.margin > 0)):
            raise InvalidInputError("retrieval caps out of range")


Grouped = dict[str, dict[Action, list[str]]]  # uid -> (relation, direction) -> neighbours
Request = tuple[str, Action]  # (node uid, hop): "the neighbours of this node by this hop"


class Expander(Protocol):
    """What the beam search reads of a graph: the hops that exist at nodes, the capped
    neighbours for (node, hop) requests, and what it knows of each node."""

    def actions(self, uids: Sequence[str]) -> Mapping[str, Collection[Action]]: ...

    def neighbours(self, requests: Sequence[Request], caps: Caps) -> Grouped: ...

    def node(self, uid: str) -> NodeInfo: ...

    def paths_to(self, sources: Sequence[str], steps: Sequence[Action],
                 targets: Sequence[str]) -> dict[str, list[str]]: ...
    # target -> the nodes of one recorded path from a source to it by ``steps`` (uncapped)

    def common_targets(self, groups: Sequence[Sequence[str]], steps: Sequence[Action],
                       limit: int) -> list[str]: ...
    # the entities that every group of sources reaches by ``steps`` (uncapped)

    def count_targets(self, sources: Sequence[str], steps: Sequence[Action],
                      answer_type: str) -> tuple[int, bool]: ...
    # (how many entities of ``answer_type`` the sources reach by ``steps``, whether exact)


def cut_to_rows(requests: Sequence[Request], lists: Mapping[Request, list[str]],
                rows: int) -> Grouped:
    """``lists`` in request order, at most ``rows`` neighbours in all (the last list cut)."""
    out: Grouped = {}
    total = 0
    for uid, action in requests:
        room = rows - total
        if room <= 0:
            break
        targets = lists.get((uid, action), [])[:room]
        if targets:
            out.setdefault(uid, {})[action] = targets
            total += len(targets)
    return out


class Neo4jExpander:
    """Reads hops and neighbours from Neo4j with the queries of ``action_queries``; the answers
    are kept per node and per (node, hop) in bounded LRU caches.

    One expander serves every domain of a database; ``for_types`` gives the view of one domain
    (its allow-list of relationship types), which shares the caches."""

    def __init__(self, driver: Driver, database: str, cache_size: int = 50_000,
                 relation_types: Iterable[str] | None = None, wide: bool | None = None,
                 ) -> None:
        """``wide``: the query forms of ``action_queries`` (default: by the number of types)."""
        self.driver = driver
        self.database = database
        self.cache_size = cache_size
        self._shared = _ExpanderCaches()
        self._queries = action_queries(relation_types, wide) if relation_types is not None \
            else None

    @property
    def queries(self) -> int:
        """Round trips to Neo4j so far (all views together)."""
        return self._shared.queries

    def for_types(self, relation_types: Iterable[str]) -> Neo4jExpander:
        """A view of this expander restricted to ``relation_types`` (same caches)."""
        view = Neo4jExpander.__new__(Neo4jExpander)
        view.driver, view.database, view.cache_size = self.driver, self.database, self.cache_size
        view._shared = self._shared
        view._queries = action_queries(relation_types)
        return view

    def _query_set(self) -> ActionQueries:
        if self._queries is None:
            from graph.schema import live_relation_types

            self._queries = action_queries(live_relation_types(self.driver, self.database))
        return self._queries

    def clear(self) -> None:
        """Forget every cached hop and neighbour (all views): the graph has changed."""
        shared = self._shared
        with shared.lock:
            shared.actions.clear()
            shared.lists.clear()
            shared.partial.clear()
            shared.nodes.clear()
            shared.entity_types = None

    def remember(self, uid: str, name: str, etype: str) -> None:
        with self._shared.lock:
            self._shared.nodes[uid] = NodeInfo(name, etype)

    def node(self, uid: str) -> NodeInfo:
        return self._shared.nodes.get(uid, NodeInfo(uid, "Entity"))

    def actions(self, uids: Sequence[str]) -> dict[str, list[Action]]:
        """The hops with at least one relationship at each node (degree counts)."""
        queries = self._query_set()
        shared = self._shared
        out: dict[str, list[Action]] = {}
        missing: list[str] = []
        with shared.lock:
            for uid in dict.fromkeys(uids):
                key = (queries.actions, uid)
                if key in shared.actions:
                    shared.actions.move_to_end(key)
                    out[uid] = shared.actions[key]
                else:
                    missing.append(uid)
        if not missing:
            return out
        if not queries.actions:
            return {**out, **{uid: [] for uid in missing}}
        records = self._run(queries.degrees, {"uids": missing})
        with shared.lock:
            for r in records:
                if queries.wide:
                    present = {OUT: set(r["out_types"]), IN: set(r["in_types"])}
                    hops = [a for a in queries.actions if a[0] in present[a[1]]]
                else:
                    hops = [a for a, d in zip(queries.actions, r["degrees"], strict=True) if d]
                out[r["uid"]] = hops
                shared.actions[(queries.actions, r["uid"])] = hops
            while len(shared.actions) > self.cache_size:
                shared.actions.popitem(last=False)
        return out

    def neighbours(self, requests: Sequence[Request], caps: Caps) -> Grouped:
        """Capped neighbours for ``requests``, at most ``caps.rows`` in all counted in request
        order — the same answer whatever the cache holds, as one uncached query would give.
        Only uncached requests that can still fall within that bound are read from Neo4j."""
        requests = list(dict.fromkeys(requests))
        shared = self._shared
        known: dict[Request, list[str]] = {}
        missing: list[Request] = []
        within = 0  # neighbours of cached requests met so far; past caps.rows none is needed
        with shared.lock:
            for uid, action in requests:
                if within >= caps.rows:
                    break
                key = (uid, action, caps.per_type)
                if key in shared.lists:
                    shared.lists.move_to_end(key)
                    known[(uid, action)] = shared.lists[key]
                    within += len(known[(uid, action)])
                elif key in shared.partial and len(shared.partial[key]) >= caps.rows - within:
                    known[(uid, action)] = shared.partial[key]
                    within = caps.rows
                else:
                    missing.append((uid, action))
        if missing:
            known.update(self._fetch(missing, caps))
        return cut_to_rows(requests, known, caps.rows)

    def _run(self, query: str, params: dict[str, object]) -> list[Any]:
        with translate_errors():
            records, _, _ = self.driver.execute_query(
                query, params, database_=self.database, routing_=RoutingControl.READ)
        with self._shared.lock:
            self._shared.queries += 1
        return records

    def _fetch(self, missing: list[Request], caps: Caps) -> dict[Request, list[str]]:
        """One query for uncached requests; the complete answers are cached."""
        queries = self._query_set()
        index = {a: i for i, a in enumerate(queries.actions)}
        wanted = [(uid, action) for uid, action in missing if action in index]
        if not wanted:
            return {}
        records = self._run(queries.neighbours, {
            "requests": [{"uid": uid, "action": index[action], "type": action[0],
                          "out": action[1] == OUT} for uid, action in wanted],
            "per_type": caps.per_type, "limit": caps.rows})
        fetched: dict[Request, list[str]] = {req: [] for req in wanted}
        nodes: dict[str, NodeInfo] = {}
        for r in records:
            fetched[(r["src"], queries.actions[r["action"]])].append(r["dst"])
            nodes[r["dst"]] = NodeInfo(r["name"] or r["dst"], entity_type(r["labels"]))
        truncated = len(records) >= caps.rows
        # a truncated answer is complete only for the requests before its last one
        last = (records[-1]["src"], queries.actions[records[-1]["action"]]) \
            if truncated and records else None
        seen = {(r["src"], queries.actions[r["action"]]) for r in records}
        shared = self._shared
        with shared.lock:
            shared.nodes.update(nodes)
            if len(shared.nodes) > 4 * self.cache_size:
                shared.nodes.clear()
                shared.nodes.update(nodes)
            for req, targets in fetched.items():
                key = (req[0], req[1], caps.per_type)
                if not truncated or (req in seen and req != last):
                    shared.lists[key] = targets
                elif req == last:
                    shared.partial[key] = targets
            while len(shared.lists) > self.cache_size:
                shared.lists.popitem(last=False)
            while len(shared.partial) > self.cache_size // 10:
                shared.partial.popitem(last=False)
        return fetched

    def paths_to(self, sources: Sequence[str], steps: Sequence[Action],
                 targets: Sequence[str]) -> dict[str, list[str]]:
        """For each target that a source reaches by ``steps``: the nodes of one such path.
        Hops outside this view's allow-list reach nothing."""
        queries = self._query_set()
        if not steps or not sources or not targets or \
                any(step not in queries.actions for step in steps):
            return {}
        records = self._run(PATH_TO_QUERY_TEMPLATE.format(pattern=path_pattern(steps)), {
            "sources": list(sources), "targets": list(targets)})
        out: dict[str, list[str]] = {}
        with self._shared.lock:
            for r in records:
                out[r["target"]] = list(r["uids"])
                for uid, name, labels in zip(r["uids"], r["names"], r["labels"], strict=True):
                    self._shared.nodes.setdefault(uid, NodeInfo(name or uid, entity_type(labels)))
        return out

    def common_targets(self, groups: Sequence[Sequence[str]], steps: Sequence[Action],
                       limit: int) -> list[str]:
        """The entities (at most ``limit``) that every group of sources reaches by ``steps``.
        Hops outside this view's allow-list reach nothing."""
        queries = self._query_set()
        if not steps or not groups or any(not g for g in groups) or \
                any(step not in queries.actions for step in steps):
            return []
        records = self._run(COMMON_TARGETS_QUERY_TEMPLATE.format(walk=set_walk(steps)),
                            {"groups": [list(g) for g in groups], "frontier": COMMON_FRONTIER,
                             "limit": limit})
        with self._shared.lock:
            for r in records:
                self._shared.nodes.setdefault(r["uid"], NodeInfo(r["name"] or r["uid"],
                                                                 entity_type(r["labels"])))
        return [r["uid"] for r in records]

    def count_targets(self, sources: Sequence[str], steps: Sequence[Action],
                      answer_type: str) -> tuple[int, bool]:
        """How many entities of ``answer_type`` (a type of the graph) the sources reach by
        ``steps``, and whether that is exact (no hop's frontier went past
        ``COUNT_FRONTIER``). Hops outside this view's allow-list reach nothing."""
        queries = self._query_set()
        if not steps or not sources or any(step not in queries.actions for step in steps) or \
                answer_type not in self._entity_types():
            return 0, True
        records = self._run(COUNT_TARGETS_QUERY_TEMPLATE.format(
            walk=count_walk(steps, answer_type)),
            {"sources": list(sources), "frontier": COUNT_FRONTIER})
        if not records:
            return 0, True
        return int(records[0]["n"]), not records[0]["cut"]

    def _entity_types(self) -> set[str]:
        """The graph's entity type labels (the allow-list for a label in a query), read once
        per expander and its views until ``clear``."""
        shared = self._shared
        if shared.entity_types is None:
            from graph.schema import live_entity_types

            shared.entity_types = set(live_entity_types(self.driver, self.database))
        return shared.entity_types

    def expand(self, uids: Sequence[str], caps: Caps) -> dict[str, list[Row]]:
        """Every hop of ``uids`` with its capped neighbours, as rows (for inspection)."""
        available = self.actions(uids)
        grouped = self.neighbours([(u, a) for u in dict.fromkeys(uids)
                                   for a in available.get(u, [])], caps)
        return {uid: [(rel, direction, t) for (rel, direction), ts
                      in grouped.get(uid, {}).items() for t in ts]
                for uid in dict.fromkeys(uids)}


@dataclass
class _ExpanderCaches:
    """The caches that the views of one ``Neo4jExpander`` share."""

    actions: OrderedDict[tuple[tuple[Action, ...], str], list[Action]] = \
        field(default_factory=OrderedDict)
    # neighbours per (node, hop, per_type) when complete ...
    lists: OrderedDict[tuple[str, Action, int], list[str]] = field(default_factory=OrderedDict)
    # ... and the first ones of a request that a row cap cut short: enough for the same cut
    partial: OrderedDict[tuple[str, Action, int], list[str]] = field(default_factory=OrderedDict)
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    entity_types: set[str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    queries: int = 0


class MemoryExpander:
    """The same capped expansion over an in-memory ``DomainGraph`` (training, generation)."""

    def __init__(self, graph: DomainGraph) -> None:
        self.graph = graph

    def node(self, uid: str) -> NodeInfo:
        return NodeInfo(self.graph.names.get(uid, uid), self.graph.types.get(uid, "Entity"))

    def actions(self, uids: Sequence[str]) -> dict[str, list[Action]]:
        return {uid: sorted(self.graph.adj.get(uid, {})) for uid in uids}

    def neighbours(self, requests: Sequence[Request], caps: Caps) -> Grouped:
        requests = list(dict.fromkeys(requests))
        lists = {(uid, action): self.graph.adj.get(uid, {}).get(action, [])[:caps.per_type]
                 for uid, action in requests}
        return cut_to_rows(requests, lists, caps.rows)

    def paths_to(self, sources: Sequence[str], steps: Sequence[Action],
                 targets: Sequence[str]) -> dict[str, list[str]]:
        """As ``Neo4jExpander.paths_to``, over the whole (uncapped) adjacency."""
        if not steps:
            return {}
        back: list[dict[str, str]] = []
        frontier = set(sources)
        for step in steps:
            reached: dict[str, str] = {}
            for uid in sorted(frontier):
                for target in self.graph.adj.get(uid, {}).get(step, ()):
                    reached.setdefault(target, uid)
            back.append(reached)
            frontier = set(reached)
        out = {}
        for target in targets:
            if target in frontier:
                nodes = [target]
                for hop in range(len(steps) - 1, -1, -1):
                    nodes.append(back[hop][nodes[-1]])
                out[target] = nodes[::-1]
        return out

    def common_targets(self, groups: Sequence[Sequence[str]], steps: Sequence[Action],
                       limit: int) -> list[str]:
        """As ``Neo4jExpander.common_targets``, over the whole adjacency."""
        if not steps or not groups:
            return []
        common: set[str] | None = None
        for group in groups:
            reached = set(group)
            for step in steps:
                reached = self.graph.follow(reached, step)
            common = reached if common is None else common & reached
        return sorted(common or ())[:limit]

    def count_targets(self, sources: Sequence[str], steps: Sequence[Action],
                      answer_type: str) -> tuple[int, bool]:
        """As ``Neo4jExpander.count_targets``, over the whole adjacency (always exact)."""
        if not steps or not sources:
            return 0, True
        reached = set(sources)
        for step in steps:
            reached = self.graph.follow(reached, step)
        return sum(1 for uid in reached - set(sources)
                   if self.graph.types.get(uid) == answer_type), True

    def expand_grouped(self, uids: Sequence[str], caps: Caps) -> Grouped:
        """Every hop of ``uids`` with its capped neighbours."""
        available = self.actions(uids)
        return self.neighbours([(u, a) for u in uids for a in available[u]], caps)


@dataclass
class BeamItem:
    """A path prefix from a topic: its actions, log-probability and current frontier."""

    topic: str
    steps: tuple[Action, ...]
    logp: float
    frontier: list[str]
    back: list[dict[str, tuple[str, str, str]]] = field(default_factory=list)
    support: dict[str, int] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    # product of the probabilities of the predicted links on the way to a node (absent: 1,
    # only recorded links); see fusion.serve.linkpred
    weight: dict[str, float] = field(default_factory=dict)
    guessed: int = 0  # hops taken where no frontier node had a recorded link of that hop

    @property
    def recorded(self) -> list[str]:
        """The frontier nodes reached by recorded links only."""
        return [u for u in self.frontier if u not in self.weight] if self.weight \
            else self.frontier


class NodeInfo(NamedTuple):
    """What an expander knows of an entity beyond its uid: its name and its type (label)."""

    name: str
    type: str


class RankedAnswer(NamedTuple, Generic[P]):
    """An answer entity, the probability that the question's path reaches it, and the best
    path that does (its evidence)."""

    uid: str
    probability: float
    path: P


@dataclass
class PathResult:
    """A complete path (relation hops then the answer type) and the entities it reaches."""

    topic: str
    steps: tuple[Action, ...]
    answer_type: str
    logp: float
    answers: list[str]
    back: list[dict[str, tuple[str, str, str]]]
    support: dict[str, int]
    order: dict[str, int] = field(default_factory=dict)  # best position in a neighbour list
    weight: dict[str, float] = field(default_factory=dict)  # as BeamItem.weight
    guessed: int = 0  # as BeamItem.guessed

    @property
    def recorded_answers(self) -> list[str]:
        """The answers reached by recorded links only."""
        return [u for u in self.answers if u not in self.weight] if self.weight \
            else self.answers

    @property
    def hops(self) -> int:
        return len(self.steps)

    def recorded_nodes(self, predicted: Mapping[tuple[str, str, str], float]
                       ) -> list[set[str]]:
        """Per hop, the nodes this path reaches by recorded links only (``predicted``: the
        predicted links by stored triple). A node's back link is its best way in, so it is a
        recorded link from such a node whenever one reaches it."""
        out: list[set[str]] = []
        previous = {self.topic}
        for hop in self.back:
            previous = {u for u, (src, rel, direction) in hop.items() if src in previous
                        and stored_triple(src, (rel, direction), u) not in predicted}
            out.append(previous)
        return out

    def evidence(self, uid: str) -> list[tuple[str, str, str]]:
        """The (head, relation, tail) triples from the topic to ``uid`` along this path."""
        triples: list[tuple[str, str, str]] = []
        current = uid
        for hop in range(len(self.back) - 1, -1, -1):
            prev, rel, direction = self.back[hop][current]
            triples.append((prev, rel, current) if direction == "out" else (current, rel, prev))
            current = prev
        return triples[::-1]


# scorer(items, candidate actions per item) -> log-probabilities per item (same order)
Scorer = Callable[[list[BeamItem], list[list[Action]]], list[list[float]]]


def candidate_actions(item: BeamItem, available: Mapping[str, Collection[Action]] | None,
                      type_of: Callable[[str], str], whole_frontier: bool = False,
                      walks: bool = False) -> list[Action]:
    """What may follow a prefix: answer types of its frontier (after one hop) and the hops
    that exist at its frontier (``available``: hops per node, e.g. ``Expander.actions``).
    Only the nodes reached by recorded links count (unless ``whole_frontier``): predicted links
    add answers to a path, never candidates, so the model scores every path as it would
    without them."""
    actions: set[Action] = set()
    frontier = item.frontier if whole_frontier else item.recorded
    if item.steps:
        actions.update((type_of(u), STOP) for u in frontier if walks or u != item.topic)
    if available is not None:
        for uid in frontier:
            actions.update(available.get(uid, ()))
    return sorted(actions)


def _ancestors(item: BeamItem, uid: str) -> set[str]:
    """``uid`` and the nodes before it on its evidence path."""
    seen = {uid}
    current = uid
    for hop in range(len(item.back) - 1, -1, -1):
        current = item.back[hop][current][0]
        seen.add(current)
    return seen


def stored_triple(source: str, action: Action, target: str) -> tuple[str, str, str]:
    """The (head, relation, tail) relationship that the hop ``source -action-> target``
    follows."""
    rel, direction = action
    return (target, rel, source) if direction == IN else (source, rel, target)


def _advance_recorded(item: BeamItem, action: Action, logp: float, adjacency: Grouped,
                      caps: Caps, walks: bool = False) -> BeamItem:
    """``advance`` without predicted links: the same frontier, in a loop without their
    bookkeeping (it runs for every neighbour of every prefix of every question: the two-pass
    loop added 2 ms to a repeated /v1/ask)."""
    back: dict[str, tuple[str, str, str]] = {}
    support: dict[str, int] = {}
    order: dict[str, int] = {}
    rel, direction = action
    for uid in item.frontier:
        targets = adjacency.get(uid, {}).get(action)
        if not targets:
            continue
        on_path = set() if walks else _ancestors(item, uid)
        for position, target in enumerate(targets):  # strongest relationships first
            if target in on_path:
                continue  # evidence paths are simple: no node twice
            if target not in back:
                if len(back) >= caps.frontier:
                    continue
                back[target] = (uid, rel, direction)
            support[target] = support.get(target, 0) + 1
            order[target] = min(order.get(target, position), position)
    return BeamItem(item.topic, item.steps + (action,), logp, list(back),
                    item.back + [back], support, order)


def advance(item: BeamItem, action: Action, logp: float, adjacency: Grouped,
            caps: Caps, predicted: Mapping[tuple[str, str, str], float] | None = None,
            walks: bool = False) -> BeamItem:
    """The prefix extended by one hop; its frontier is capped at ``caps.frontier`` nodes.
    ``predicted``: the probabilities of adjacency entries that are predicted links (by stored
    triple); the recorded links of the frontier's recorded nodes come first, then the rest,
    and a node keeps the best product of link probabilities that reaches it. ``walks``: a
    node may come back on the path (``beam_search``)."""
    if not predicted and not item.weight:
        return _advance_recorded(item, action, logp, adjacency, caps, walks)
    back: dict[str, tuple[str, str, str]] = {}
    support: dict[str, int] = {}
    order: dict[str, int] = {}
    best: dict[str, float] = {}  # the best product of link probabilities reaching a node
    rel, direction = action
    # first the recorded links from the nodes recorded links reached (all there is without
    # predictions), then the rest: the same frontier as without them, then more
    for second_pass in ((False, True) if predicted or item.weight else (False,)):
        for uid in item.frontier:
            targets = adjacency.get(uid, {}).get(action)
            if not targets:
                continue
            on_path = set() if walks else _ancestors(item, uid)
            before = item.weight.get(uid, 1.0)
            for position, target in enumerate(targets):  # strongest relationships first
                link = predicted.get(stored_triple(uid, action, target)) if predicted else None
                if (link is not None or uid in item.weight) != second_pass:
                    continue
                if target in on_path:
                    continue  # evidence paths are simple: no node twice
                reach = before if link is None else before * link
                if target not in back:
                    if len(back) >= caps.frontier:
                        continue
                    back[target], best[target] = (uid, rel, direction), reach
                elif reach > best[target]:
                    back[target], best[target] = (uid, rel, direction), reach
                if link is None:
                    support[target] = support.get(target, 0) + 1
                    order[target] = min(order.get(target, position), position)
    weight = {uid: w for uid, w in best.items() if w < 1.0}
    return BeamItem(item.topic, item.steps + (action,), logp, list(back),
                    item.back + [back], support, order, weight)


def bound_penalty(hints: PathHints | None, item: BeamItem, action: Action) -> float:
    """The part of ``hint_penalty`` known before any neighbour is read: a stop at another hop
    count or on another answer type than the question names, or a hop beyond the named hops."""
    if hints is None or hints.hops is None:
        return 0.0
    step = len(item.steps)
    if action[1] == STOP:
        wrong = (step != hints.hops) + (hints.answer_type is not None
                                        and action[0] != hints.answer_type) + \
            bool(hints.answer_types and action[0] not in hints.answer_types)
        return HINT_PENALTY * wrong
    backward = DIRECTION_PENALTY if (action[1] == IN and step in hints.forward_steps) or (
        action[1] == OUT and step in hints.backward_steps) else 0.0
    return (HINT_PENALTY if step >= hints.hops else 0.0) + backward


def type_penalty(hints: PathHints | None, item: BeamItem, action: Action,
                 adjacency: Grouped, type_of: Callable[[str], str],
                 memo: dict[tuple[str, Action], set[str]] | None = None,
                 predicted: Mapping[tuple[str, str, str], float] | None = None) -> float:
    """The rest, from what the hop reaches by recorded links (``predicted`` ones do not count,
    as in ``candidate_actions``): ``HINT_PENALTY`` where no node has the type the question
    names for it; for an inner hop ``MAJORITY_PENALTY`` where another type is more common; for
    the last hop the log of the named type's share (``ANSWER_TYPE_WEIGHT``). ``memo``: the
    targets of each (node, hop) already read."""
    if hints is None or hints.hops is None or action[1] == STOP:
        return 0.0
    step = len(item.steps)
    expected = hints.hop_types[step] if step < len(hints.hop_types) else None
    if expected is None or step >= hints.hops:
        return 0.0
    memo = {} if memo is None else memo
    reached: set[str] = set()
    for uid in item.recorded:
        targets = memo.get((uid, action))
        if targets is None:
            listed = adjacency.get(uid, {}).get(action, ())
            targets = memo[(uid, action)] = {t for t in listed if not predicted or
                                             stored_triple(uid, action, t) not in predicted}
        reached |= targets
    counts = Counter(type_of(t) for t in reached)
    if not counts[expected]:
        return HINT_PENALTY
    if step == hints.hops - 1:
        share = counts[expected] / sum(counts.values())
        return min(HINT_PENALTY, -ANSWER_TYPE_WEIGHT * math.log(share))
    return 0.0 if counts[expected] >= max(counts.values()) else MAJORITY_PENALTY


def hint_penalty(hints: PathHints | None, item: BeamItem, action: Action,
                 adjacency: Grouped, type_of: Callable[[str], str]) -> float:
    """How much ``action`` after ``item`` contradicts the parse (``bound_penalty`` plus
    ``type_penalty``); penalties only lower a score."""
    return bound_penalty(hints, item, action) + type_penalty(hints, item, action, adjacency,
                                                             type_of)


Extension = tuple[float, BeamItem, Action]  # (log-probability, prefix, hop)


def _best_extensions(expander: Expander, pending: list[Extension], caps: Caps,
                     hints: PathHints | None, type_of: Callable[[str], str],
                     adjacency: Grouped, memo: dict[tuple[str, Action], set[str]],
                     predicted: Mapping[tuple[str, str, str], float] | None = None,
                     ) -> list[Extension]:
    """The ``caps.beam`` best hops (within ``caps.margin`` of the best) with their exact
    scores, reading neighbours lazily: ``pending`` holds upper bounds (``bound_penalty`` only),
    best first, and the type check of ``type_penalty`` can only lower them, so once the bound
    of the next pending hop falls below the beam's worst exact score, or below the margin under
    its best, no pending hop can enter. ``adjacency`` collects what was read: at most
    ``caps.rows`` neighbours over all batches (hops past the budget get none), and with
    ``predicted`` links as many again for the nodes only predicted links reach."""
    exact: list[Extension] = []
    budget = caps.rows
    spare = caps.rows  # for the nodes only predicted links reach
    side: Grouped = {}  # what was read for them, kept apart until the end (see below)
    i = 0
    while i < len(pending):
        bound = pending[i][0]
        if exact:
            scores = sorted((e[0] for e in exact), reverse=True)
            floor = scores[0] - caps.margin if caps.margin is not None else -math.inf
            if len(scores) >= caps.beam:
                floor = max(floor, scores[caps.beam - 1])
            if bound < floor:
                break
        j = i
        while j < len(pending) and j - i < caps.beam and (
                caps.margin is None or pending[j][0] >= bound - caps.margin):
            j += 1
        batch = pending[i:j]
        # with predicted links, the nodes that recorded links reach are read first and alone
        # count against ``caps.rows``, so they get the same neighbours as without predictions;
        # the nodes only predicted links reach are read after them, on a budget of their own
        wanted = [(u, action) for _, item, action in batch
                  for u in (item.frontier if predicted is None else item.recorded)
                  if action not in adjacency.get(u, {})]
        later = [] if predicted is None else [
            (u, action) for _, item, action in batch for u in item.frontier
            if u in item.weight and action not in adjacency.get(u, {})
            and action not in side.get(u, {})]
        for requests, into in ((wanted, adjacency), (later, side)):
            recorded = into is adjacency
            if not requests or (budget if recorded else spare) <= 0:
                continue
            rows = budget if recorded else spare
            for uid, by_action in expander.neighbours(requests, replace(caps, rows=rows)).items():
                into.setdefault(uid, {}).update(by_action)
                if recorded and predicted:  # the predicted links do not count
                    read = sum(1 for action, targets in by_action.items() for t in targets
                               if stored_triple(uid, action, t) not in predicted)
                else:
                    read = sum(len(targets) for targets in by_action.values())
                if recorded:
                    budget -= read
                else:
                    spare -= read
        for u, action in wanted:  # hops with no neighbour left (other domains, cut rows)
            adjacency.setdefault(u, {}).setdefault(action, [])
        for u, action in later:
            side.setdefault(u, {}).setdefault(action, [])
        for total, item, action in batch:
            exact.append((total - type_penalty(hints, item, action, adjacency, type_of, memo,
                                               predicted), item, action))
        i = j
    # a node that one prefix reaches by a predicted link may be one that another reaches by a
    # recorded one; read on the spare budget, its hop must not stand in for the recorded read
    for uid, by_action in side.items():
        for action, targets in by_action.items():
            adjacency.setdefault(uid, {}).setdefault(action, targets)
    exact.sort(key=lambda e: (-e[0], e[2]))
    if caps.margin is not None and exact:
        floor = exact[0][0] - caps.margin
        exact = [e for e in exact if e[0] >= floor]
    return exact[:caps.beam]


def beam_search(expander: Expander, scorer: Scorer, topics: Sequence[tuple[str, float]],
                max_hops: int, caps: Caps, min_hops: int = 1,
                hints: PathHints | None = None,
                predicted: Mapping[tuple[str, str, str], float] | None = None,
                guess_hops: Collection[Action] = (),
                walks: bool = False,
                ) -> list[PathResult]:
    """Best complete paths of 1..max_hops hops from the topics, best first; ``hints`` (the
    question's parse) penalise paths that contradict it. Per hop, the hops that exist at the
    frontier are scored first; neighbours are read only for those that can enter the beam.

    ``predicted``: the probabilities of the predicted links among the expander's neighbours
    (``fusion.serve.linkpred.PredictingExpander.predicted``, filled as it reads). They extend the
    paths that recorded links make and change no path's score. ``guess_hops``: the hops a
    link predictor can add anywhere; given, the search also takes those that no frontier
    node has recorded (counted in ``PathResult.guessed``), and predicted links count like
    recorded ones for candidates and type checks: the search for what recorded links
    cannot reach at all.

    ``walks``: paths may come back to a node they passed, and end on their topic ("the
    husband of X's wife" is X), as in a model trained on rows whose answers include their
    topic (``fusion.reasoner``); by default evidence paths are simple and never answer with
    their topic."""
    guessing = bool(guess_hops)
    if not 1 <= max_hops <= MAX_HOPS:
        raise InvalidInputError(f"max_hops must be between 1 and {MAX_HOPS}")
    caps.check()
    items = [BeamItem(uid, (), prior, [uid]) for uid, prior in topics]
    finals: list[PathResult] = []
    type_of = lambda uid: expander.node(uid).type  # noqa: E731
    memo: dict[tuple[str, Action], set[str]] = {}  # targets per (node, hop), for hints
    for hop in range(max_hops + 1):
        beyond = hints is not None and hints.hops is not None and hop > hints.hops
        if beyond and finals:
            # these prefixes already contradict the parse (one hop too many); a stop costs
            # them another penalty, so one that cannot beat the best path so far is dropped
            best = max(f.logp for f in finals)
            items = [item for item in items if item.logp - HINT_PENALTY > best]
        if not items:
            break
        available = None
        if hop < max_hops and not beyond:  # no hops read for paths the parse rules out
            available = expander.actions(list(dict.fromkeys(
                u for item in items for u in (item.frontier if guessing else item.recorded))))
        candidates = [candidate_actions(item, available, type_of, guessing, walks)
                      for item in items]
        extras: set[tuple[int, Action]] = set()  # (item, hop) taken without a recorded link
        if guessing and available is not None:
            for k, cands in enumerate(candidates):
                missing = sorted(set(guess_hops) - set(cands))
                extras.update((k, a) for a in missing)
                cands.extend(missing)
        if hop < min_hops:
            candidates = [[a for a in c if a[1] != STOP] for c in candidates]
        scores = scorer(items, candidates) if any(candidates) else [[] for _ in items]
        pending: list[Extension] = []
        guessed: dict[tuple[int, Action], int] = {}  # id(item), hop -> guessed of the result
        for k, (item, actions, logps) in enumerate(zip(items, candidates, scores, strict=True)):
            for action, lp in zip(actions, logps, strict=True):
                total = item.logp + lp - bound_penalty(hints, item, action)
                if action[1] == STOP:
                    answers = [u for u in item.frontier
                               if (walks or u != item.topic) and type_of(u) == action[0]]
                    finals.append(PathResult(item.topic, item.steps, action[0], total, answers,
                                             item.back, item.support, item.order,
                                             item.weight, item.guessed))
                elif available is not None and math.isfinite(total):
                    pending.append((total, item, action))
                    guessed[(id(item), action)] = item.guessed + ((k, action) in extras)
        if hints is not None and hints.hops is not None and hop >= hints.hops and finals:
            # a hop past the parse leads to prefixes that the next round drops unless they beat
            # the best path by a stop's penalty (see above): drop them before reading for them
            best = max(f.logp for f in finals)
            pending = [e for e in pending if e[0] - HINT_PENALTY > best]
        pending.sort(key=lambda e: (-e[0], e[2]))
        adjacency: Grouped = {}
        chosen = _best_extensions(expander, pending, caps, hints, type_of, adjacency, memo,
                                  None if guessing else predicted)
        items = [replace(advance(item, action, total, adjacency, caps, predicted, walks),
                         guessed=guessed[(id(item), action)]) for total, item, action in chosen]
        items = [item for item in items if item.frontier]
    finals.sort(key=lambda f: (-f.logp, f.hops, f.steps, f.answer_type))
    return finals


def keep_asked_type(finals: list[PathResult], hints: PathHints | None) -> list[PathResult]:
    """The paths that end on the type the question names ("Which genes ...", or one of
    ``PathHints.answer_types`` for "Who ..."), where any of them reaches an entity; otherwise
    all of them. The type penalty of the beam only lowers
    the other paths, and their entities came after the asked ones in the answers (phenotypes
    listed under "Which genes are associated with Marfan syndrome?" after FBN1)."""
    if hints is None or (hints.answer_type is None and not hints.answer_types):
        return finals
    asked = {hints.answer_type} if hints.answer_type is not None else hints.answer_types
    kept = [f for f in finals if f.answer_type in asked]
    return kept if any(f.answers for f in kept) else finals


def rank_answers(finals: Sequence[PathResult], expander: Expander,
                 limit: int) -> list[RankedAnswer[PathResult]]:
    """Entities by the probability that the question's path reaches them: the sum of the
    probabilities of the complete paths that do (capped at 1), with the best of those paths for
    the evidence. Summing rather than taking the best path is what the model's probabilities
    say when it is unsure which relation a word means: an entity that two readings both reach is
    likelier right than one reached only by the single best reading (README, QA quality).
    Ties go to more supporting links, then to the stronger relationship (its place in the
    count-ordered neighbour list: Elon Musk, seen controlling Tesla for 109 weeks, before someone
    seen once), then name. A path that reaches an entity through predicted links counts with
    its probability times theirs (``PathResult.weight``), and of those paths only the best one
    counts: link prediction favours well-connected entities, which many paths then reach by a
    predicted link each, and summing those would rank such hubs first."""
    total: dict[str, float] = {}
    predicted: dict[str, float] = {}
    best: dict[str, tuple[float, int, int, PathResult]] = {}
    for final in finals:
        path_prob = math.exp(final.logp)
        for uid in final.answers:
            link = final.weight.get(uid)
            prob = path_prob if link is None else path_prob * link
            if link is None:
                total[uid] = total.get(uid, 0.0) + prob
            else:
                total.setdefault(uid, 0.0)
                predicted[uid] = max(predicted.get(uid, 0.0), prob)
            support = final.support.get(uid, 1)
            position = final.order.get(uid, 0)
            if uid not in best or (prob, support, -position) > \
                    (best[uid][0], best[uid][1], -best[uid][2]):
                best[uid] = (prob, support, position, final)
    for uid, prob in predicted.items():
        total[uid] += prob
    ordered = sorted(best.items(), key=lambda kv: (-total[kv[0]], -kv[1][1], kv[1][2],
                                                   expander.node(kv[0]).name, kv[0]))
    return [RankedAnswer(uid, min(1.0, total[uid]), final)
            for uid, (_, _, _, final) in ordered[:limit]]
