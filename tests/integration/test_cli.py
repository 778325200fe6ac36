"""The kgr CLI against the real Neo4j: tables for people, --json for scripts, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.settings import Settings, get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("KGR_HOME", str(settings.home))
    monkeypatch.setenv("KGR_BOLT_PORT", str(settings.bolt_port))
    if settings.neo4j_uri:
        monkeypatch.setenv("NEO4J_URI", settings.neo4j_uri)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_every_command_has_help(runner: CliRunner) -> None:
    for args in (["--help"], ["neo4j", "--help"], ["entity", "search", "--help"],
                 ["paths", "--help"], ["serve", "--help"], ["keys", "create", "--help"],
                 ["models", "--help"], ["models", "activate", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.output


def test_entity_show_json_and_table(runner: CliRunner, toy_graph: dict[str, str]) -> None:
    uid = toy_graph["OMIM:154700"]
    result = runner.invoke(app, ["entity", "show", uid, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "Marfan syndrome"
    table = runner.invoke(app, ["entity", "show", uid])
    assert "Marfan syndrome" in table.output and "Disease" in table.output


def test_search_neighbors_and_paths(runner: CliRunner, toy_graph: dict[str, str],
                                    domain: str) -> None:
    found = runner.invoke(app, ["entity", "search", "arachnodactyly", "-d", domain, "--json"])
    assert json.loads(found.stdout)["items"][0]["uid"] == toy_graph["HP:0001166"]
    neighbours = runner.invoke(app, ["entity", "neighbors", toy_graph["NCBIGene:2200"],
                                     "--direction", "out", "--json"])
    assert {n["entity"]["name"] for n in json.loads(neighbours.stdout)} == {
        "Marfan syndrome", "Arachnodactyly"}
    paths = runner.invoke(app, ["paths", toy_graph["NCBIGene:2200"], toy_graph["HP:0000098"]])
    assert paths.exit_code == 0
    assert "FBN1 -ASSOCIATED_WITH-> Marfan syndrome -HAS_PHENOTYPE-> Tall stature" in " ".join(
        paths.output.split())


def test_ask_prints_the_verdict_of_a_yes_no_question(runner: CliRunner,
                                                     toy_graph: dict[str, str],
                                                     domain: str) -> None:
    right = runner.invoke(app, ["ask", "Does Marfan syndrome present arachnodactyly?",
                                "-d", domain, "--mode", "zero-shot"])
    assert right.exit_code == 0, right.output
    assert "verdict: yes (asked: HAS_PHENOTYPE, subject -> object)" in right.output
    backwards = runner.invoke(app, ["ask", "Does arachnodactyly present Marfan syndrome?",
                                    "-d", domain, "--mode", "zero-shot"])
    assert "verdict: no (asked: HAS_PHENOTYPE, subject -> object)" in backwards.output
    assert "but the other way round" in " ".join(backwards.output.split())


def test_ask_a_file_of_questions_answers_each_line_in_order(
    runner: CliRunner, toy_graph: dict[str, str], domain: str, tmp_path: Path
) -> None:
    questions = ["Which genes are associated with Marfan syndrome?",
                 "Who is the mayor of Springfield?",
                 "What phenotypes does Marfan syndrome present?"]
    lines = tmp_path / "questions.txt"
    lines.write_text("\n".join([questions[0], "", questions[1], questions[2]]) + "\n")
    asked = runner.invoke(app, ["ask", "--file", str(lines), "-d", domain, "--mode",
                                "zero-shot", "--json"])
    assert asked.exit_code == 0, asked.output
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    assert [a["question"] for a in answers] == questions
    assert answers[0]["answers"][0]["uid"] == toy_graph["NCBIGene:2200"]
    assert answers[1]["answers"] == [] and "no entity" in answers[1]["reason"]
    single = runner.invoke(app, ["ask", questions[2], "-d", domain, "--mode", "zero-shot",
                                 "--json"])
    assert [a["uid"] for a in answers[2]["answers"]][:5] == [
        a["uid"] for a in json.loads(single.stdout)["answers"]]
    table = runner.invoke(app, ["ask", "-f", str(lines), "-d", domain, "--mode", "zero-shot"])
    assert table.exit_code == 0 and "FBN1" in table.output.splitlines()[0]
    for args in (["ask", questions[0], "--file", str(lines)], ["ask"],
                 ["ask", "--file", str(tmp_path / "missing.txt")]):
        wrong = runner.invoke(app, [*args, "-d", domain])
        assert wrong.exit_code == 4 and wrong.output.strip(), (args, wrong.output)


def test_errors_have_exit_codes_and_messages(runner: CliRunner,
                                             toy_graph: dict[str, str]) -> None:
    missing = runner.invoke(app, ["entity", "show", "nope:missing"])
    assert missing.exit_code == 3 and "no entity" in missing.output
    bad = runner.invoke(app, ["entity", "neighbors", toy_graph["OMIM:154700"], "-r",
                              "X`) DETACH DELETE n //"])
    assert bad.exit_code == 4 and "unknown relationship type" in bad.output


def test_keys_are_stored_hashed(runner: CliRunner, settings: Settings, tmp_path,  # type: ignore[no-untyped-def]
                                monkeypatch: pytest.MonkeyPatch) -> None:
    keys_file = tmp_path / "keys.json"
    monkeypatch.setenv("KGR_API_KEYS_FILE", str(keys_file))
    get_settings.cache_clear()
    result = runner.invoke(app, ["keys", "create", "--role", "reader", "--name", "ci"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("kgr_") and key not in keys_file.read_text()
    listing = runner.invoke(app, ["keys", "list"])
    assert "ci" in listing.output and "reader" in listing.output


def test_json_output_is_only_json_and_progress_goes_to_stderr(
    runner: CliRunner, toy_graph: dict[str, str], domain: str, tmp_path: Path
) -> None:
    rows = tmp_path / "eval.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in [
        {"question": "Which genes are associated with Marfan syndrome?", "answers": ["FBN1"],
         "hops": 1},
        {"question": "What phenotypes does Marfan syndrome present?",
         "answers": ["Arachnodactyly", "Tall stature", "Joint hypermobility"], "hops": 1},
    ]) + "\n")
    result = runner.invoke(app, ["eval", "qa", "-d", domain, "--data", str(rows), "--mode",
                                 "zero-shot", "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert evaluated["metrics"]["1"]["n"] == 2 and evaluated["mode"] == "zero-shot"
    # no terminal here: the progress is plain lines on stderr, the last one at 100%
    progress = result.stderr.splitlines()
    assert progress and progress[-1].startswith(f"eval {domain}: 100%"), result.stderr


def test_subgraph_exports_graphml(runner: CliRunner, toy_graph: dict[str, str]) -> None:
    import networkx as nx

    exported = runner.invoke(app, ["subgraph", toy_graph["NCBIGene:2200"], "--hops", "1",
                                   "--format", "graphml"])
    assert exported.exit_code == 0, exported.output
    back = nx.parse_graphml(exported.stdout, force_multigraph=True)
    assert sorted((back.nodes[s]["name"], d["type"], back.nodes[t]["name"])
                  for s, t, d in back.edges(data=True)) == [
        ("FBN1", "ASSOCIATED_PHENOTYPE", "Arachnodactyly"),
        ("FBN1", "ASSOCIATED_WITH", "Marfan syndrome")]
    linked = runner.invoke(app, ["subgraph", toy_graph["NCBIGene:2200"], "--hops", "1",
                                 "--format", "node-link"])
    assert len(json.loads(linked.stdout)["edges"]) == 2
    wrong = runner.invoke(app, ["subgraph", toy_graph["NCBIGene:2200"], "--format", "dot"])
    assert wrong.exit_code == 2
