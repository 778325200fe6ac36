"""/metrics without a database: the text format of prometheus-client, escaped labels, and the
ASGI middleware's counts by route template and status."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import Metrics, MetricsMiddleware


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_label_values_are_escaped_and_parse_back() -> None:
    metrics = Metrics()
    odd = 'fin"ance\\x\nnew'
    metrics.observe_answer(odd, "zero-shot", "answered")
    metrics.observe_answer(odd, "zero-shot", "answered")
    metrics.observe_answer(None, "fine-tuned", "no_entity")
    parsed = samples(metrics.render().decode())
    assert parsed[("kgr_questions_total", (("domain", odd), ("mode", "zero-shot"),
                                           ("outcome", "answered")))] == 2
    assert parsed[("kgr_questions_total", (("domain", "none"), ("mode", "fine-tuned"),
                                           ("outcome", "no_entity")))] == 1
    # the process metrics come with the library
    assert any(name == "process_cpu_seconds_total" for name, _ in parsed)


def test_middleware_counts_by_route_template_and_status() -> None:
    app = FastAPI()
    metrics = Metrics()
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/items/{item}")
    def item(item: str) -> dict[str, str]:
        if item == "missing":
            raise HTTPException(404, "no such item")
        return {"item": item}

    @app.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b"]), media_type="text/plain")

    with TestClient(app) as client:
        for name in ("a", "b", "missing"):
            client.get(f"/items/{name}")
        assert client.get("/stream").text == "ab"
        client.get("/nowhere")
    parsed = samples(metrics.render().decode())

    def requests(route: str, status: str) -> float:
        return parsed[("kgr_requests_total",
                       (("method", "GET"), ("route", route), ("status", status)))]

    assert requests("/items/{item}", "200") == 2 and requests("/items/{item}", "404") == 1
    assert requests("/stream", "200") == 1 and requests("unmatched", "404") == 1
    assert parsed[("kgr_request_seconds_count", (("route", "/items/{item}"),))] == 3
    assert parsed[("kgr_request_seconds_bucket", (("le", "+Inf"), ("route", "/stream")))] == 1
