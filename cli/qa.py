"""QA commands: ``kgr train qa``, ``kgr train questions``, ``kgr eval qa`` and ``kgr ask``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from cli.common import console, handle_errors, open_driver, print_json, print_table, settings
from cli.groups import eval_app, train_app
from cli.progress import fraction_progress
from fusion.serve.schemas import MAX_BATCH_QUESTIONS, AskOptions, AskResponse

DOMAIN_OPT = typer.Option(..., "--domain", "-d", help="Domain, e.g. medical or finance")
JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts")


@train_app.command("questions")
@handle_errors
def generate(
    domain: str = DOMAIN_OPT,
    out: Path = typer.Option(..., "--out", help="JSONL file for the training questions"),
    eval_out: Path = typer.Option(None, "--eval-out",
                                  help="JSONL file for evaluation questions (held-out templates)"),
    per_hop: int = typer.Option(600, "--per-hop", help="Training questions per hop count (1-3)"),
    eval_per_hop: int = typer.Option(100, "--eval-per-hop"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Generate multi-hop questions with their answers from the domain graph."""
    from fusion.learn.questions import generate_splits, write_jsonl
    from fusion.model.graphdata import DomainGraph

    cfg = settings()
    with open_driver(cfg) as driver:
        graph = DomainGraph.load(driver, cfg.neo4j_database, domain)
    train, evaluation = generate_splits(graph, per_hop, eval_per_hop if eval_out else 0, seed)
    typer.echo(f"{write_jsonl(out, train)} training questions -> {out}")
    if eval_out:
        typer.echo(f"{write_jsonl(eval_out, evaluation)} evaluation questions -> {eval_out}")


@train_app.command("qa")
@handle_errors
def train_qa(
    domain: str = DOMAIN_OPT,
    data: Path = typer.Option(None, "--data", help="JSONL of {question, answers, "
                              "topic_entities?}; default: generated questions"),
    generate_per_hop: int = typer.Option(None, "--generate-per-hop",
                                         help="Generated training questions per hop count "
                                         "(default 600 without --data, 0 with it)"),
    epochs: int | None = typer.Option(None, "--epochs",
                                help="Most epochs (default: 12, or 30 below 200 questions)"),
    no_graph: bool = typer.Option(False, "--no-graph-embeddings",
                                  help="Train only the text-only head (ablation)"),
    init_active: bool = typer.Option(False, "--init-from-active",
                                     help="Start from the active model (few-shot fine-tuning)"),
    held_out: bool = typer.Option(
        False, "--hold-out-wording", help="Learn only the training phrasings, as the "
        "benchmarks do, so that `kgr eval qa` measures unseen wording (default: every "
        "phrasing, for serving)"),
    model: str = typer.Option(
        "auto", "--model", help="reasoner (learns hops and relations from your labelled "
        "rows), fusion (made for generated questions) or auto: the reasoner with --data "
        "alone, else fusion"),
    seed: int = typer.Option(0, "--seed"),
    json_out: bool = JSON_OPT,
) -> None:
    """Fine-tune a QA model; publishes a new active version (safetensors + config)."""
    from fusion.learn.questions import read_jsonl
    from usecases.train_qa import QATrainingRequest, train_qa

    cfg = settings()
    rows: list[dict[str, Any]] = list(read_jsonl(data, cfg.max_upload_bytes)) if data else []
    per_hop = generate_per_hop if generate_per_hop is not None else (0 if data else 600)
    request = QATrainingRequest(rows=rows, generate_per_hop=per_hop, model=model,  # type: ignore[arg-type]
                                epochs=epochs, use_graph=not no_graph, init_active=init_active,
                                hold_out_wording=held_out, seed=seed)
    with open_driver(cfg) as driver, fraction_progress(f"qa {domain}") as progress:
        progress(0.0, "loading the graph")
        result = train_qa(cfg, driver, domain, request, progress=progress)
    if json_out:
        print_json(result)
        return
    if result.get("model") == "reasoner":
        _print_reasoner(result)
        return

    def head_label(name: str) -> str:
        terms = result[name].get("graph_terms")
        if terms is None or terms["kept"]:
            return name
        # fusion.learn.train.TrainConfig.graph_terms_p: the text head serves instead
        return (f"{name} (not kept: +{terms['wins']} / -{terms['losses']} validation questions "
                f"against the text head, p = {terms['p']:.2f})")

    rows_out = [(head_label(name), result[name]["val_hits@1"], result[name]["epochs_run"],
                 result[name]["n_train"]) for name in ("graph", "text") if name in result]
    print_table(f"qa {domain} {result['version']} (encoder {result['encoder_version']})",
                ["head", "val Hits@1", "epochs", "train examples"], rows_out)


@eval_app.command("qa")
@handle_errors
def eval_qa(
    domain: str = DOMAIN_OPT,
    data: Path = typer.Option(None, "--data", help="JSONL of {question, answers, hops?}; "
                              "default: generated questions with held-out templates"),
    generate_per_hop: int = typer.Option(100, "--generate-per-hop"),
    mode: str = typer.Option("fine-tuned", "--mode", help="fine-tuned or zero-shot"),
    no_graph: bool = typer.Option(False, "--no-graph-embeddings",
                                  help="Use the text-only head (ablation)"),
    predicted_links: bool = typer.Option(
        False, "--predicted-links", help="retrieval also follows the links the graph encoder "
        "predicts (for a graph known to be incomplete)"),
    seed: int = typer.Option(0, "--seed"),
    json_out: bool = JSON_OPT,
) -> None:
    """Hits@1, Hits@5 and MRR per hop count."""
    from fusion.learn.questions import read_jsonl
    from fusion.serve.pipeline import QAService
    from usecases.evaluate import QAEvaluationRequest, eval_mode, evaluate_qa

    chosen = eval_mode(mode, use_graph=not no_graph)
    cfg = settings()
    rows = list(read_jsonl(data, cfg.max_upload_bytes)) if data else []
    request = QAEvaluationRequest(rows=rows, generate_per_hop=generate_per_hop, modes=[chosen],
                                  predicted_links=predicted_links, seed=seed)
    with open_driver(cfg) as driver, fraction_progress(f"eval {domain}") as progress:
        result = evaluate_qa(cfg, driver, QAService(cfg, driver), domain, request,
                             progress)["results"][chosen]
    if json_out:
        print_json(result)
        return
    label = f"{domain} {mode}" + (" (graph embeddings)" if result["graph_embeddings"] else
                                  " (no graph embeddings)" if mode == "fine-tuned" else "") \
        + (" + predicted links" if predicted_links else "")
    print_table(label, ["hops", "n", "Hits@1", "Hits@5", "MRR"], [
        (hops, m["n"], f"{m['hits@1']:.3f}", f"{m['hits@5']:.3f}", f"{m['mrr']:.3f}")
        for hops, m in result["metrics"].items()
    ])
    if "note" in result:
        console.print(f"[yellow]note:[/yellow] {result['note']}")


@handle_errors
def ask(
    question: str = typer.Argument(None, help="e.g. 'Which genes are associated with Marfan "
                                   "syndrome?'"),
    questions_file: Path = typer.Option(
        None, "--file", "-f", help="Ask every line of this file instead (- for stdin), in "
        "batches: one line per question; with --json, one answer per line (JSON Lines)"),
    domain: str = typer.Option(None, "--domain", "-d", help="default: guessed from the question"),
    top_k: int = typer.Option(5, "--top-k", "-k"),
    max_hops: int = typer.Option(3, "--max-hops"),
    mode: str = typer.Option(None, "--mode", help="fine-tuned or zero-shot (default: "
                             "fine-tuned when trained)"),
    predicted_links: bool = typer.Option(
        False, "--predicted-links", help="also follow links the graph encoder predicts (marked "
        "in the evidence)"),
    count: bool = typer.Option(
        None, "--count/--no-count", help="also count what the best reading reaches (default: "
        "for 'how many' questions)"),
    json_out: bool = JSON_OPT,
    url: str = typer.Option(None, "--url", envvar="KGR_URL", help="Ask the kgr server at this "
                            "URL (e.g. http://127.0.0.1:8000) instead of loading the models "
                            "here"),
    key: str = typer.Option(None, "--key", envvar="KGR_API_KEY",
                            help="API key for --url (reader or admin)"),
) -> None:
    """Answer a question from the graph, with evidence paths."""
    from fusion.exceptions import QuestionError

    if (question is None) == (questions_file is None):
        raise QuestionError("give a question or --file, not both")
    try:
        options = AskOptions(domain=domain, top_k=top_k, max_hops=max_hops,
                             mode=mode, predicted_links=predicted_links,  # type: ignore[arg-type]
                             count=count)
    except ValidationError as exc:
        raise QuestionError("invalid options: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
    if questions_file is not None:
        for r in _answer(_read_questions(questions_file), options, url, key):
            if json_out:
                typer.echo(r.model_dump_json())
            else:
                top = r.answers[0] if r.answers else None
                typer.echo(f"{r.question}\t" + (f"{top.name} ({top.score:.3f}, "
                           f"{'/'.join(top.relation_path)})" if top else f"-: {r.reason}"))
        return
    [response] = _answer([question], options, url, key)
    if json_out:
        print_json(response)
        return
    if response.reason:
        typer.echo(f"no answer: {response.reason}")
    if response.domain is None:
        return
    # a question with several topics ("X and Y") shows one evidence path per topic reached
    title = f"{response.domain} ({response.mode})" + (
        f", topics joined: {response.coordination}" if response.coordination else "")
    print_table(title, ["#", "answer", "type", "score", "evidence"],
                [(i, a.name, a.type, f"{a.score:.3f}",
                  "\n".join(e.text for e in a.evidence) if a.reached_from else a.evidence[0].text)
                 for i, a in enumerate(response.answers, 1)])
    if response.check is not None:
        link = response.check
        typer.echo(f"link: {'/'.join(link.relation_path)} ({link.hops} hop"
                   f"{'s' if link.hops != 1 else ''})" if link.connected else
                   f"link: none within {max_hops} hops")
        if link.asked_relation is not None:  # a yes/no question: its verdict
            typer.echo(f"verdict: {'yes' if link.holds else 'no'} (asked: "
                       f"{link.asked_relation}"
                       + ("" if link.asked_forward is None else
                          ", subject -> object" if link.asked_forward else
                          ", object -> subject") + ")")
            if response.answers:
                typer.echo(response.answers[0].explanation)
    if response.count is not None:
        c = response.count
        typer.echo(f"count: {c.value if c.exact else f'at least {c.value}'} ({c.type}, by "
                   f"{'/'.join(c.relation_path)} from {len(c.topics)} topic entities)")


def _print_reasoner(result: dict[str, Any]) -> None:
    rows = result["rows"]
    print_table(f"qa {result['domain']} {result['version']} (reasoner)",
                ["rows", "used", "val Hits@1", "best epoch", "seconds"],
                [(rows["rows"], rows["used"], result["val_hits@1"], result["best_epoch"],
                  result["seconds"])])
    for reason, n in rows["skipped_by_reason"].items():
        console.print(f"[yellow]{n} rows not used: {reason}[/yellow]")
        for example in rows["skipped_examples"].get(reason, []):
            console.print(f"  line {example['line']}: {example['question']}")


def _answer(questions: list[str], options: AskOptions, url: str | None,
            key: str | None) -> list[AskResponse]:
    """The answers to ``questions``, in their order: from the kgr server at ``url`` (in
    batches it accepts; one question alone through ``/v1/ask``), or from models loaded here."""
    if url:
        from api.client import KgrClient

        asked = options.model_dump()
        with KgrClient(url, key) as client:
            if len(questions) == 1:
                return [client.ask(questions[0], **asked)]
            return [r for start in range(0, len(questions), MAX_BATCH_QUESTIONS)
                    for r in client.ask_batch(questions[start:start + MAX_BATCH_QUESTIONS],
                                              **asked).results]
    from fusion.serve.pipeline import QAService
    from usecases.ask import ask_batch

    cfg = settings()
    with open_driver(cfg) as driver:
        return ask_batch(QAService(cfg, driver), questions, options)


def _read_questions(path: Path) -> list[str]:
    """The non-blank lines of ``path`` (``-``: stdin)."""
    import sys

    from fusion.exceptions import QuestionError

    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionError(f"cannot read questions from {path}: {exc}") from exc
    questions = [line.strip() for line in text.splitlines() if line.strip()]
    if not questions:
        raise QuestionError(f"no questions in {path}")
    return questions


@handle_errors
def phrasings(domain: str = DOMAIN_OPT, json_out: bool = JSON_OPT) -> None:
    """How questions name each relationship type of a domain, and where the words come from."""
    from fusion.serve.pipeline import QAService

    cfg = settings()
    with open_driver(cfg) as driver:
        result = QAService(cfg, driver).phrasings(domain)
    if json_out:
        print_json(result)
        return
    print_table(f"{domain}: phrasings ({{x}} = the entity a question names)",
                ["relation", "read forwards", "from", "read backwards", "from"], [
        (r.relation, "; ".join(r.forward), r.forward_source, "; ".join(r.backward),
         r.backward_source) for r in result.relations])
    for entity_type, type_words in sorted(result.type_words.items()):
        console.print(f"{entity_type}: also named {', '.join(type_words)}")
    if any("frames" in (r.forward_source, r.backward_source) for r in result.relations):
        console.print("[yellow]note:[/yellow] 'frames' means kgr could not read the type's "
                      "name; declare phrasings for it (migrations/README.md)")
    if result.model_current is False:
        console.print(f"[yellow]note:[/yellow] the active model {result.model} was trained "
                      f"with other phrasings; run `kgr train qa -d {domain}` to learn these")
