"""The Python client (api/client.py) and `kgr ask --url` against a real kgr server: uvicorn in
a thread, over HTTP, on the test Neo4j."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from neo4j import Driver
from typer.testing import CliRunner

from api.client import KgrClient
from api.exceptions import AuthenticationError, PermissionDeniedError, ServerUnreachableError
from api.main import create_app
from cli.main import app as cli_app
from core.errors import InvalidInputError, NotFoundError
from core.settings import Settings

pytestmark = pytest.mark.integration

READER_KEY = "client-reader-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(settings: Settings, driver: Driver) -> Iterator[str]:
    app = create_app(settings.model_copy(update={"api_keys": f"reader:{READER_KEY}"}), driver)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, name="kgr-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(server_url: str) -> Iterator[KgrClient]:
    with KgrClient(server_url, READER_KEY) as kgr:
        yield kgr


def test_the_client_reads_the_graph(client: KgrClient, toy_graph: dict[str, str],
                                    domain: str) -> None:
    marfan, fbn1 = toy_graph["OMIM:154700"], toy_graph["NCBIGene:2200"]
    assert client.health()["status"] == "ready"
    assert client.entity(marfan).name == "Marfan syndrome"
    assert client.search("arachnodactyly", domain=domain).items[0].uid == \
        toy_graph["HP:0001166"]
    assert {n.entity.name for n in client.neighbors(fbn1, direction="out")} == {
        "Marfan syndrome", "Arachnodactyly"}
    assert [n.uid for n in client.paths(fbn1, toy_graph["HP:0000098"])[0].nodes] == [
        fbn1, marfan, toy_graph["HP:0000098"]]
    sub = client.subgraph([marfan], hops=1)
    assert {r.type for r in sub.relations} == {"HAS_PHENOTYPE", "ASSOCIATED_WITH"}


def test_the_client_asks(client: KgrClient, toy_graph: dict[str, str], domain: str) -> None:
    answer = client.ask("Which genes are associated with Marfan syndrome?", domain=domain,
                        mode="zero-shot", top_k=3)
    assert answer.answers[0].uid == toy_graph["NCBIGene:2200"]
    batch = client.ask_batch(["Which genes are associated with Marfan syndrome?",
                              "Who is the mayor of Springfield?"], domain=domain,
                             mode="zero-shot")
    assert [r.answers[0].uid if r.answers else None for r in batch.results] == [
        toy_graph["NCBIGene:2200"], None]


def test_error_answers_raise_kgr_errors(client: KgrClient, server_url: str,
                                        toy_graph: dict[str, str]) -> None:
    with pytest.raises(NotFoundError, match="no entity"):
        client.entity("nope:missing")
    with pytest.raises(InvalidInputError):  # the API's own validation (limit > 1000)
        client.neighbors(toy_graph["OMIM:154700"], limit=5000)
    with pytest.raises(InvalidInputError, match="unknown relationship type"):
        client.neighbors(toy_graph["OMIM:154700"], relation_types=["NO_SUCH_TYPE"])
    with KgrClient(server_url, "wrong-key") as stranger, pytest.raises(AuthenticationError):
        stranger.entity(toy_graph["OMIM:154700"])
    with pytest.raises(PermissionDeniedError):  # a reader key on an admin endpoint
        client._json("GET", "/v1/jobs")
    with KgrClient(f"http://127.0.0.1:{free_port()}") as nobody, \
            pytest.raises(ServerUnreachableError):
        nobody.health()


def test_kgr_ask_url_answers_through_the_server(server_url: str, toy_graph: dict[str, str],
                                                domain: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # nothing here could reach Neo4j: only the server answers
    monkeypatch.setenv("NEO4J_URI", "neo4j://127.0.0.1:1")
    monkeypatch.setenv("KGR_URL", server_url)
    monkeypatch.setenv("KGR_API_KEY", READER_KEY)
    runner = CliRunner()
    asked = runner.invoke(cli_app, ["ask", "Which genes are associated with Marfan syndrome?",
                                    "-d", domain, "--mode", "zero-shot", "--json"])
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.stdout)["answers"][0]["uid"] == toy_graph["NCBIGene:2200"]
    table = runner.invoke(cli_app, ["ask", "Does Marfan syndrome present arachnodactyly?",
                                    "-d", domain, "--mode", "zero-shot"])
    assert "verdict: yes" in table.output, table.output
    refused = runner.invoke(cli_app, ["ask", "Which genes?", "-d", domain, "--key", "wrong"])
    assert refused.exit_code == 77 and "invalid API key" in refused.output
    missing = runner.invoke(cli_app, ["ask", "Which genes?", "-d", "no_such_domain"])
    assert missing.exit_code == 3, missing.output
