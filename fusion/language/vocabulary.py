"""The phrasings a domain declares for its relationship types, read from the graph.

A load's manifest may say how questions name its relationship types (``phrasings:``,
``graph.migrate.manifest``); the migration keeps them in the graph as ``_Phrasings`` nodes, so
every process that serves the domain reads the same ones. They come before kgr's own and the
ones read from a type's name (``fusion.language.verbalize.phrasings``), in that domain only. Yes/no
checks and a domain without a trained QA model use them at once; a trained model keeps the
action texts it was trained with (its checkpoint's) until it is trained again.
"""

from __future__ import annotations

from neo4j import Driver, RoutingControl

from fusion.language.verbalize import declare, declare_type_words
from fusion.queries import (
    DECLARED_PHRASINGS_QUERY,
    DECLARED_TYPE_WORDS_QUERY,
)
from graph.driver import translate_errors


def load_declared_phrasings(driver: Driver, database: str, domain: str
                            ) -> dict[str, tuple[list[str], list[str]]]:
    """Read ``domain``'s declared phrasings (returned) and type words and make them the ones its
    questions use."""
    with translate_errors():
        records, _, _ = driver.execute_query(DECLARED_PHRASINGS_QUERY, {"domain": domain},
                                             database_=database, routing_=RoutingControl.READ)
    table = {r["relation"]: (list(r["forward"] or []), list(r["backward"] or []))
             for r in records}
    declare(domain, table)
    with translate_errors():
        records, _, _ = driver.execute_query(DECLARED_TYPE_WORDS_QUERY, {"domain": domain},
                                             database_=database, routing_=RoutingControl.READ)
    declare_type_words(domain, {r["type"]: list(r["words"] or []) for r in records})
    return table
