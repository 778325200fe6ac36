"""Knowledge-graph tensors: ``KGData`` and its streamed export from Neo4j.

The export pages over entities by ``uid`` (keyset pagination on the unique-constraint index,
never ``SKIP``) and, for each page of source entities, reads their outgoing relationships; no
query returns more than one page of nodes and their edges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from neo4j import Driver, RoutingControl
from torch import Tensor

from core.errors import InvalidInputError, NotFoundError
from graph.driver import translate_errors

EXPORT_NODES_QUERY = """
MATCH (n:Entity)
WHERE n.domain IN $domains AND ($after IS NULL OR n.uid > $after)
WITH n ORDER BY n.uid ASC LIMIT $limit
RETURN n.uid AS uid, n.domain AS domain,
       [label IN labels(n) WHERE label <> 'Entity' AND NOT label STARTS WITH '_'] AS types
"""

# Edges of one page of heads, in a fixed order: a head's relationships came back in an order
# that differed between page sizes (seen once in CI), so the same graph exported to another
# edge_index and training was not reproducible.
EXPORT_EDGES_QUERY = """
MATCH (a:Entity)
WHERE a.domain IN $domains AND ($after IS NULL OR a.uid > $after)
WITH a ORDER BY a.uid ASC LIMIT $limit
MATCH (a)-[r]->(b:Entity)
WHERE b.domain IN $domains AND NOT type(r) STARTS WITH '_'
RETURN a.uid AS head, type(r) AS rel, b.uid AS tail
ORDER BY head, rel, tail
"""

EXPORT_PAGE_END_QUERY = """
MATCH (a:Entity)
WHERE a.domain IN $domains AND ($after IS NULL OR a.uid > $after)
WITH a ORDER BY a.uid ASC LIMIT $limit
RETURN max(a.uid) AS last, count(a) AS count
"""


@dataclass
class KGData:
    """A knowledge graph as index tensors.

    ``edge_index: [2, E]`` holds (head, tail) node indices into ``uids``; ``edge_type: [E]``
    indexes ``relation_types``. ``entity_types[i]`` is the first type label of node ``i``.
    """

    uids: list[str]
    relation_types: list[str]
    edge_index: Tensor
    edge_type: Tensor
    entity_types: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        return len(self.uids)

    @property
    def num_relations(self) -> int:
        return len(self.relation_types)

    @property
    def num_edges(self) -> int:
        return int(self.edge_type.numel())

    def triples(self) -> Tensor:
        """``[E, 3]`` (head, relation, tail) rows."""
        return torch.stack([self.edge_index[0], self.edge_type, self.edge_index[1]], dim=1)

    @classmethod
    def from_triples(
        cls, triples: Sequence[tuple[str, str, str]], uids: Sequence[str] | None = None,
        relation_types: Sequence[str] | None = None,
    ) -> KGData:
        """Build from (head, relation, tail) label triples (benchmarks, tests)."""
        uid_list = list(uids) if uids is not None else sorted(
            {h for h, _, _ in triples} | {t for _, _, t in triples})
        rel_list = list(relation_types) if relation_types is not None else sorted(
            {r for _, r, _ in triples})
        uid_index = {u: i for i, u in enumerate(uid_list)}
        rel_index = {r: i for i, r in enumerate(rel_list)}
        heads = [uid_index[h] for h, _, _ in triples]
        tails = [uid_index[t] for _, _, t in triples]
        rels = [rel_index[r] for _, r, _ in triples]
        return cls(
            uids=uid_list, relation_types=rel_list,
            edge_index=torch.tensor([heads, tails], dtype=torch.long).reshape(2, -1),
            edge_type=torch.tensor(rels, dtype=torch.long),
        )

    @property
    def uid_to_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.uids)}


def export_domains(
    driver: Driver, database: str, domains: list[str], batch_size: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
) -> KGData:
    """Read the entities and relationships of ``domains`` into a ``KGData``, page by page.

    Relationships whose other end lies outside ``domains`` and internal ``_``-types are left
    out. Raises ``NotFoundError`` when a domain has no entities. ``progress(nodes, edges)`` is
    called after every page.
    """
    if not domains:
        raise InvalidInputError("export needs at least one domain")
    if batch_size < 1:
        raise InvalidInputError("batch_size must be positive")
    uids: list[str] = []
    entity_types: list[str] = []
    per_domain: dict[str, int] = {d: 0 for d in domains}
    after: str | None = None
    with translate_errors():
        while True:
            records, _, _ = driver.execute_query(
                EXPORT_NODES_QUERY, {"domains": domains, "after": after, "limit": batch_size},
                database_=database, routing_=RoutingControl.READ,
            )
            if not records:
                break
            for record in records:
                uids.append(record["uid"])
                types = sorted(record["types"])
                entity_types.append(types[0] if types else "")
                per_domain[record["domain"]] = per_domain.get(record["domain"], 0) + 1
            after = records[-1]["uid"]
            if progress:
                progress(len(uids), 0)
            if len(records) < batch_size:
                break
    missing = [d for d in domains if not per_domain.get(d)]
    if missing:
        raise NotFoundError(f"unknown domain(s) {', '.join(map(repr, missing))}: no entities")

    uid_index = {u: i for i, u in enumerate(uids)}
    rel_index: dict[str, int] = {}
    heads: list[int] = []
    tails: list[int] = []
    rels: list[int] = []
    after = None
    with translate_errors():
        while True:
            params = {"domains": domains, "after": after, "limit": batch_size}
            end, _, _ = driver.execute_query(
                EXPORT_PAGE_END_QUERY, params, database_=database, routing_=RoutingControl.READ,
            )
            if not end or end[0]["count"] == 0:
                break
            records, _, _ = driver.execute_query(
                EXPORT_EDGES_QUERY, params, database_=database, routing_=RoutingControl.READ,
            )
            for record in records:
                head, tail = uid_index.get(record["head"]), uid_index.get(record["tail"])
                if head is None or tail is None:  # written concurrently with the export
                    continue
                rel = rel_index.setdefault(record["rel"], len(rel_index))
                heads.append(head)
                tails.append(tail)
                rels.append(rel)
            after = end[0]["last"]
            if progress:
                progress(len(uids), len(heads))
            if end[0]["count"] < batch_size:
                break
    # Relation ids in sorted name order, so two exports of one graph agree.
    names = sorted(rel_index)
    remap = torch.tensor([names.index(n) for n in rel_index], dtype=torch.long)
    edge_type = torch.tensor(rels, dtype=torch.long)
    if edge_type.numel():
        edge_type = remap[edge_type]
    return KGData(
        uids=uids, relation_types=names,
        edge_index=torch.tensor([heads, tails], dtype=torch.long).reshape(2, -1),
        edge_type=edge_type, entity_types=entity_types, domains=list(domains),
    )
