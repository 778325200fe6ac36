"""Entity linking (fusion.language.linking) against the real Neo4j: names, aliases, fuzzy matches
and
ambiguous mentions."""

from __future__ import annotations

import pytest
from neo4j import Driver

from core.settings import Settings
from fusion.language.linking import EntityLinker
from graph.store import GraphStore
from graph.writer import entity_row, write_entities

pytestmark = pytest.mark.integration


def test_linking_names_aliases_fuzzy_and_ambiguity(
    store: GraphStore, driver: Driver, settings: Settings, toy_graph: dict[str, str], domain: str
) -> None:
    # a second entity with the same name: the mention keeps both candidates
    write_entities(driver, settings.neo4j_database, [
        entity_row(f"{domain}:ORPHA:558", "Marfan syndrome", domain, ["Disease"])])
    linker = EntityLinker(store, domain)
    question = "Which genes are associated with Marfan syndrome?"
    top = linker.link(question)[0]
    assert (top.start, top.end, top.method) == (32, 47, "name")
    assert {c.uid for c in top.candidates} == {toy_graph["OMIM:154700"], f"{domain}:ORPHA:558"}

    alias = linker.link("What phenotypes does MFS present?")[0]
    assert alias.method == "alias" and alias.text == "MFS"
    assert alias.candidates[0].uid == toy_graph["OMIM:154700"]

    typo = linker.link("Which genes are associated with Marfan syndrom?")
    assert typo and typo[0].method == "fuzzy"
    assert toy_graph["OMIM:154700"] in {c.uid for c in typo[0].candidates}
    assert typo[0].text == "Marfan syndrom"
    # an inflected relation word ("causes", "runs") is not part of the name to search for
    inflected = linker.link("Which genes causes Marfan syndrom?")
    assert inflected and inflected[0].text == "Marfan syndrom"
    assert toy_graph["OMIM:154700"] in {c.uid for c in inflected[0].candidates}

    assert linker.link("Which genes cause baldness?") == []
