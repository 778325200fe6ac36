"""Encoder against the real Neo4j: streamed export, training a domain, write-back, serving."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import torch
from neo4j import Driver

from core.errors import InvalidInputError, ModelNotReadyError, NotFoundError
from core.settings import Settings
from graph.encoder import (
    EncoderConfig,
    export_domains,
    load_active_encoder,
    train_domain,
)
from graph.encoder.checkpoint import encoder_artifacts
from graph.encoder.serve import (
    active_embedding,
    drop_embeddings,
    predict_links,
    similar_entities,
)
from tests.conftest import TOY_ENTITIES, TOY_RELATIONS

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """Tiny models: one thread is several times faster than two on a shared, busy CPU."""
    torch.set_num_threads(1)

TINY = EncoderConfig(dim=16, epochs=60, eval_every=20, batch_size=64, lr=0.2,
                     valid_fraction=0.0, test_fraction=0.0, n3=0.0)


@pytest.fixture
def encoder_domain(driver: Driver, settings: Settings, domain: str) -> Iterator[str]:
    """The ``domain`` fixture plus cleanup of its encoder artifacts and served pointer."""
    yield domain
    drop_embeddings(driver, settings.neo4j_database, domain)
    shutil.rmtree(encoder_artifacts(settings).domain_dir(domain), ignore_errors=True)


def test_export_streams_pages_and_keeps_the_uid_index(
    driver: Driver, settings: Settings, toy_graph: dict[str, str], domain: str
) -> None:
    pages: list[tuple[int, int]] = []
    data = export_domains(driver, settings.neo4j_database, [domain], batch_size=3,
                          progress=lambda n, e: pages.append((n, e)))
    assert data.uids == sorted(toy_graph.values())
    assert data.relation_types == sorted({r for _, r, _ in TOY_RELATIONS})
    assert len(pages) >= 3 + 3  # 8 nodes in pages of 3, then 3 pages of edges
    got = {(data.uids[h], data.relation_types[r], data.uids[t])
           for h, r, t in data.triples().tolist()}
    assert got == {(toy_graph[h], r, toy_graph[t]) for h, r, t in TOY_RELATIONS}
    types = dict(zip(data.uids, data.entity_types, strict=True))
    assert types[toy_graph["NCBIGene:2200"]] == "Gene"
    one_page = export_domains(driver, settings.neo4j_database, [domain], batch_size=10_000)
    assert one_page.uids == data.uids
    assert torch.equal(one_page.edge_index, data.edge_index)
    assert len(TOY_ENTITIES) == data.num_nodes


def test_export_of_an_unknown_domain_is_not_found(driver: Driver, settings: Settings,
                                                  toy_graph: dict[str, str],
                                                  domain: str) -> None:
    with pytest.raises(NotFoundError):
        export_domains(driver, settings.neo4j_database, [domain, "no_such_domain_x"])


def test_train_domain_writes_back_and_serves_similar_and_predict(
    driver: Driver, settings: Settings, toy_graph: dict[str, str], encoder_domain: str
) -> None:
    db = settings.neo4j_database
    with pytest.raises(ModelNotReadyError):
        load_active_encoder(settings, encoder_domain)
    steps: list[float] = []
    version = train_domain(settings, driver, encoder_domain, TINY,
                           progress=lambda f, _m: steps.append(f))
    assert steps[0] == 0.0 and steps[-1] == 1.0 and steps == sorted(steps)
    bundle = load_active_encoder(settings, encoder_domain)
    assert bundle.version == version
    assert bundle.entity_embeddings.shape == (8, 16)
    assert bundle.relation_embeddings.shape == (4, 16)
    assert set(bundle.uid_to_index) == set(toy_graph.values())

    served = active_embedding(driver, db, encoder_domain)
    assert served is not None and served.version == version and served.dim == 16

    got_version, hits = similar_entities(driver, db, toy_graph["OMIM:154700"], k=3)
    assert got_version == version
    assert len(hits) == 3 and toy_graph["OMIM:154700"] not in {h.uid for h in hits}
    assert all(h.uid.startswith(f"{encoder_domain}:") for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    _, phenotypes = similar_entities(driver, db, toy_graph["OMIM:154700"], k=10,
                                     types=["Phenotype"])
    assert {h.uid for h in phenotypes} == {toy_graph[s] for s, _, t, _ in TOY_ENTITIES
                                           if t == "Phenotype"}

    # the model memorised the toy graph: Marfan's three phenotypes come first, flagged known
    tails = predict_links(driver, db, bundle, "HAS_PHENOTYPE", head=toy_graph["OMIM:154700"], k=3)
    assert {t.uid for t in tails} == {toy_graph[x] for x in ("HP:0001166", "HP:0000098",
                                                             "HP:0001382")}
    assert all(t.known for t in tails)
    heads = predict_links(driver, db, bundle, "ASSOCIATED_WITH", tail=toy_graph["OMIM:154700"],
                          k=1)
    assert heads[0].uid == toy_graph["NCBIGene:2200"] and heads[0].known
    fresh = predict_links(driver, db, bundle, "HAS_PHENOTYPE", head=toy_graph["OMIM:154700"],
                          k=2, exclude_known=True)
    assert len(fresh) == 2 and not any(t.known for t in fresh)

    with pytest.raises(InvalidInputError):
        predict_links(driver, db, bundle, "NOT_A_RELATION", head=toy_graph["OMIM:154700"])
    with pytest.raises(NotFoundError):
        predict_links(driver, db, bundle, "HAS_PHENOTYPE", head=f"{encoder_domain}:nope")

    # a second version is written to the other slot and replaces the first one
    second = train_domain(settings, driver, encoder_domain, TINY.model_copy(update={"seed": 1}))
    flipped = active_embedding(driver, db, encoder_domain)
    assert flipped is not None and flipped.version == second != version
    assert flipped.slot != served.slot
    assert similar_entities(driver, db, toy_graph["OMIM:154700"], k=3)[0] == second
    assert load_active_encoder(settings, encoder_domain).version == second


def test_train_domain_on_an_unknown_domain_is_not_found(driver: Driver,
                                                        settings: Settings) -> None:
    with pytest.raises(NotFoundError):
        train_domain(settings, driver, "no_such_domain_y", TINY)
