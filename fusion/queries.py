"""Every Cypher statement of fusion/, in one place: named, parameterized constants (values are
always ``$params``) and the builders of the parts that depend on a domain's schema, whose
relationship types and labels are checked against it and backtick-quoted
(``graph.schema.quote_relation_type``, ``quote_identifier``) before they enter a statement."""

from __future__ import annotations

from collections.abc import Sequence

from fusion.language.verbalize import OUT, Action
from graph.schema import quote_identifier, quote_relation_type

# --- a domain's graph read into memory (fusion.model.graphdata)

DOMAIN_ENTITIES_QUERY = """
MATCH (n:Entity {domain: $domain})
RETURN n.uid AS uid, n.name AS name, coalesce(n.aliases, []) AS aliases, labels(n) AS labels,
       COUNT { (n)--() } AS degree
"""
DOMAIN_EDGES_QUERY = """
MATCH (a:Entity {domain: $domain})-[r]->(b:Entity {domain: $domain})
RETURN a.uid AS source, type(r) AS type, b.uid AS target,
       coalesce(CASE WHEN r.count IS :: INTEGER | FLOAT THEN r.count END, 1) AS weight
"""

# --- phrasings and type words a domain declares (fusion.language.vocabulary)

# later declarations of a type win (``created``: the migration that wrote them)
DECLARED_PHRASINGS_QUERY = """
MATCH (p:_Phrasings {domain: $domain})
RETURN p.relation AS relation, p.forward AS forward, p.backward AS backward
ORDER BY p.created, p.relation
"""
DECLARED_TYPE_WORDS_QUERY = """
MATCH (w:_TypeWords {domain: $domain})
RETURN w.type AS type, w.words AS words
ORDER BY w.created, w.type
"""

# --- the ask pipeline (fusion.serve.pipeline)

DOMAIN_RELATION_TYPES_QUERY = """
MATCH (n:Entity {domain: $domain})-[r]->()
WHERE NOT type(r) STARTS WITH '_'
RETURN DISTINCT type(r) AS type
"""
# an entity of the domain with a relationship: the topic of the warm-up question
WARM_UP_TOPIC_QUERY = """
MATCH (n:Entity {domain: $domain})-[r]->()
WHERE NOT type(r) STARTS WITH '_' AND n.name IS NOT NULL
RETURN n.name AS name
LIMIT 1
"""

# --- reads of the beam search and of evidence paths (fusion.serve.retrieval)

# The hops that exist at each node: one degree count per (relationship type, direction), which
# Neo4j answers from its per-type degree store without reading the relationships. {degrees} is
# filled by ``action_queries`` with one COUNT per allow-listed, backtick-quoted type and
# direction; values are parameters.
ACTION_DEGREES_QUERY_TEMPLATE = """
UNWIND $uids AS uid
MATCH (n:Entity {{uid: uid}})
RETURN n.uid AS uid, [{degrees}] AS degrees
"""
DEGREE_OUT_TEMPLATE = "COUNT {{ (n)-[:{rel}]->() }}"
DEGREE_IN_TEMPLATE = "COUNT {{ (n)<-[:{rel}]-() }}"

# Neighbours for (node, hop) requests: a typed expansion per request (only that type's
# relationships of the node are read), at most $per_type per request, the strongest first (the
# relationship's observation count, e.g. FinDKG weeks; 1 when absent; then uid: the order of
# ``DomainGraph.adj``), at most $limit rows in all, in request order; other domains left out.
# {branches} holds one NEIGHBOUR_BRANCH_TEMPLATE per allow-listed hop, chosen by req.action.
NEIGHBOURS_QUERY_TEMPLATE = """
UNWIND $requests AS req
MATCH (n:Entity {{uid: req.uid}})
CALL (n, req) {{
{branches}
}}
RETURN req.uid AS src, req.action AS action, m.uid AS dst, m.name AS name, labels(m) AS labels
LIMIT $limit
"""
NEIGHBOUR_BRANCH_TEMPLATE = """  WITH n, req WHERE req.action = {index}
  MATCH {pattern}
  WHERE m.domain = n.domain
  WITH m, coalesce(CASE WHEN r.count IS :: INTEGER | FLOAT THEN r.count END, 1) AS weight
  ORDER BY weight DESC, m.uid
  LIMIT $per_type
  RETURN m"""
OUT_PATTERN_TEMPLATE = "(n)-[r:{rel}]->(m:Entity)"
IN_PATTERN_TEMPLATE = "(n)<-[r:{rel}]-(m:Entity)"


# A schema with more relationship types than this (a Freebase-style graph has hundreds) reads
# hops and neighbours with the relationship type as a parameter (``$(req.type)``) instead of
# one degree count and one query branch per type, which made a question's cost grow with the
# number of types (bench/ask_wide_schema.py). Narrow schemas keep the per-type forms, whose
# typed expansion and degree store stay cheap on hubs.
WIDE_SCHEMA_TYPES = 24
# The hops present at each node, read from its relationships (``actions`` keeps those of the
# domain's allow-list).
WIDE_ACTIONS_QUERY = """
UNWIND $uids AS uid
MATCH (n:Entity {uid: uid})
RETURN n.uid AS uid,
       COLLECT { MATCH (n)-[r]->() RETURN DISTINCT type(r) } AS out_types,
       COLLECT { MATCH (n)<-[r]-() RETURN DISTINCT type(r) } AS in_types
"""
# As NEIGHBOURS_QUERY_TEMPLATE, one branch per direction; req.type is an allow-listed type
# (a parameter, never spliced into the query).
WIDE_NEIGHBOURS_QUERY = """
UNWIND $requests AS req
MATCH (n:Entity {uid: req.uid})
CALL (n, req) {
  WITH n, req WHERE req.out
  MATCH (n)-[r:$(req.type)]->(m:Entity)
  WHERE m.domain = n.domain
  WITH m, coalesce(CASE WHEN r.count IS :: INTEGER | FLOAT THEN r.count END, 1) AS weight
  ORDER BY weight DESC, m.uid
  LIMIT $per_type
  RETURN m
  UNION ALL
  WITH n, req WHERE NOT req.out
  MATCH (n)<-[r:$(req.type)]-(m:Entity)
  WHERE m.domain = n.domain
  WITH m, coalesce(CASE WHEN r.count IS :: INTEGER | FLOAT THEN r.count END, 1) AS weight
  ORDER BY weight DESC, m.uid
  LIMIT $per_type
  RETURN m
}
RETURN req.uid AS src, req.action AS action, m.uid AS dst, m.name AS name, labels(m) AS labels
LIMIT $limit
"""


# One recorded path to each of $targets from any of $sources by a fixed sequence of hops: exact
# and uncapped, unlike the capped expansion (the evidence for an answer that a topic reaches but
# did not read). Meant for targets known to be reached: the search for each stops at its first
# path. It starts at the sources (the index hint): the planner otherwise began at the target,
# often a hub ("United States"), and a 3-hop finance answer took up to 340 ms instead of 26.
# {pattern} is built by ``path_pattern`` from allow-listed, backtick-quoted types.
PATH_TO_QUERY_TEMPLATE = """
UNWIND $targets AS target
CALL (target) {{
  MATCH (s:Entity) USING INDEX s:Entity(uid) WHERE s.uid IN $sources
  MATCH p = {pattern}
  WHERE a.uid = target
  RETURN p LIMIT 1
}}
RETURN target, [n IN nodes(p) | n.uid] AS uids, [n IN nodes(p) | n.name] AS names,
       [n IN nodes(p) | labels(n)] AS labels
"""
# The entities that every group of sources reaches by a fixed sequence of hops (the answers
# "diseases with X and Y" share may be in no topic's capped neighbour lists): per group a walk
# over node sets, at most $frontier distinct nodes per hop (so a hub bounds the work, not the
# number of paths through it), then the nodes every group reached, at most $limit.
# {walk} is built by ``set_walk`` from allow-listed, backtick-quoted types.
COMMON_TARGETS_QUERY_TEMPLATE = """
UNWIND range(0, size($groups) - 1) AS g
CALL (g) {{
  MATCH (n0:Entity) WHERE n0.uid IN $groups[g]
{walk}
}}
WITH a, count(*) AS reached WHERE reached = size($groups)
RETURN a.uid AS uid, a.name AS name, labels(a) AS labels
LIMIT $limit
"""
COMMON_FRONTIER = 2000


# How many entities of one type a relation path reaches from its sources ("How many genes
# are associated with X?"): each hop's distinct nodes are collected and cut to $frontier, so
# the read stays bounded; a cut makes the count a lower bound (``cut``). The sources are not
# counted (a gene -> disease -> gene path comes back to its topic).
# Every step is OPTIONAL and an empty frontier is carried as [null], so the one row (and its
# ``cut``) survives a walk that dies out after a cut.
COUNT_TARGETS_QUERY_TEMPLATE = """
OPTIONAL MATCH (n0:Entity) WHERE n0.uid IN $sources
WITH collect(n0) AS f0, false AS cut
{walk}
"""
COUNT_FRONTIER = 5000


def count_walk(steps: Sequence[Action], answer_type: str) -> str:
    """The hops of ``COUNT_TARGETS_QUERY_TEMPLATE``: relationship types and the answer's type
    label checked and backtick-quoted (``quote_relation_type``, ``quote_identifier``)."""
    lines = []
    last = len(steps) - 1
    for hop, (rel, direction) in enumerate(steps):
        quoted = quote_relation_type(rel)
        edge = f"-[:{quoted}]->" if direction == OUT else f"<-[:{quoted}]-"
        lines.append(f"UNWIND CASE WHEN f{hop} = [] THEN [null] ELSE f{hop} END AS n{hop}")
        if hop == last:
            lines.append(f"OPTIONAL MATCH (n{hop}){edge}"
                         f"(a:Entity:{quote_identifier(answer_type)})")
            lines.append("WHERE NOT a.uid IN $sources")
            lines.append("RETURN count(DISTINCT a) AS n, cut")
        else:
            nxt = f"n{hop + 1}"
            lines.append(f"OPTIONAL MATCH (n{hop}){edge}({nxt}:Entity)")
            lines.append(f"WITH collect(DISTINCT {nxt}) AS f{hop + 1}, cut")
            lines.append(f"WITH f{hop + 1}[..$frontier] AS f{hop + 1}, "
                         f"cut OR size(f{hop + 1}) > $frontier AS cut")
    return "\n".join(lines)


def set_walk(steps: Sequence[Action]) -> str:
    """One ``MATCH ... WITH DISTINCT ... LIMIT $frontier`` per hop, ending in ``a``; each type
    checked and backtick-quoted by ``quote_relation_type``."""
    lines = []
    for hop, (rel, direction) in enumerate(steps):
        quoted = quote_relation_type(rel)
        here, there = f"n{hop}", ("a" if hop == len(steps) - 1 else f"n{hop + 1}")
        edge = f"-[:{quoted}]->" if direction == OUT else f"<-[:{quoted}]-"
        lines.append(f"  MATCH ({here}){edge}({there}:Entity)")
        lines.append(f"  WITH DISTINCT {there} LIMIT $frontier")
    lines.append("  RETURN a")
    return "\n".join(lines)


def path_pattern(steps: Sequence[Action]) -> str:
    """``(s)-[:`A`]->(:Entity)<-[:`B`]-(a:Entity)`` for steps ((A, out), (B, in)); each type
    checked and backtick-quoted by ``quote_relation_type``."""
    parts = ["(s:Entity)"]
    for hop, (rel, direction) in enumerate(steps):
        node = "(a:Entity)" if hop == len(steps) - 1 else "(:Entity)"
        quoted = quote_relation_type(rel)
        parts.append(f"-[:{quoted}]->{node}" if direction == OUT else f"<-[:{quoted}]-{node}")
    return "".join(parts)
