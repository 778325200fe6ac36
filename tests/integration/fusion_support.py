"""Helpers of the fusion integration tests: does an evidence hop exist in Neo4j, and a tiny encoder
plus generated questions for the toy domain."""

from __future__ import annotations

from typing import Any

from neo4j import Driver

from core.settings import Settings
from fusion.learn.questions import generate_questions
from fusion.model.graphdata import DomainGraph

EDGE_EXISTS_QUERY = """
MATCH (a:Entity {uid: $source})-[r]->(b:Entity {uid: $target})
WHERE type(r) = $type
RETURN count(r) AS n
"""


def edge_exists(driver: Driver, settings: Settings, source: str, rel: str, target: str) -> bool:
    records, _, _ = driver.execute_query(EDGE_EXISTS_QUERY, source=source, type=rel,
                                         target=target, database_=settings.neo4j_database)
    return bool(records[0]["n"])


def toy_encoder_and_questions(driver: Driver, settings: Settings,
                              domain: str) -> tuple[DomainGraph, list[dict[str, Any]]]:
    """A tiny graph encoder for the toy domain and 24 generated training questions."""
    from graph.encoder import EncoderConfig
    from graph.encoder import train_domain as train_encoder_domain

    train_encoder_domain(settings, driver, domain,
                         EncoderConfig(dim=16, epochs=10, eval_every=5, device="cpu", amp=False),
                         write_back=False)
    graph = DomainGraph.load(driver, settings.neo4j_database, domain)
    return graph, generate_questions(graph, {1: 16, 2: 8}, "train", seed=3)
