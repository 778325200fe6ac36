"""Serving the embeddings from Neo4j: batched write-back with an atomic version switch, similar
entities through a vector index, and link prediction with known facts flagged.

Atomic switch: each entity has two vector slots, ``embedding_a`` and ``embedding_b``, each with
its own cosine vector index (``entity_embedding_a`` / ``_b``). A new version is written, batch by
batch, into the slot the domain is NOT serving; then one transaction flips the domain's pointer
node ``(:_EmbeddingVersion {domain})`` to the new slot and version. A reader reads the pointer
once and then only the slot it names, so it sees either the old or the new version, never a mix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from neo4j import Driver, Record, RoutingControl

from core.errors import InvalidInputError, ModelNotReadyError, NotFoundError
from graph.driver import translate_errors
from graph.encoder.checkpoint import EncoderBundle
from graph.lock import GraphLock
from graph.writer import batched

Slot = Literal["a", "b"]
SLOT_PROPERTY: dict[str, str] = {"a": "embedding_a", "b": "embedding_b"}
SLOT_INDEX: dict[str, str] = {"a": "entity_embedding_a", "b": "entity_embedding_b"}

CREATE_SLOT_INDEX_QUERIES: dict[str, str] = {
    "a": "CREATE VECTOR INDEX entity_embedding_a IF NOT EXISTS FOR (n:Entity) ON n.embedding_a "
         "OPTIONS {indexConfig: {`vector.similarity_function`: 'cosine'}}",
    "b": "CREATE VECTOR INDEX entity_embedding_b IF NOT EXISTS FOR (n:Entity) ON n.embedding_b "
         "OPTIONS {indexConfig: {`vector.similarity_function`: 'cosine'}}",
}
AWAIT_INDEXES_QUERY = "CALL db.awaitIndexes($timeout_s)"

ACTIVE_EMBEDDING_QUERY = """
MATCH (v:_EmbeddingVersion {domain: $domain})
RETURN v.slot AS slot, v.version AS version, v.dim AS dim
"""

CLEAR_SLOT_BATCH_QUERY = """
MATCH (n:Entity {domain: $domain})
WHERE n[$property] IS NOT NULL
WITH n LIMIT $batch_size
SET n[$property] = null
RETURN count(*) AS cleared
"""

WRITE_VECTORS_QUERY = """
UNWIND $rows AS row
MATCH (n:Entity {uid: row.uid})
WHERE n.domain = $domain
CALL db.create.setNodeVectorProperty(n, $property, row.vector)
RETURN count(*) AS written
"""

FLIP_VERSION_QUERY = """
MERGE (v:_EmbeddingVersion {domain: $domain})
SET v.slot = $slot, v.version = $version, v.dim = $dim, v.updated_at = datetime()
RETURN v.version AS version
"""

DROP_POINTER_QUERY = "MATCH (v:_EmbeddingVersion {domain: $domain}) DELETE v"

ENTITY_DOMAIN_QUERY = "MATCH (n:Entity {uid: $uid}) RETURN n.domain AS domain"

SIMILAR_QUERY = """
MATCH (q:Entity {uid: $uid})
WITH q[$property] AS vector
WHERE vector IS NOT NULL
CALL db.index.vector.queryNodes($index, $candidates, vector) YIELD node, score
WITH node, score
WHERE node.uid <> $uid AND node.domain = $domain AND node[$property] IS NOT NULL
  AND ($types IS NULL OR any(label IN labels(node) WHERE label IN $types))
RETURN node.uid AS uid, node.name AS name,
       [l IN labels(node) WHERE l <> 'Entity' AND NOT l STARTS WITH '_'] AS types, score
ORDER BY score DESC, uid ASC
LIMIT $k
"""

KNOWN_TAILS_QUERY = """
MATCH (h:Entity {uid: $uid})-[r]->(t:Entity)
WHERE type(r) = $relation AND t.uid IN $candidates
RETURN DISTINCT t.uid AS uid
"""

KNOWN_HEADS_QUERY = """
MATCH (h:Entity)-[r]->(t:Entity {uid: $uid})
WHERE type(r) = $relation AND h.uid IN $candidates
RETURN DISTINCT h.uid AS uid
"""

ENTITY_SUMMARIES_QUERY = """
UNWIND $uids AS uid
MATCH (n:Entity {uid: uid})
RETURN n.uid AS uid, n.name AS name,
       [l IN labels(n) WHERE l <> 'Entity' AND NOT l STARTS WITH '_'] AS types
"""

MAX_K = 1000


@dataclass
class ActiveEmbedding:
    slot: str
    version: str
    dim: int


def ensure_vector_indexes(driver: Driver, database: str, timeout_s: int = 120) -> None:
    with translate_errors():
        for query in CREATE_SLOT_INDEX_QUERIES.values():
            driver.execute_query(query, database_=database)
        driver.execute_query(AWAIT_INDEXES_QUERY, {"timeout_s": timeout_s}, database_=database)


def active_embedding(driver: Driver, database: str, domain: str) -> ActiveEmbedding | None:
    """The slot and version the domain serves now, or None."""
    with translate_errors():
        records, _, _ = driver.execute_query(
            ACTIVE_EMBEDDING_QUERY, {"domain": domain}, database_=database,
            routing_=RoutingControl.READ,
        )
    if not records or records[0]["slot"] not in SLOT_PROPERTY:
        return None
    r = records[0]
    return ActiveEmbedding(slot=r["slot"], version=r["version"], dim=int(r["dim"]))


def write_embeddings(
    driver: Driver, database: str, domain: str, version: str, uids: Sequence[str],
    vectors: torch.Tensor, batch_size: int = 2000,
    progress: Callable[[int, int], None] | None = None, fence: GraphLock | None = None,
) -> ActiveEmbedding:
    """Write ``vectors: [N, d]`` of ``uids`` (entities of ``domain``) as version ``version``.

    Writes go to the slot the domain does not serve, in batches of ``batch_size``; the final
    one-transaction flip makes readers switch atomically. With a ``fence`` (the domain's
    ``ModelLock``), every write runs in ``fence.fenced()``: once that lock is lost, nothing
    more is written (its ``lost()`` error). Returns the new active embedding."""
    if vectors.ndim != 2 or vectors.shape[0] != len(uids):
        raise InvalidInputError(f"expected [{len(uids)}, d] vectors, got {list(vectors.shape)}")

    def write(query: str, params: dict[str, Any]) -> list[Record]:
        if fence is None:
            records, _, _ = driver.execute_query(query, params, database_=database)
            return records
        with fence.fenced() as tx:
            return list(tx.run(query, params))

    ensure_vector_indexes(driver, database)
    current = active_embedding(driver, database, domain)
    slot = "b" if current is not None and current.slot == "a" else "a"
    prop = SLOT_PROPERTY[slot]
    with translate_errors():
        while True:  # the inactive slot may hold an older version: clear it first
            records = write(CLEAR_SLOT_BATCH_QUERY,
                            {"domain": domain, "property": prop, "batch_size": batch_size})
            if records[0]["cleared"] == 0:
                break
        data = vectors.detach().float().cpu().tolist()
        done = 0
        for rows in batched(({"uid": u, "vector": v} for u, v in zip(uids, data, strict=True)),
                            batch_size):
            write(WRITE_VECTORS_QUERY, {"rows": rows, "domain": domain, "property": prop})
            done += len(rows)
            if progress:
                progress(done, len(uids))
        write(FLIP_VERSION_QUERY, {"domain": domain, "slot": slot, "version": version,
                                   "dim": int(vectors.shape[1])})
    return ActiveEmbedding(slot=slot, version=version, dim=int(vectors.shape[1]))


def drop_embeddings(driver: Driver, database: str, domain: str) -> None:
    """Stop serving embeddings for ``domain`` (the vectors go with the domain's entities)."""
    with translate_errors():
        driver.execute_query(DROP_POINTER_QUERY, {"domain": domain}, database_=database)


def entity_domain(driver: Driver, database: str, uid: str) -> str:
    with translate_errors():
        records, _, _ = driver.execute_query(
            ENTITY_DOMAIN_QUERY, {"uid": uid}, database_=database, routing_=RoutingControl.READ,
        )
    if not records:
        raise NotFoundError(f"no entity with uid {uid!r}")
    return str(records[0]["domain"])


@dataclass
class SimilarHit:
    uid: str
    name: str | None
    types: list[str]
    score: float


def similar_entities(
    driver: Driver, database: str, uid: str, k: int = 10, types: list[str] | None = None,
    domain: str | None = None,
) -> tuple[str, list[SimilarHit]]:
    """The ``k`` entities nearest to ``uid`` (cosine, vector index) in its domain's served
    version; returns (version, hits). Embeddings of different domains' models are not
    comparable, so a ``domain`` other than the entity's own is refused (422)."""
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be between 1 and {MAX_K}")
    own = entity_domain(driver, database, uid)
    if domain is not None and domain != own:
        raise InvalidInputError(
            f"{uid!r} belongs to domain {own!r}; similarity is computed within one domain")
    active = active_embedding(driver, database, own)
    if active is None:
        raise ModelNotReadyError(f"no embeddings are served for domain {own!r}; train one first")
    candidates = max(4 * k, 50)
    while True:
        with translate_errors():
            records, _, _ = driver.execute_query(
                SIMILAR_QUERY,
                {"uid": uid, "property": SLOT_PROPERTY[active.slot],
                 "index": SLOT_INDEX[active.slot], "candidates": candidates, "domain": own,
                 "types": types, "k": k},
                database_=database, routing_=RoutingControl.READ,
            )
        if len(records) >= k or candidates >= 10_000:
            break
        candidates *= 4  # filters (domain, type) removed too many: look further
    hits = [SimilarHit(uid=r["uid"], name=r["name"], types=list(r["types"]),
                       score=float(r["score"])) for r in records]
    return active.version, hits


@dataclass
class PredictionHit:
    uid: str
    name: str | None
    types: list[str]
    score: float
    known: bool


def predict_links(
    driver: Driver, database: str, bundle: EncoderBundle, relation: str,
    head: str | None = None, tail: str | None = None, k: int = 10,
    exclude_known: bool = False,
) -> list[PredictionHit]:
    """Top-``k`` tails of ``(head, relation, ?)`` or heads of ``(?, relation, tail)``, scored
    by ``bundle``; candidates that are already facts in Neo4j are flagged ``known``."""
    if (head is None) == (tail is None):
        raise InvalidInputError("give exactly one of head and tail")
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be between 1 and {MAX_K}")
    anchor = head if head is not None else tail
    assert anchor is not None
    rel = bundle.relation_index(relation)
    index = bundle.uid_to_index.get(anchor)
    if index is None:
        entity_domain(driver, database, anchor)  # 404 if it does not exist at all
        raise ModelNotReadyError(
            f"{anchor!r} is newer than encoder version {bundle.version}; retrain the encoder")
    if tail is not None:
        rel += len(bundle.relation_types)  # head prediction = tail query of the inverse
    scores = bundle.score_tails(torch.tensor([index]), torch.tensor([rel]))[0]
    known_query = KNOWN_TAILS_QUERY if head is not None else KNOWN_HEADS_QUERY
    fetch = min(scores.numel(), k if not exclude_known else max(4 * k, 100))
    while True:
        top = torch.topk(scores, fetch)
        candidates = [bundle.uids[i] for i in top.indices.tolist()]
        with translate_errors():
            known_records, _, _ = driver.execute_query(
                known_query, {"uid": anchor, "relation": relation, "candidates": candidates},
                database_=database, routing_=RoutingControl.READ,
            )
        known = {r["uid"] for r in known_records}
        kept = [(u, float(s)) for u, s in zip(candidates, top.values.tolist(), strict=True)
                if not (exclude_known and u in known)]
        if len(kept) >= k or fetch >= scores.numel():
            break
        fetch = min(scores.numel(), fetch * 4)
    kept = kept[:k]
    with translate_errors():
        records, _, _ = driver.execute_query(
            ENTITY_SUMMARIES_QUERY, {"uids": [u for u, _ in kept]}, database_=database,
            routing_=RoutingControl.READ,
        )
    summary = {r["uid"]: (r["name"], list(r["types"])) for r in records}
    return [
        PredictionHit(uid=u, name=summary.get(u, (None, []))[0],
                      types=summary.get(u, (None, []))[1], score=s, known=u in known)
        for u, s in kept
    ]
