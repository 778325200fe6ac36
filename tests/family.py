"""A small synthetic family graph and PathQuestion-style questions about it (no entity types,
relation words that are synonyms of the relation names), for the reasoner's tests."""

from __future__ import annotations

import random
from typing import Any

from neo4j import Driver

from core.settings import Settings
from fusion.model.graphdata import DomainGraph
from graph.writer import entity_row, relation_row, write_entities, write_relations

# (words in the question, relation path): the questions name no entity type
TEMPLATES: list[tuple[str, tuple[str, ...]]] = [
    ("what is the gender of {x} 's dad ?", ("parents", "gender")),
    ("the nationality of {x} 's heir ?", ("children", "nationality")),
    ("who is the darling of {x} 's kid ?", ("children", "spouse")),
    ("{x} 's mother 's nationality ?", ("parents", "nationality")),
    ("what is the sex of {x} 's other half ?", ("spouse", "gender")),
    ("the nationality of {x} ?", ("nationality",)),
    ("the offspring of {x} 's wife 's father ?", ("spouse", "parents", "children")),
]


def family_triples(people: int = 60, seed: int = 0) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    triples: list[tuple[str, str, str]] = []
    names = [f"person_{i}" for i in range(people)]
    for i, name in enumerate(names):
        triples.append((name, "gender", "male" if i % 2 == 0 else "female"))
        triples.append((name, "nationality", f"country_{rng.randrange(5)}"))
    for i in range(0, people - 1, 2):  # couples (i, i + 1)
        triples.append((names[i], "spouse", names[i + 1]))
        triples.append((names[i + 1], "spouse", names[i]))
    for i in range(4, people):  # two parents each, from an earlier couple
        couple = 2 * rng.randrange(i // 2 - 1 if i >= 4 else 1)
        for parent in (names[couple], names[couple + 1]):
            triples.append((names[i], "parents", parent))
            triples.append((parent, "children", names[i]))
    return triples


def graph_of(triples: list[tuple[str, str, str]], domain: str = "fam") -> DomainGraph:
    graph = DomainGraph(domain)
    for head, rel, tail in triples:
        for uid in (head, tail):
            graph.names[uid] = uid
            graph.types[uid] = "Thing"
        graph.adj.setdefault(head, {}).setdefault((rel, "out"), []).append(tail)
        graph.adj.setdefault(tail, {}).setdefault((rel, "in"), []).append(head)
    return graph


def questions(graph: DomainGraph, topics: list[str], seed: int = 0) -> list[dict[str, Any]]:
    """One row per (topic, template) whose path reaches something from the topic."""
    rows = []
    for topic in topics:
        for words, path in TEMPLATES:
            reached = {topic}
            for rel in path:
                reached = graph.follow(reached, (rel, "out"))
            if reached:
                rows.append({"question": words.format(x=topic), "answers": sorted(reached),
                             "topic_entities": [topic], "hops": len(path)})
    random.Random(seed).shuffle(rows)
    return rows


def load_family(driver: Driver, settings: Settings, domain: str) -> DomainGraph:
    triples = family_triples()
    graph = graph_of(triples, domain)
    write_entities(driver, settings.neo4j_database, [
        entity_row(f"{domain}:{uid}", uid, domain, ["Thing"]) for uid in graph.names])
    write_relations(driver, settings.neo4j_database, [
        relation_row(f"{domain}:{h}", rel, f"{domain}:{t}") for h, rel, t in triples])
    return graph
