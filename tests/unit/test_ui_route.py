"""/ui without a database: the page and its files are served without a key, with a strict
content security policy, stay out of the OpenAPI document and the audit trail, and are counted
in /metrics like any route; the vendored cytoscape.js is the version ui/package.json pins."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from api.audit import audit_path, read_audit
from api.main import create_app
from api.routes.ui import STATIC_DIR
from core.settings import PROJECT_ROOT, Settings


def make_client(home: Path) -> TestClient:
    # nothing listens on this port: a data route answers 401 before it would reach Neo4j
    settings = Settings(home=home, bolt_port=1, api_keys="reader:ui-test-key")
    return TestClient(create_app(settings))


def test_the_page_and_its_files_are_public_and_confined_to_the_api_origin(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        page = client.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        # the page loads its library from the API itself, never from a CDN
        assert 'src="ui/static/vendor/cytoscape.min.js"' in page.text
        assert "https://" not in page.text and "http://" not in page.text
        for name, kind in (("ui.js", "javascript"), ("ui.css", "text/css"),
                           ("vendor/cytoscape.min.js", "javascript")):
            response = client.get(f"/ui/static/{name}")
            assert response.status_code == 200, name
            assert kind in response.headers["content-type"], name
        assert client.get("/ui/static/nothing.js").status_code == 404
        assert client.get("/ui/static/../main.py").status_code == 404
        # the data the page asks for still needs the key
        assert client.get("/v1/schema").status_code == 401


def test_ui_is_not_in_openapi_nor_audited_but_is_counted(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        client.get("/ui")
        client.get("/ui/static/ui.js")
        client.get("/v1/schema")  # refused: audited
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith("/ui")]
        assert "/v1/entities" in paths
        metrics = client.get("/metrics").text
    records = list(read_audit(audit_path(client.app.state.settings)))  # type: ignore[attr-defined]
    assert [r["route"] for r in records] == ["/v1/schema"]
    assert 'route="/ui",status="200"' in metrics
    # FastAPI names no route for a mount: its files are counted under the one "unmatched" label
    assert 'route="unmatched",status="200"' in metrics


def test_the_vendored_library_is_the_pinned_version() -> None:
    pinned = json.loads((PROJECT_ROOT / "ui" / "package.json").read_text())
    version = pinned["dependencies"]["cytoscape"]
    assert (STATIC_DIR / "vendor" / "VERSION").read_text().split() == ["cytoscape", version]
    lock = json.loads((PROJECT_ROOT / "ui" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/cytoscape"]["version"] == version
    assert (STATIC_DIR / "vendor" / "cytoscape.LICENSE").read_text().startswith("Copyright")
    assert f'"{version}"' in (STATIC_DIR / "vendor" / "cytoscape.min.js").read_text()
