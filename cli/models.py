"""``kgr models``: the stored versions of the encoder and QA models (``fusion.serve.versions``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.common import (
    console,
    err_console,
    handle_errors,
    open_driver,
    print_json,
    print_table,
    settings,
)

if TYPE_CHECKING:
    from fusion.serve.versions import Kind, VersionInfo

app = typer.Typer(help="Stored model versions: list, activate (roll back), delete, prune.",
                  no_args_is_help=True)

KIND_ARG = typer.Argument(..., help="encoder or qa")
DOMAIN_ARG = typer.Argument(..., help="Domain, e.g. medical")
JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts")


def _kind(value: str) -> Kind:
    from fusion.serve.versions import check_kind

    return check_kind(value)


def _epochs_cell(info: VersionInfo) -> str:
    """``40 (best 35, 1.2 s)`` from the stored history (``--json`` prints every epoch)."""
    if not info.history:
        return "-"
    seconds = [e.seconds for e in info.history if e.seconds is not None]
    parts = [f"best {info.best_epoch}"] if info.best_epoch else []
    if seconds:
        parts.append(f"{sum(seconds) / len(seconds):.2f} s")
    if any(e.diverged for e in info.history):
        parts.append("diverged")
    return f"{len(info.history)} ({', '.join(parts)})" if parts else str(len(info.history))


@app.command("list")
@handle_errors
def list_cmd(kind: str = KIND_ARG, domain: str = DOMAIN_ARG, json_out: bool = JSON_OPT) -> None:
    """The versions of a domain's models, oldest first, with the active one marked."""
    from usecases.models import list_models

    cfg = settings()
    with open_driver(cfg) as driver:
        versions = list_models(cfg, driver, _kind(kind), domain)
    if json_out:
        print_json([v.model_dump(mode="json") for v in versions])
        return
    if not versions:
        console.print(f"no {kind} versions stored for domain {domain!r}")
        return
    rows: list[tuple[str, ...]]
    if kind == "qa":
        columns = ["version", "active", "MB", "validation Hits@1", "graph head"]
        rows = [(v.version, "*" if v.active else "", f"{v.size_bytes / 1e6:.1f}",
                 ", ".join(f"{k.removesuffix('_val_hits@1')} {val:.3f}"
                           for k, val in v.metrics.items()),
                 {None: "-", True: "usable", False: "other encoder"}[v.graph_head_usable])
                for v in versions]
    else:
        columns = ["version", "active", "MB", "test MRR / Hits@10", "epochs (best, s/epoch)",
                   "in Neo4j"]
        rows = [(v.version, "*" if v.active else "", f"{v.size_bytes / 1e6:.1f}",
                 " / ".join(f"{v.metrics[k]:.3f}" for k in ("mrr", "hits_at_10")
                            if k in v.metrics),
                 _epochs_cell(v), {None: "?", True: "yes", False: ""}[v.served])
                for v in versions]
    print_table(f"{kind} versions of {domain} (oldest first)", columns, rows,
                no_wrap=("version",))


@app.command("activate")
@handle_errors
def activate_cmd(kind: str = KIND_ARG, domain: str = DOMAIN_ARG,
                 version: str = typer.Argument(..., help="A version from `kgr models list`"),
                 json_out: bool = JSON_OPT) -> None:
    """Serve an earlier (or any stored) version; an encoder's embeddings go back into Neo4j."""
    from usecases.models import activate_model

    cfg = settings()
    with open_driver(cfg) as driver:
        info = activate_model(cfg, driver, _kind(kind), domain, version)
    if json_out:
        print_json(info)
        return
    console.print(f"{kind} version [bold]{info.version}[/] of {domain} is active")
    if info.graph_head_usable is False:
        console.print(f"its graph head was trained with encoder {info.encoder_version}, which "
                      "is not active: the text head answers")


@app.command("delete")
@handle_errors
def delete_cmd(kind: str = KIND_ARG, domain: str = DOMAIN_ARG,
               version: str = typer.Argument(...)) -> None:
    """Remove a stored version (not the active one)."""
    from fusion.serve.versions import delete_version

    delete_version(settings(), _kind(kind), domain, version)
    console.print(f"{kind} version {version} of {domain} deleted")


@app.command("prune")
@handle_errors
def prune_cmd(kind: str = KIND_ARG, domain: str = DOMAIN_ARG,
              keep: int = typer.Option(3, "--keep", help="How many of the newest to keep"),
              json_out: bool = JSON_OPT) -> None:
    """Remove all but the newest versions; the active one always stays."""
    from fusion.serve.versions import prune_versions

    deleted = prune_versions(settings(), _kind(kind), domain, keep)
    if json_out:
        print_json({"deleted": deleted})
        return
    console.print(f"deleted {len(deleted)} {kind} version(s) of {domain}" +
                  (": " + ", ".join(deleted) if deleted else ""))


@app.command("show")
@handle_errors
def show_cmd(kind: str = KIND_ARG, domain: str = DOMAIN_ARG,
             version: str = typer.Argument(..., help="a version from `kgr models list`"),
             plot: Path = typer.Option(None, "--plot", help="draw the training curves into "
                                       "this PNG file"),
             json_out: bool = JSON_OPT) -> None:
    """A version's training history, epoch by epoch (and its curves with --plot)."""
    from fusion.learn.curves import plot as draw
    from usecases.models import show_model

    curves = show_model(settings(), _kind(kind), domain, version)
    if plot is not None:
        drawn = draw(curves, f"{kind} {domain} {version}", plot)
        err_console.print(f"{', '.join(drawn)} per epoch -> {plot}", highlight=False)
    if json_out:
        print_json(curves)
        return
    for name, rows in curves.items():
        columns = sorted({k for r in rows for k in r if k != "epoch"})
        print_table(f"{kind} {domain} {version}: {name}", ["epoch", *columns],
                    [(r.get("epoch"), *(r.get(c) for c in columns)) for r in rows])
