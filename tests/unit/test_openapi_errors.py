"""The OpenAPI document names every route's error answers with kgr's real error body, and the
main routes carry request examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.errors import ErrorBody
from api.main import create_app
from core.settings import Settings

ERROR_REF = "#/components/schemas/ErrorBody"


def _app(tmp_path: Path) -> Any:
    return create_app(Settings(home=tmp_path, api_keys="reader:r", audit_enabled=False,
                               neo4j_uri="neo4j://127.0.0.1:1", rate_limit_rps=0.01,
                               rate_limit_burst=2))


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, ops in doc["paths"].items()
            for method, op in ops.items()}


def test_every_route_documents_its_errors_with_the_error_body(tmp_path: Path) -> None:
    doc = _app(tmp_path).openapi()
    operations = _operations(doc)
    assert len(operations) > 25
    for (method, path), op in operations.items():
        responses = op["responses"]
        for status, response in responses.items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
        if path in ("/healthz", "/metrics"):
            assert not [s for s in responses if int(s) >= 400], path
            continue
        assert "503" in responses, (method, path)
        if path == "/readyz":
            continue
        for status in ("401", "403", "422", "429"):
            assert status in responses, (method, path, status)
    assert {"400", "404", "409"} <= set(operations[("POST", "/v1/ask")]["responses"])
    assert "400" not in operations[("GET", "/v1/entities/{uid}")]["responses"]
    assert {"400", "409", "413"} <= set(operations[("POST", "/v1/migrations")]["responses"])
    assert "404" in operations[("GET", "/v1/entities/{uid}")]["responses"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # FastAPI's own 422 body


def test_main_routes_have_request_examples(tmp_path: Path) -> None:
    doc = _app(tmp_path).openapi()
    schemas = doc["components"]["schemas"]
    for model in ("AskRequest", "AskBatchRequest", "SubgraphRequest"):
        assert schemas[model]["examples"], model
    params = {p["name"]: p for p in _operations(doc)[("GET", "/v1/entities")]["parameters"]}
    assert params["q"]["schema"]["examples"] == ["marfan"]


def test_error_answers_match_the_documented_body(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path)) as client:
        answers = [client.get("/v1/schema"),  # 401: no key
                   client.post("/v1/ask", json={"question": ""}, headers={"X-API-Key": "r"}),
                   client.post("/v1/ask", content=b"{not json", headers={
                       "X-API-Key": "r", "content-type": "application/json"})]
        answers.append(client.get("/v1/nothing", headers={"X-API-Key": "r"}))  # 429
        assert [a.status_code for a in answers] == [401, 422, 422, 429]
        for answer in answers:
            ErrorBody.model_validate(answer.json())
