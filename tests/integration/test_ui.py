"""The graph view (/ui) in a real headless chromium over a real uvicorn server and Neo4j: enter
the key, search an entity, expand it by clicking nodes, ask a question and check that the
drawn graph holds every node and edge of the answers' evidence. Screenshots go to
tests/artifacts/ (gitignored).

Debian's chromium is driven by Playwright with ``executable_path`` (no browser download);
``scripts/setup.sh`` installs it. Without it, or without Playwright, the test skips.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from neo4j import Driver

from api.main import create_app
from core.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.ui]

CHROMIUM = Path(os.environ.get("KGR_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
READER_KEY = "ui-test-reader-key"
ASK_TIMEOUT_MS = 180_000  # the first question loads the text encoder


@dataclass(frozen=True)
class LiveServer:
    url: str
    domain: str
    uids: dict[str, str]


def chromium_or_skip() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install -y chromium "
                    "(scripts/setup.sh does), or set KGR_CHROMIUM")
    return sync_playwright


@pytest.fixture
def live_server(settings: Settings, driver: Driver, domain: str,
                toy_graph: dict[str, str]) -> Iterator[LiveServer]:
    """The API in uvicorn on a free port, in a thread of the test process."""
    app = create_app(settings.model_copy(update={"api_keys": f"reader:{READER_KEY}"}), driver)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ui-test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", domain, toy_graph)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        shutil.rmtree(settings.artifacts_dir / "qa" / domain, ignore_errors=True)


def graph_ids(page: Any) -> tuple[set[str], set[str]]:
    nodes, edges = page.evaluate(
        "() => [kgrGraph.nodes().map(n => n.id()), kgrGraph.edges().map(e => e.id())]")
    return set(nodes), set(edges)


def click_node(page: Any, uid: str) -> None:
    """A real mouse click on the node where cytoscape drew it."""
    box = page.locator("#graph").bounding_box()
    x, y = page.evaluate("(uid) => { const p = kgrGraph.getElementById(uid).renderedPosition();"
                         " return [p.x, p.y]; }", uid)
    page.mouse.click(box["x"] + x, box["y"] + y)


def wait_idle(page: Any) -> None:
    """Until the page's status line is empty again (a call finished) or shows an error."""
    page.wait_for_function("() => { const s = document.getElementById('status');"
                           " return s.textContent === '' || s.className === 'error'; }",
                           timeout=ASK_TIMEOUT_MS)
    assert page.locator("#status").text_content() == "", page.locator("#status").text_content()


def evidence_of(answers: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """The node and edge ids that an /v1/ask response's evidence names (the page's ids)."""
    nodes = {a["uid"] for a in answers}
    edges = set()
    for answer in answers:
        for path in answer["evidence"]:
            for hop in path["relations"]:
                nodes |= {hop["source"], hop["target"]}
                edges.add(f"{hop['source']}|{hop['type']}|{hop['target']}")
    return nodes, edges


def open_page(browser: Any, server: LiveServer) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 850})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{server.url}/ui")
    page.wait_for_function("() => window.kgrGraph !== undefined")
    return page, errors


def enter_key(page: Any, server: LiveServer) -> None:
    page.fill("#api-key", READER_KEY)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector(f"#domain option[value='{server.domain}']", state="attached")
    page.select_option("#domain", server.domain)


def test_search_expand_and_ask_draw_the_evidence_graph(live_server: LiveServer) -> None:
    sync_playwright = chromium_or_skip()
    uids = live_server.uids
    marfan, fbn1 = uids["OMIM:154700"], uids["NCBIGene:2200"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page, errors = open_page(browser, live_server)

        # a wrong key is refused with the API's message, and not used for anything
        page.fill("#api-key", "not-a-key")
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#status.error")
        assert "invalid api key" in page.locator("#status").text_content().lower()
        assert page.evaluate("() => sessionStorage.getItem('kgr.apiKey')") is None
        errors.clear()  # the browser logs the refused request itself
        enter_key(page, live_server)
        assert page.evaluate("() => sessionStorage.getItem('kgr.apiKey')") == READER_KEY

        # search, open the hit: the entity and its 4 neighbours (3 phenotypes, FBN1)
        page.fill("#search-q", "Marfan")
        page.click("#search-form button[type=submit]")
        page.click(f"#search-results button[data-uid='{marfan}']")
        wait_idle(page)
        nodes, edges = graph_ids(page)
        assert nodes == {marfan, fbn1, uids["HP:0001166"], uids["HP:0000098"],
                         uids["HP:0001382"]}
        assert f"{fbn1}|ASSOCIATED_WITH|{marfan}" in edges and len(edges) == 4

        # clicking FBN1 in the graph expands it: its link to arachnodactyly appears
        click_node(page, fbn1)
        page.wait_for_function(
            "(id) => kgrGraph.getElementById(id).nonempty()",
            arg=f"{fbn1}|ASSOCIATED_PHENOTYPE|{uids['HP:0001166']}")
        wait_idle(page)
        assert page.locator("#details").text_content().count("FBN1") == 1
        assert len(graph_ids(page)[1]) == 5
        page.screenshot(path=str(ARTIFACTS / "ui-expand.png"))

        # ask: the graph is the answers' evidence, drawn with typed, coloured nodes
        question = "What phenotypes does Marfan syndrome present?"
        page.fill("#question", question)
        page.click("#ask-form button[type=submit]")
        wait_idle(page)
        response = httpx.post(f"{live_server.url}/v1/ask", headers={"X-API-Key": READER_KEY},
                              json={"question": question, "domain": live_server.domain,
                                    "top_k": 5}, timeout=120).json()
        answers = response["answers"]
        assert answers, response
        assert uids["HP:0001166"] in {a["uid"] for a in answers}
        want_nodes, want_edges = evidence_of(answers)
        nodes, edges = graph_ids(page)
        assert want_nodes <= nodes and want_edges <= edges
        assert marfan in nodes
        shown = page.locator("#answers li").all_text_contents()
        assert len(shown) == len(answers)
        assert all(t.startswith(a["name"]) for t, a in zip(shown, answers, strict=True))
        # every node got its type (evidence names no types: the page looked them up)
        types = page.evaluate("() => kgrGraph.nodes().map(n => [n.id(), n.data('type')])")
        assert dict(types)[marfan] == "Disease"
        assert {t for _, t in types} <= {"Disease", "Phenotype", "Gene"} and all(
            t for _, t in types)
        assert page.evaluate("(uid) => kgrGraph.getElementById(uid).hasClass('topic')", marfan)
        assert not page.evaluate("() => kgrGraph.edges('.predicted').length")

        # clicking an answer highlights its evidence and dims the rest
        page.click("#answers li:first-child button")
        first_nodes, first_edges = evidence_of(answers[:1])
        highlighted = set(page.evaluate("() => kgrGraph.edges('.highlight').map(e => e.id())"))
        assert highlighted == first_edges
        dimmed = set(page.evaluate("() => kgrGraph.nodes('.dimmed').map(n => n.id())"))
        assert dimmed == nodes - first_nodes
        assert page.locator("#answers li.active").count() == 1
        page.wait_for_timeout(400)  # the zoom to the evidence is animated
        page.screenshot(path=str(ARTIFACTS / "ui.png"))
        assert errors == []
        browser.close()


def test_predicted_hops_are_drawn_dashed(live_server: LiveServer) -> None:
    """The server's real answer with one hop marked predicted (as the graph encoder's links
    are): that edge is drawn dashed with its probability; recorded edges stay solid."""
    sync_playwright = chromium_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page, errors = open_page(browser, live_server)
        marked: list[dict[str, Any]] = []

        def mark_first_hop(route: Any) -> None:
            response = route.fetch(timeout=ASK_TIMEOUT_MS)
            body = response.json()
            hop = body["answers"][0]["evidence"][0]["relations"][0]
            hop.update(predicted=True, probability=0.87)
            marked.append(hop)
            route.fulfill(response=response, json=body)

        page.route("**/v1/ask", mark_first_hop)
        enter_key(page, live_server)
        page.fill("#question", "What phenotypes does Marfan syndrome present?")
        page.click("#ask-form button[type=submit]")
        wait_idle(page)
        hop = marked[0]
        edge_id = f"{hop['source']}|{hop['type']}|{hop['target']}"
        style = page.evaluate("(id) => { const e = kgrGraph.getElementById(id);"
                              " return [e.style('line-style'), e.data('label')]; }", edge_id)
        assert style == ["dashed", f"{hop['type']} (87%)"]
        solid = page.evaluate("() => kgrGraph.edges().not('.predicted')"
                              ".map(e => e.style('line-style'))")
        assert solid and set(solid) == {"solid"}
        assert "predicted" in page.locator("#answers li:first-child").text_content()
        page.screenshot(path=str(ARTIFACTS / "ui-predicted.png"))
        assert errors == []
        browser.close()
