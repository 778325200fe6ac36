"""GraphStore: the read operations over the one node model, shared by the API, CLI and models.

Every query is a named constant; values are parameters; labels and relationship types that come
from a caller are checked against the live schema first (``graph.schema.check_allowed``) and
then passed as parameters (``type(r) IN $types``), never spliced into the text.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence, Set
from typing import Any, Literal

from neo4j import Driver, RoutingControl
from neo4j.graph import Node, Relationship

from core.errors import InvalidInputError, NotFoundError
from graph.driver import translate_errors
from graph.models import (
    DomainSummary,
    Entity,
    EntityHit,
    EntityPage,
    GraphPath,
    Neighbor,
    Relation,
    SchemaSummary,
    Subgraph,
)
from graph.schema import ENTITY_LABEL, check_allowed, live_entity_types, live_relation_types

Direction = Literal["out", "in", "both"]

MAX_PATH_HOPS = 4
MAX_PATHS = 50
MAX_SUBGRAPH_HOPS = 3
# Properties never sent to clients: embedding vectors are large and served by their own API.
HIDDEN_PROPERTY_PREFIXES = ("embedding", "_")
CORE_PROPERTIES = {"uid", "name", "domain", "aliases", "description"}

# Every read starts with the tags of the migrations still running (a ``_MigrationAttempt``,
# removed in the transaction that records the migration as applied) and leaves out what they
# wrote: the loader commits batch by batch, and a reader must see a domain whole or not at all
# (a run that died leaves its attempt until ``kgr migrate`` rolls it back: absent till then).
PENDING_PREFIX = """
CALL () { OPTIONAL MATCH (a:_MigrationAttempt) RETURN collect(a.tag) AS pending }
"""

SEARCH_ENTITIES_QUERY = PENDING_PREFIX + """
CALL db.index.fulltext.queryNodes('entity_fulltext', $lucene) YIELD node, score
WHERE ($types IS NULL OR any(label IN labels(node) WHERE label IN $types))
  AND ($domain IS NULL OR node.domain = $domain)
  AND ($domains IS NULL OR node.domain IN $domains)
  AND NOT coalesce(node._mig, '') IN pending
RETURN node, score
ORDER BY score DESC, node.uid ASC
SKIP $offset LIMIT $limit
"""

LIST_ENTITIES_QUERY = PENDING_PREFIX + """
MATCH (node:Entity)
WHERE ($domain IS NULL OR node.domain = $domain)
  AND NOT coalesce(node._mig, '') IN pending
  AND ($domains IS NULL OR node.domain IN $domains)
  AND ($types IS NULL OR any(label IN labels(node) WHERE label IN $types))
  AND ($after IS NULL OR node.uid > $after)
RETURN node, null AS score
ORDER BY node.uid ASC
LIMIT $limit
"""

GET_ENTITY_QUERY = PENDING_PREFIX + """
MATCH (node:Entity {uid: $uid}) WHERE NOT coalesce(node._mig, '') IN pending
RETURN node
"""

# The entity and the properties its domain declares sensitive, in one round trip (a key
# without the sensitive scope would otherwise need a second read per request).
GET_ENTITY_POLICY_QUERY = PENDING_PREFIX + """
MATCH (node:Entity {uid: $uid}) WHERE NOT coalesce(node._mig, '') IN pending
RETURN node, COLLECT {
  MATCH (p:_DomainPolicy {domain: node.domain})
  UNWIND coalesce(p.sensitive, []) AS property
  RETURN DISTINCT property
} AS sensitive
"""

GET_ENTITIES_QUERY = PENDING_PREFIX + """
UNWIND $uids AS uid
MATCH (node:Entity {uid: uid}) WHERE NOT coalesce(node._mig, '') IN pending
RETURN node
"""

NEIGHBORS_OUT_QUERY = PENDING_PREFIX + """
MATCH (n:Entity {uid: $uid})-[r]->(m:Entity)
WHERE ($types IS NULL OR type(r) IN $types)
  AND ($domains IS NULL OR m.domain IN $domains)
  AND NOT coalesce(m._mig, '') IN pending AND NOT coalesce(r._mig, '') IN pending
// the order and limit first: the policy subquery then runs for the returned rows only
WITH n, r, m ORDER BY coalesce(r.count, 1) DESC, type(r), m.uid LIMIT $limit
RETURN type(r) AS rel_type, properties(r) AS rel_props,
       startNode(r).uid AS rel_source, endNode(r).uid AS rel_target, m, 'out' AS direction,
       COLLECT { MATCH (p:_DomainPolicy {domain: m.domain})
                 UNWIND coalesce(p.sensitive, []) AS property
                 RETURN DISTINCT property } AS sensitive
ORDER BY coalesce(r.count, 1) DESC, rel_type, m.uid
"""

NEIGHBORS_IN_QUERY = PENDING_PREFIX + """
MATCH (n:Entity {uid: $uid})<-[r]-(m:Entity)
WHERE ($types IS NULL OR type(r) IN $types)
  AND ($domains IS NULL OR m.domain IN $domains)
  AND NOT coalesce(m._mig, '') IN pending AND NOT coalesce(r._mig, '') IN pending
// the order and limit first: the policy subquery then runs for the returned rows only
WITH n, r, m ORDER BY coalesce(r.count, 1) DESC, type(r), m.uid LIMIT $limit
RETURN type(r) AS rel_type, properties(r) AS rel_props,
       startNode(r).uid AS rel_source, endNode(r).uid AS rel_target, m, 'in' AS direction,
       COLLECT { MATCH (p:_DomainPolicy {domain: m.domain})
                 UNWIND coalesce(p.sensitive, []) AS property
                 RETURN DISTINCT property } AS sensitive
ORDER BY coalesce(r.count, 1) DESC, rel_type, m.uid
"""

NEIGHBORS_BOTH_QUERY = PENDING_PREFIX + """
MATCH (n:Entity {uid: $uid})-[r]-(m:Entity)
WHERE ($types IS NULL OR type(r) IN $types)
  AND ($domains IS NULL OR m.domain IN $domains)
  AND NOT coalesce(m._mig, '') IN pending AND NOT coalesce(r._mig, '') IN pending
// the order and limit first: the policy subquery then runs for the returned rows only
WITH n, r, m ORDER BY coalesce(r.count, 1) DESC, type(r), m.uid LIMIT $limit
RETURN type(r) AS rel_type, properties(r) AS rel_props,
       startNode(r).uid AS rel_source, endNode(r).uid AS rel_target, m,
       CASE WHEN startNode(r) = n THEN 'out' ELSE 'in' END AS direction,
       COLLECT { MATCH (p:_DomainPolicy {domain: m.domain})
                 UNWIND coalesce(p.sensitive, []) AS property
                 RETURN DISTINCT property } AS sensitive
ORDER BY coalesce(r.count, 1) DESC, rel_type, m.uid
"""

NEIGHBORS_QUERIES: dict[str, str] = {
    "out": NEIGHBORS_OUT_QUERY,
    "in": NEIGHBORS_IN_QUERY,
    "both": NEIGHBORS_BOTH_QUERY,
}

# The hop bound of a variable-length pattern cannot be a parameter; one constant per bound,
# built from the validated integer range 1..MAX_PATH_HOPS, never from caller text.
_SHORTEST_PATHS_TEMPLATE = PENDING_PREFIX + """
MATCH (a:Entity {uid: $source}), (b:Entity {uid: $target})
MATCH p = allShortestPaths((a)-[*..HOPS]-(b))
WHERE ($types IS NULL OR all(r IN relationships(p) WHERE type(r) IN $types))
  AND ($domains IS NULL OR all(n IN nodes(p) WHERE n.domain IN $domains))
  AND all(n IN nodes(p) WHERE NOT coalesce(n._mig, '') IN pending)
  AND all(r IN relationships(p) WHERE NOT coalesce(r._mig, '') IN pending)
RETURN p
LIMIT $limit
"""
SHORTEST_PATHS_QUERIES: dict[int, str] = {
    hops: _SHORTEST_PATHS_TEMPLATE.replace("HOPS", str(hops))
    for hops in range(1, MAX_PATH_HOPS + 1)
}

EXPAND_FRONTIER_QUERY = PENDING_PREFIX + """
UNWIND $frontier AS seed_uid
MATCH (n:Entity {uid: seed_uid})-[r]-(m:Entity)
WHERE ($types IS NULL OR type(r) IN $types)
  AND ($domains IS NULL OR m.domain IN $domains)
  AND NOT coalesce(m._mig, '') IN pending AND NOT coalesce(r._mig, '') IN pending
RETURN type(r) AS rel_type, properties(r) AS rel_props,
       startNode(r).uid AS rel_source, endNode(r).uid AS rel_target, m
LIMIT $limit
"""

DOMAIN_NODE_COUNTS_QUERY = PENDING_PREFIX + """
MATCH (n:Entity) WHERE NOT coalesce(n._mig, '') IN pending
UNWIND [label IN labels(n) WHERE label <> 'Entity'] AS type
RETURN n.domain AS domain, type, count(*) AS count
"""

DOMAIN_TOTALS_QUERY = PENDING_PREFIX + """
MATCH (n:Entity) WHERE NOT coalesce(n._mig, '') IN pending
RETURN n.domain AS domain, count(*) AS count
"""

DOMAIN_RELATION_COUNTS_QUERY = PENDING_PREFIX + """
MATCH (a:Entity)-[r]->(b:Entity)
WHERE NOT coalesce(a._mig, '') IN pending AND NOT coalesce(b._mig, '') IN pending
  AND NOT coalesce(r._mig, '') IN pending
RETURN a.domain AS domain, type(r) AS type, count(*) AS count
"""

DOMAINS_QUERY = PENDING_PREFIX + """
MATCH (n:Entity) WHERE NOT coalesce(n._mig, '') IN pending
RETURN DISTINCT n.domain AS domain
"""

DOMAIN_EXISTS_QUERY = PENDING_PREFIX + """
MATCH (n:Entity {domain: $domain}) WHERE NOT coalesce(n._mig, '') IN pending
RETURN n.uid AS uid LIMIT 1
"""

# The properties each domain's migration declared sensitive (``_DomainPolicy``, written by the
# loader): kept in the graph so that every API process knows them.
SENSITIVE_PROPERTIES_QUERY = """
MATCH (p:_DomainPolicy)
UNWIND coalesce(p.sensitive, []) AS property
RETURN p.domain AS domain, collect(DISTINCT property) AS sensitive
"""

_LUCENE_SPECIAL = re.compile(r'([+\-!(){}\[\]^"~*?:\\/&|])')
_TOKEN_RE = re.compile(r"[\w']+", re.UNICODE)


def lucene_query(text: str, fuzzy: bool = True, any_word: bool = False) -> str:
    """A Lucene query for free text: every token as an exact term (boosted) or a fuzzy one;
    up to four tokens must all match unless ``any_word``."""
    tokens = [t for t in _TOKEN_RE.findall(text.lower()) if t]
    if not tokens:
        raise InvalidInputError("the search text has no searchable words")
    parts = []
    for token in tokens[:32]:
        escaped = _LUCENE_SPECIAL.sub(r"\\\1", token)
        if fuzzy and len(token) >= 4:
            parts.append(f"({escaped}^3 OR {escaped}*^2 OR {escaped}~1)")
        else:
            parts.append(f"({escaped}^3 OR {escaped}*)" if len(token) >= 2 else escaped)
    return " AND ".join(parts) if len(parts) <= 4 and not any_word else " OR ".join(parts)


def encode_cursor(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(payload, dict):
            raise ValueError("not an object")
        return payload
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("cursor is malformed; pass back a next_cursor unchanged") from exc


def _clean_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_clean_value(v) for v in value]
    if hasattr(value, "iso_format"):
        return value.iso_format()
    return str(value)


def _public_properties(props: dict[str, Any], skip: Set[str]) -> dict[str, Any]:
    return {
        key: _clean_value(value)
        for key, value in props.items()
        if key not in skip and not key.startswith(HIDDEN_PROPERTY_PREFIXES)
    }


def entity_from_node(node: Node, hidden: Set[str] = frozenset()) -> Entity:
    """The entity of a node, without the properties in ``hidden`` (a domain's sensitive
    properties, for a key that may not see them)."""
    props = dict(node)
    return Entity(
        uid=props.get("uid", ""),
        name=props.get("name") or props.get("uid", ""),
        domain=props.get("domain", ""),
        types=sorted(label for label in node.labels if label != ENTITY_LABEL),
        aliases=list(props.get("aliases") or []),
        description=props.get("description"),
        properties=_public_properties(props, CORE_PROPERTIES | hidden),
    )


def relation_from_record(record: Any) -> Relation:
    """A Relation from the ``rel_type, rel_props, rel_source, rel_target`` columns of a record."""
    return Relation(
        type=record["rel_type"],
        source=record["rel_source"],
        target=record["rel_target"],
        properties=_public_properties(record["rel_props"], set()),
    )


def relation_from_relationship(rel: Relationship) -> Relation:
    assert rel.start_node is not None and rel.end_node is not None
    return Relation(
        type=rel.type,
        source=rel.start_node["uid"],
        target=rel.end_node["uid"],
        properties=_public_properties(dict(rel), set()),
    )


class GraphStore:
    """Read access to the entity graph in one Neo4j database. The driver is passed in.

    A store made by ``scoped`` sees only some domains (an entity of another domain is unknown:
    404; paths, neighbours and subgraphs never leave them) and, unless ``sensitive``, returns
    entities without the properties their domain declares sensitive."""

    def __init__(self, driver: Driver, database: str = "neo4j") -> None:
        self.driver = driver
        self.database = database
        self.allowed: list[str] | None = None  # None: every domain
        self.sensitive = True
        self._hidden: dict[str, frozenset[str]] | None = None

    def scoped(self, domains: Sequence[str] | None, sensitive: bool) -> GraphStore:
        """A view of this store for one caller: only ``domains`` (None: all), and sensitive
        properties only if ``sensitive``."""
        view = GraphStore(self.driver, self.database)
        view.allowed = sorted(domains) if domains is not None else None
        view.sensitive = sensitive
        return view

    def allows(self, domain: str) -> bool:
        return self.allowed is None or domain in self.allowed

    def check_visible(self, domain: str | None) -> None:
        """404 for a domain this view may not see, as if it did not exist (without asking the
        graph whether it does)."""
        if domain is not None and not self.allows(domain):
            raise NotFoundError(f"unknown domain {domain!r}")

    def sensitive_properties(self) -> dict[str, frozenset[str]]:
        """Domain -> the properties its migrations declared sensitive. Read once per view (a
        view lives for one request), not cached longer: a migration that declares them must
        not leave a window in which another process still shows them (about 1 ms a read)."""
        if self._hidden is None:
            self._hidden = {r["domain"]: frozenset(r["sensitive"])
                            for r in self._read(SENSITIVE_PROPERTIES_QUERY)}
        return self._hidden

    def entity(self, node: Node, sensitive: Sequence[str] | None = None) -> Entity:
        """An entity as this caller may see it; ``sensitive``: its domain's sensitive
        properties when the query returned them beside the node (no second read)."""
        if self.sensitive:
            return entity_from_node(node)
        if sensitive is not None:
            return entity_from_node(node, frozenset(sensitive))
        return entity_from_node(node, self.sensitive_properties().get(node.get("domain"),
                                                                      frozenset()))

    # ---------------------------------------------------------------- helpers
    def _read(self, query: str, **params: Any) -> list[Any]:
        with translate_errors():
            records, _, _ = self.driver.execute_query(
                query, params, database_=self.database, routing_=RoutingControl.READ
            )
        return records

    def _check_types(self, types: Sequence[str] | None) -> list[str] | None:
        if not types:
            return None
        return check_allowed(types, live_entity_types(self.driver, self.database), "entity type")

    def _check_relation_types(self, types: Sequence[str] | None) -> list[str] | None:
        if not types:
            return None
        return check_allowed(
            types, live_relation_types(self.driver, self.database), "relationship type"
        )

    def check_domain(self, domain: str | None) -> None:
        """404 for a domain that has no entities, or that this view may not see (the same
        answer: a caller does not learn which other domains exist)."""
        if domain is None:
            return
        if not self.allows(domain) or not self._read(DOMAIN_EXISTS_QUERY, domain=domain):
            raise NotFoundError(f"unknown domain {domain!r}")

    # -------------------------------------------------------------- entities
    def search_entities(
        self,
        text: str | None = None,
        *,
        types: Sequence[str] | None = None,
        domain: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        fuzzy: bool = True,
        any_word: bool = False,
    ) -> EntityPage:
        """Full-text (fuzzy) search over names and aliases, or a listing when ``text`` is empty;
        ``any_word``: a hit needs only one of the words (entity linking, where the question's
        other words name relations)."""
        if not 1 <= limit <= 500:
            raise InvalidInputError("limit must be between 1 and 500")
        checked_types = self._check_types(types)
        self.check_visible(domain)
        state = decode_cursor(cursor) if cursor else {}
        if text and text.strip():
            offset = int(state.get("offset", 0))
            records = self._read(
                SEARCH_ENTITIES_QUERY, lucene=lucene_query(text, fuzzy, any_word),
                types=checked_types, domain=domain, domains=self.allowed, offset=offset,
                limit=limit + 1,
            )
            has_more = len(records) > limit
            next_cursor = encode_cursor({"offset": offset + limit}) if has_more else None
        else:
            records = self._read(
                LIST_ENTITIES_QUERY, types=checked_types, domain=domain, domains=self.allowed,
                after=state.get("after"), limit=limit + 1,
            )
            next_cursor = (
                encode_cursor({"after": records[limit - 1]["node"]["uid"]})
                if len(records) > limit else None
            )
        items = [
            EntityHit(**self.entity(r["node"]).model_dump(), score=r["score"])
            for r in records[:limit]
        ]
        return EntityPage(items=items, next_cursor=next_cursor)

    def get_entity(self, uid: str) -> Entity:
        if self.sensitive:
            records = self._read(GET_ENTITY_QUERY, uid=uid)
        else:
            records = self._read(GET_ENTITY_POLICY_QUERY, uid=uid)
        # an entity of a domain this view may not see is as unknown as a missing one
        if not records or not self.allows(records[0]["node"].get("domain", "")):
            raise NotFoundError(f"no entity with uid {uid!r}")
        record = records[0]
        return self.entity(record["node"], record.get("sensitive"))

    def get_entities(self, uids: Sequence[str]) -> dict[str, Entity]:
        """Entities by uid (unknown uids are left out)."""
        records = self._read(GET_ENTITIES_QUERY, uids=list(uids))
        return {r["node"]["uid"]: self.entity(r["node"]) for r in records
                if self.allows(r["node"].get("domain", ""))}

    def neighbors(
        self,
        uid: str,
        *,
        relation_types: Sequence[str] | None = None,
        direction: Direction = "both",
        limit: int = 50,
    ) -> list[Neighbor]:
        if direction not in NEIGHBORS_QUERIES:
            raise InvalidInputError("direction must be one of: out, in, both")
        if not 1 <= limit <= 1000:
            raise InvalidInputError("limit must be between 1 and 1000")
        checked = self._check_relation_types(relation_types)
        self.get_entity(uid)  # 404 for an unknown uid, not an empty list
        records = self._read(NEIGHBORS_QUERIES[direction], uid=uid, types=checked,
                             domains=self.allowed, limit=limit)
        return [
            Neighbor(
                direction=r["direction"],
                relation=relation_from_record(r),
                entity=self.entity(r["m"], r["sensitive"]),
            )
            for r in records
        ]

    # ----------------------------------------------------------------- paths
    def shortest_paths(
        self,
        source: str,
        target: str,
        *,
        max_hops: int = 3,
        relation_types: Sequence[str] | None = None,
        limit: int = 10,
    ) -> list[GraphPath]:
        """All shortest paths (ignoring direction) of at most ``max_hops``, at most ``limit``."""
        if not 1 <= max_hops <= MAX_PATH_HOPS:
            raise InvalidInputError(f"max_hops must be between 1 and {MAX_PATH_HOPS}")
        if not 1 <= limit <= MAX_PATHS:
            raise InvalidInputError(f"limit must be between 1 and {MAX_PATHS}")
        if source == target:
            raise InvalidInputError("source and target must differ")
        checked = self._check_relation_types(relation_types)
        for uid in (source, target):
            self.get_entity(uid)
        records = self._read(
            SHORTEST_PATHS_QUERIES[max_hops], source=source, target=target, types=checked,
            domains=self.allowed, limit=limit,
        )
        return [
            GraphPath(
                nodes=[self.entity(n) for n in r["p"].nodes],
                relations=[relation_from_relationship(rel) for rel in r["p"].relationships],
            )
            for r in records
        ]

    # -------------------------------------------------------------- subgraph
    def subgraph(
        self,
        seeds: Sequence[str],
        *,
        hops: int = 2,
        max_nodes: int = 200,
        max_edges: int = 1000,
        relation_types: Sequence[str] | None = None,
        per_node_limit: int | None = None,
    ) -> Subgraph:
        """Breadth-first k-hop neighbourhood of ``seeds`` with hard caps on nodes and edges.

        Expands one layer per query, so the caps bound the work done, not only the answer.
        """
        if not seeds:
            raise InvalidInputError("at least one seed uid is needed")
        if not 1 <= hops <= MAX_SUBGRAPH_HOPS:
            raise InvalidInputError(f"hops must be between 1 and {MAX_SUBGRAPH_HOPS}")
        if not 1 <= max_nodes <= 5000 or not 1 <= max_edges <= 20000:
            raise InvalidInputError("max_nodes must be in 1..5000 and max_edges in 1..20000")
        checked = self._check_relation_types(relation_types)
        found = self.get_entities(list(dict.fromkeys(seeds)))
        missing = [uid for uid in seeds if uid not in found]
        if missing:
            raise NotFoundError(f"unknown seed uid(s): {', '.join(missing[:5])}")
        nodes: dict[str, Entity] = dict(found)
        edges: dict[tuple[str, str, str], Relation] = {}
        truncated = False
        frontier = list(found)
        for _ in range(hops):
            if not frontier:
                break
            fetch = max_edges + 1 if per_node_limit is None else min(
                max_edges + 1, per_node_limit * len(frontier)
            )
            records = self._read(EXPAND_FRONTIER_QUERY, frontier=frontier, types=checked,
                                 domains=self.allowed, limit=fetch)
            if len(records) >= fetch and fetch > max_edges:
                truncated = True
            next_frontier: list[str] = []
            for record in records:
                relation = relation_from_record(record)
                key = (relation.source, relation.type, relation.target)
                if key in edges:
                    continue
                neighbour = self.entity(record["m"])
                if neighbour.uid not in nodes:
                    if len(nodes) >= max_nodes:
                        truncated = True
                        continue
                    nodes[neighbour.uid] = neighbour
                    next_frontier.append(neighbour.uid)
                if len(edges) >= max_edges:
                    truncated = True
                    break
                edges[key] = relation
            frontier = next_frontier
        return Subgraph(
            seeds=list(found), nodes=list(nodes.values()), relations=list(edges.values()),
            truncated=truncated,
        )

    # ---------------------------------------------------------------- schema
    def domains(self) -> list[str]:
        return sorted(r["domain"] for r in self._read(DOMAINS_QUERY)
                      if r["domain"] and self.allows(r["domain"]))

    def schema_summary(self) -> SchemaSummary:
        types: dict[str, dict[str, int]] = {}
        for record in self._read(DOMAIN_NODE_COUNTS_QUERY):
            if not str(record["type"]).startswith("_"):
                types.setdefault(record["domain"], {})[record["type"]] = record["count"]
        totals = {r["domain"]: r["count"] for r in self._read(DOMAIN_TOTALS_QUERY)}
        relations: dict[str, dict[str, int]] = {}
        for record in self._read(DOMAIN_RELATION_COUNTS_QUERY):
            relations.setdefault(record["domain"], {})[record["type"]] = record["count"]
        domains = [
            DomainSummary(
                domain=domain,
                node_count=totals[domain],
                relationship_count=sum(relations.get(domain, {}).values()),
                types=dict(sorted(types.get(domain, {}).items())),
                relation_types=dict(sorted(relations.get(domain, {}).items())),
            )
            for domain in sorted(d for d in totals if d and self.allows(d))
        ]
        if self.allowed is None:
            return SchemaSummary(
                entity_types=live_entity_types(self.driver, self.database),
                relation_types=live_relation_types(self.driver, self.database),
                domains=domains,
            )
        # a scoped view names only the types its domains use, not the whole database's
        return SchemaSummary(
            entity_types=sorted({t for d in domains for t in d.types}),
            relation_types=sorted({t for d in domains for t in d.relation_types}),
            domains=domains,
        )
