"""Pydantic models of the graph: what the store returns and the API serialises."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Entity(BaseModel):
    """One node: label ``Entity`` plus its type labels, identified by ``uid``."""

    uid: str = Field(description="'<domain>:<source id>', unique across kgr")
    name: str
    domain: str
    types: list[str] = Field(description="type labels besides Entity, e.g. ['Disease']")
    aliases: list[str] = Field(default_factory=list)
    description: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class EntityHit(Entity):
    """An entity found by search, with its full-text score (None when listing without text)."""

    score: float | None = None


class EntityPage(BaseModel):
    """One page of search results; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[EntityHit]
    next_cursor: str | None = None


class Relation(BaseModel):
    """One typed, directed relationship ``source -type-> target``."""

    type: str
    source: str
    target: str
    properties: dict[str, Any] = Field(default_factory=dict)


class Neighbor(BaseModel):
    """A neighbour of an entity and the relationship that links them."""

    direction: Literal["out", "in"]
    relation: Relation
    entity: Entity


class GraphPath(BaseModel):
    """A path: ``nodes[i] -relations[i]- nodes[i+1]`` (relations keep their own direction)."""

    nodes: list[Entity]
    relations: list[Relation]

    @property
    def length(self) -> int:
        return len(self.relations)


class Subgraph(BaseModel):
    """A bounded k-hop neighbourhood; ``truncated`` says a node or edge cap was hit."""

    seeds: list[str]
    nodes: list[Entity]
    relations: list[Relation]
    truncated: bool


class DomainSummary(BaseModel):
    """Counts of one domain."""

    domain: str
    node_count: int
    relationship_count: int
    types: dict[str, int]
    relation_types: dict[str, int]


class SchemaSummary(BaseModel):
    """The live schema: entity types, relationship types and counts per domain."""

    entity_types: list[str]
    relation_types: list[str]
    domains: list[DomainSummary]
