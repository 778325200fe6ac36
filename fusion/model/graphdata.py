"""An in-memory copy of one domain's graph, for question generation and training only.

The ask pipeline never loads a whole graph; it expands bounded neighbourhoods from Neo4j
(``fusion.serve.retrieval.Neo4jExpander``). Training reads the domain once with two queries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from neo4j import Driver, RoutingControl

from core.errors import NotFoundError
from fusion.language.vocabulary import load_declared_phrasings
from fusion.queries import (
    DOMAIN_EDGES_QUERY,
    DOMAIN_ENTITIES_QUERY,
)
from graph.driver import translate_errors
from graph.schema import ENTITY_LABEL, INTERNAL_LABEL_PREFIX


def entity_type(labels: list[str]) -> str:
    """The one type label of an entity (first non-internal label besides Entity)."""
    types = sorted(x for x in labels
                   if x != ENTITY_LABEL and not x.startswith(INTERNAL_LABEL_PREFIX))
    return types[0] if types else ENTITY_LABEL


@dataclass
class DomainGraph:
    """Entities and adjacency of one domain: ``adj[uid][(rel, dir)] -> [neighbour uids]``,
    each list strongest relationship first (its ``count``, else 1), then by uid: the order of
    ``fusion.serve.retrieval.NEIGHBOURS_QUERY_TEMPLATE``, so capped expansions agree."""

    domain: str
    names: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    adj: dict[str, dict[tuple[str, str], list[str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, driver: Driver, database: str, domain: str) -> DomainGraph:
        graph = cls(domain)
        with translate_errors():
            records, _, _ = driver.execute_query(
                DOMAIN_ENTITIES_QUERY, {"domain": domain}, database_=database,
                routing_=RoutingControl.READ,
            )
        if not records:
            raise NotFoundError(f"unknown domain {domain!r}")
        for r in records:
            graph.names[r["uid"]] = r["name"] or r["uid"]
            graph.aliases[r["uid"]] = list(r["aliases"])
            graph.types[r["uid"]] = entity_type(r["labels"])
        with translate_errors():
            records, _, _ = driver.execute_query(
                DOMAIN_EDGES_QUERY, {"domain": domain}, database_=database,
                routing_=RoutingControl.READ,
            )
        adj: dict[str, dict[tuple[str, str], list[tuple[float, str]]]] = \
            defaultdict(lambda: defaultdict(list))
        for r in records:
            weight = -float(r["weight"])
            adj[r["source"]][(r["type"], "out")].append((weight, r["target"]))
            adj[r["target"]][(r["type"], "in")].append((weight, r["source"]))
        graph.adj = {uid: {k: [u for _, u in sorted(v)] for k, v in rels.items()}
                     for uid, rels in adj.items()}
        # the questions generated from it use the phrasings the domain declares
        load_declared_phrasings(driver, database, domain)
        return graph

    def relation_types(self) -> list[str]:
        return sorted({rel for rels in self.adj.values() for rel, _ in rels})

    def entity_types(self) -> list[str]:
        return sorted(set(self.types.values()))

    def follow(self, uids: set[str], step: tuple[str, str]) -> set[str]:
        """All nodes reached from ``uids`` by one (relation, direction) hop."""
        out: set[str] = set()
        for uid in uids:
            out.update(self.adj.get(uid, {}).get(step, ()))
        return out

    def answers(self, topics: set[str], steps: list[tuple[str, str]], answer_type: str,
                cap: int = 100_000) -> set[str]:
        """Entities of ``answer_type`` reached from ``topics`` by ``steps`` (topics excluded)."""
        current = set(topics)
        for step in steps:
            current = self.follow(current, step)
            if len(current) > cap:
                return current
        return {u for u in current if self.types.get(u) == answer_type} - set(topics)
