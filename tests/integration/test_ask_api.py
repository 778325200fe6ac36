"""/v1/ask and the QA admin jobs over HTTP, against the real Neo4j."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver

from api.main import create_app
from core.settings import Settings
from tests.conftest import TOY_RELATIONS

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "test-admin-key"}
READER = {"X-API-Key": "test-reader-key"}


@pytest.fixture
def client(settings: Settings, driver: Driver, domain: str) -> Iterator[TestClient]:
    app_settings = settings.model_copy(
        update={"api_keys": "admin:test-admin-key,reader:test-reader-key"})
    with TestClient(create_app(app_settings, driver)) as test_client:
        yield test_client
    shutil.rmtree(settings.artifacts_dir / "qa" / domain, ignore_errors=True)


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    return str(response.json()["error"]["code"])


def test_ask_returns_answers_evidence_links_models_and_timings(
    client: TestClient, toy_graph: dict[str, str], domain: str
) -> None:
    body = {"question": "Which genes are associated with Marfan syndrome?", "domain": domain,
            "top_k": 3, "mode": "zero-shot"}
    response = client.post("/v1/ask", json=body, headers=READER)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["answers"][0]["uid"] == toy_graph["NCBIGene:2200"]
    assert data["answers"][0]["relation_path"] == ["^ASSOCIATED_WITH"]
    assert data["answers"][0]["evidence"][0]["relations"][0] == {
        "source": toy_graph["NCBIGene:2200"], "source_name": "FBN1", "type": "ASSOCIATED_WITH",
        "target": toy_graph["OMIM:154700"], "target_name": "Marfan syndrome",
        "predicted": False, "probability": None}
    assert "FBN1" in data["answers"][0]["explanation"]
    assert data["linked_entities"][0]["mention"] == "Marfan syndrome"
    assert data["models"]["text_encoder"] == "all-MiniLM-L6-v2"
    assert data["timings_ms"]["total"] > 0
    assert len(data["answers"]) <= 3
    assert data["coordination"] is None and data["answers"][0]["reached_from"] is None
    both = client.post("/v1/ask", headers=READER, json={
        **body, "question": "Which diseases present both tall stature and joint hypermobility?"})
    assert both.status_code == 200, both.text
    shared = both.json()
    assert shared["coordination"] == "all"
    assert shared["answers"][0]["uid"] == toy_graph["OMIM:154700"]
    assert shared["answers"][0]["reached_from"] == [toy_graph["HP:0000098"],
                                                    toy_graph["HP:0001382"]]


def test_a_batch_answers_each_question_as_a_single_ask_does(
    client: TestClient, toy_graph: dict[str, str], domain: str
) -> None:
    questions = ["Which genes are associated with Marfan syndrome?",
                 "Who is the mayor of Springfield?",
                 "What phenotypes does Marfan syndrome present?",
                 "How many phenotypes does Marfan syndrome present?",
                 "Which diseases present both tall stature and joint hypermobility?"]
    options = {"domain": domain, "top_k": 5, "mode": "zero-shot"}
    batch = client.post("/v1/ask/batch", json={"questions": questions, **options},
                        headers=READER)
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["question"] for r in results] == questions
    assert batch.json()["timings_ms"]["total"] > 0
    for question, result in zip(questions, results, strict=True):
        single = client.post("/v1/ask", json={"question": question, **options},
                             headers=READER).json()
        for key in ("reason", "count", "coordination", "models"):
            assert result[key] == single[key], (question, key)
        # one MiniLM batch pads the questions to one length: scores agree to float precision
        assert [(a["uid"], a["relation_path"], a["evidence"]) for a in result["answers"]] == [
            (a["uid"], a["relation_path"], a["evidence"]) for a in single["answers"]], question
        assert [a["score"] for a in result["answers"]] == pytest.approx(
            [a["score"] for a in single["answers"]], abs=1e-4), question
        assert [(m["mention"], [c["uid"] for c in m["candidates"]])
                for m in result["linked_entities"]] == [
            (m["mention"], [c["uid"] for c in m["candidates"]])
            for m in single["linked_entities"]], question
    assert results[0]["answers"][0]["uid"] == toy_graph["NCBIGene:2200"]
    assert results[1]["answers"] == [] and "no entity" in results[1]["reason"]
    assert all(r["timings_ms"]["link_encode"] > 0 for r in results)
    # /metrics counts each question's outcome, batched or not (five of each here)
    metrics = client.get("/metrics").text
    label = f'kgr_questions_total{{domain="{domain}",mode="zero-shot",outcome='
    assert f'{label}"answered"}} 8.0\n' in metrics and f'{label}"no_entity"}} 2.0\n' in metrics

    # every question is checked before any is answered
    blank = client.post("/v1/ask/batch", json={"questions": [questions[0], "  "], **options},
                        headers=READER)
    assert blank.status_code == 422 and "question 2" in blank.json()["error"]["message"]
    for body in ({"questions": []}, {"questions": ["Why?"] * 65},
                 {"questions": ["x" * 501]}, {"questions": ["Why?"], "top_k": 0}):
        assert client.post("/v1/ask/batch", json=body, headers=READER).status_code == 422, body
    unknown = client.post("/v1/ask/batch", json={"questions": questions, "domain": "no_such"},
                          headers=READER)
    assert unknown.status_code == 404
    assert client.post("/v1/ask/batch", json={"questions": questions}).status_code == 401


def test_how_many_questions_get_a_count_of_the_whole_reading(
    client: TestClient, toy_graph: dict[str, str], domain: str
) -> None:
    marfan = "OMIM:154700"
    phenotypes = {t for s, rel, t in TOY_RELATIONS if s == marfan and rel == "HAS_PHENOTYPE"}
    body = {"question": "How many phenotypes does Marfan syndrome present?", "domain": domain,
            "top_k": 1, "mode": "zero-shot"}
    data = client.post("/v1/ask", json=body, headers=READER).json()
    assert len(data["answers"]) == 1  # the list is cut to top_k; the count is not
    assert data["count"] == {"value": len(phenotypes), "exact": True, "type": "Phenotype",
                             "topics": [toy_graph[marfan]], "relation_path": ["HAS_PHENOTYPE"]}
    # a plain question has no count unless asked for
    plain = {**body, "question": "What phenotypes does Marfan syndrome present?"}
    assert client.post("/v1/ask", json=plain, headers=READER).json()["count"] is None
    asked = client.post("/v1/ask", json={**plain, "count": True}, headers=READER).json()
    assert asked["count"]["value"] == len(phenotypes)
    assert client.post("/v1/ask", json={**body, "count": False},
                       headers=READER).json()["count"] is None


def test_questions_about_two_entities_get_the_paths_between_them(
    client: TestClient, toy_graph: dict[str, str], domain: str
) -> None:
    ask = lambda question, **extra: client.post(  # noqa: E731
        "/v1/ask", headers=READER, json={"question": question, "domain": domain,
                                         "mode": "zero-shot", **extra}).json()
    stored = {(toy_graph[s], rel, toy_graph[t]) for s, rel, t in TOY_RELATIONS}
    direct = ask("Does Marfan syndrome present arachnodactyly?")
    assert direct["check"] == {"subject": toy_graph["OMIM:154700"],
                               "object": toy_graph["HP:0001166"], "connected": True, "hops": 1,
                               "relation_path": ["HAS_PHENOTYPE"],
                               "asked_relation": "HAS_PHENOTYPE", "asked_forward": True,
                               "holds": True}
    assert [a["uid"] for a in direct["answers"]] == [toy_graph["HP:0001166"]]
    assert direct["answers"][0]["explanation"].startswith("Yes, directly")
    # the same link asked the other way round is no "yes"; asked in the passive, it is
    backwards = ask("Does arachnodactyly present Marfan syndrome?")
    assert backwards["check"]["relation_path"] == ["^HAS_PHENOTYPE"]
    assert backwards["check"]["asked_forward"] is True and backwards["check"]["holds"] is False
    assert backwards["answers"][0]["explanation"].startswith(
        "Linked directly by 'has phenotype', but the other way round")
    passive = ask("Is arachnodactyly seen in Marfan syndrome?")
    assert passive["check"]["asked_relation"] == "HAS_PHENOTYPE"
    assert passive["check"]["asked_forward"] is False and passive["check"]["holds"] is True
    # linked directly, but not by the relation the question asks about: no "yes"
    other = ask("Does Marfan syndrome present FBN1?")
    assert other["check"]["relation_path"] == ["^ASSOCIATED_WITH"]
    assert other["check"]["asked_relation"] == "HAS_PHENOTYPE"
    assert other["check"]["holds"] is False
    assert other["answers"][0]["explanation"].startswith("Linked directly, but by")
    # "how are X and Y related" asks no one relation
    how = ask("How is FBN1 related to Marfan syndrome?")
    assert how["check"]["asked_relation"] is None and how["check"]["holds"] is None
    assert how["check"]["relation_path"] == ["ASSOCIATED_WITH"]
    # no direct link: the shortest connection (3 hops through the shared phenotype), every
    # hop of it recorded in the graph, and no "yes"
    far = ask("Is COL5A1 associated with Marfan syndrome?")
    assert far["check"]["connected"] and far["check"]["hops"] == 3
    assert far["answers"][0]["explanation"].startswith("Not directly")
    for path in far["answers"][0]["evidence"]:
        hops = [(h["source"], h["type"], h["target"]) for h in path["relations"]]
        assert len(hops) == 3 and set(hops) <= stored
    # within fewer hops than that, they are not linked: no answer, and the reason
    near = ask("Is COL5A1 associated with Marfan syndrome?", max_hops=2)
    assert near["answers"] == [] and near["check"]["connected"] is False
    assert near["check"]["holds"] is False
    assert "no recorded path of at most 2 hops" in near["reason"]
    # a wh-question with two entities is still answered by the path search
    assert ask("Which genes are associated with Marfan syndrome?")["check"] is None


def test_ask_errors(client: TestClient, toy_graph: dict[str, str], domain: str) -> None:
    ask = lambda body, headers=READER: client.post("/v1/ask", json=body,  # noqa: E731
                                                   headers=headers)
    assert ask({"question": "Which genes?"}, headers={}).status_code == 401
    empty = ask({"question": "", "domain": domain})
    assert empty.status_code == 422 and error_code(empty) == "invalid_request"
    blank = ask({"question": "   ", "domain": domain})
    assert blank.status_code == 422 and error_code(blank) == "invalid_input"
    assert ask({"question": "x" * 501, "domain": domain}).status_code == 422
    assert ask({"question": "Why?", "domain": domain, "max_hops": 4}).status_code == 422
    misspelt = ask({"question": "Why?", "domain": domain, "max_hop": 1})
    assert misspelt.status_code == 422 and "max_hop" in misspelt.json()["error"]["message"]
    unknown = ask({"question": "Which genes cause Marfan syndrome?", "domain": "no_such_domain"})
    assert unknown.status_code == 404 and error_code(unknown) == "not_found"
    nothing = ask({"question": "Who is the mayor of Springfield?", "domain": domain})
    assert nothing.status_code == 200
    assert nothing.json()["answers"] == [] and "no entity" in nothing.json()["reason"]
    # without a domain, a question that names no entity of any domain is answered the same way
    nowhere = ask({"question": "Which zorblaxes frobnicate the quuxwerk?"})
    assert nowhere.status_code == 200, nowhere.text
    assert nowhere.json()["answers"] == [] and nowhere.json()["domain"] is None
    assert "no entity of any domain" in nowhere.json()["reason"]
    assert domain in nowhere.json()["reason"]
    untrained = ask({"question": "Which genes are associated with Marfan syndrome?",
                     "domain": domain, "mode": "fine-tuned"})
    assert untrained.status_code == 409 and error_code(untrained) == "model_not_ready"
    no_encoder = ask({"question": "Which genes are associated with Marfan syndrome?",
                      "domain": domain, "mode": "zero-shot", "predicted_links": True})
    assert no_encoder.status_code == 409 and error_code(no_encoder) == "model_not_ready"
    assert "encoder" in no_encoder.json()["error"]["message"]
    not_a_flag = ask({"question": "Which genes?", "domain": domain, "predicted_links": "maybe"})
    assert not_a_flag.status_code == 422


def test_refresh_shows_a_property_only_write(
    client: TestClient, settings: Settings, driver: Driver, toy_graph: dict[str, str],
    domain: str,
) -> None:
    """A new alias written outside kgr changes no count, so the service's alias index keeps
    its old view until an admin asks it to refresh."""
    body = {"question": "Which genes are associated with Lutz-Marfan disease?", "domain": domain,
            "mode": "zero-shot"}
    before = client.post("/v1/ask", json=body, headers=READER).json()
    assert not any(m["method"] in ("name", "alias") for m in before["linked_entities"])
    driver.execute_query("MATCH (n:Entity {uid: $uid}) SET n.aliases = "
                         "coalesce(n.aliases, []) + ['Lutz-Marfan disease']",
                         uid=toy_graph["OMIM:154700"], database_=settings.neo4j_database)
    stale = client.post("/v1/ask", json=body, headers=READER).json()
    assert not any(m["method"] in ("name", "alias") for m in stale["linked_entities"])
    assert client.post("/v1/ask/refresh", headers=READER).status_code == 403
    assert client.post("/v1/ask/refresh", headers=ADMIN).json() == {"refreshed": True}
    fresh = client.post("/v1/ask", json=body, headers=READER).json()
    assert fresh["linked_entities"][0]["method"] == "alias"
    assert fresh["linked_entities"][0]["candidates"][0]["uid"] == toy_graph["OMIM:154700"]
    assert fresh["answers"][0]["uid"] == toy_graph["NCBIGene:2200"]


def test_train_and_eval_run_as_admin_jobs(
    client: TestClient, driver: Driver, toy_graph: dict[str, str], domain: str
) -> None:
    body = {"domain": domain, "generate_per_hop": 6, "epochs": 3, "graph_embeddings": False}
    assert client.post("/v1/train/qa", json=body, headers=READER).status_code == 403
    missing = client.post("/v1/train/qa", json={**body, "domain": "no_such_domain"},
                          headers=ADMIN)
    assert missing.status_code == 404
    job = client.post("/v1/train/qa", json=body, headers=ADMIN)
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(f"/v1/jobs/{job_id}", headers=ADMIN).json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    assert state["status"] == "succeeded", state
    assert state["result"]["version"] and "text" in state["result"]
    answer = client.post("/v1/ask", json={"question": "Which genes are associated with Marfan "
                                          "syndrome?", "domain": domain}, headers=READER).json()
    assert answer["mode"] == "fine-tuned"
    assert answer["models"]["qa"] == state["result"]["version"]

    evaluation = client.post("/v1/eval/qa", json={
        "domain": domain, "modes": ["zero-shot"],
        "data": [{"question": "Which genes are associated with Marfan syndrome?",
                  "answers": ["FBN1"], "hops": 1}]}, headers=ADMIN)
    assert evaluation.status_code == 202
    eval_id = evaluation.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"/v1/jobs/{eval_id}", headers=ADMIN).json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    assert state["status"] == "succeeded", state
    metrics = state["result"]["results"]["zero-shot"]["metrics"]
    assert metrics["1"] == {"n": 1, "hits@1": 1.0, "hits@5": 1.0, "mrr": 1.0}

    # `kgr serve` warms the QA models up at startup, in the background: the trained domain is
    # loaded and has answered a question before the first user asks one
    warm = create_app(client.app.state.settings, driver, warm_up=True)  # type: ignore[attr-defined]
    with TestClient(warm) as warm_client:
        deadline = time.monotonic() + 60
        service = None
        while time.monotonic() < deadline:
            service = getattr(warm.state, "qa_service", None)
            if service is not None and service.warmed_up is not None:
                break
            time.sleep(0.2)
        assert service is not None and service.warmed_up is not None
        assert domain in service.warmed_up
        ready = warm_client.get("/readyz").json()
        assert ready["status"] == "ready" and domain in ready["qa_warm_up"]
    assert client.get("/readyz").json()["qa_warm_up"] == "off"
