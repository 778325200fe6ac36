"""The ``kgr`` command: assembles the command groups of each feature module."""

from __future__ import annotations

import warnings

import typer

from cli import audit, encoder, keys, migrate, models, neo4j_cmd, qa, read, serve
from cli.groups import eval_app, train_app

# PyTorch Geometric scripts some modules with torch.jit at import, which torch 2.x deprecates:
# one FutureWarning per command that says nothing to a kgr user ("warnings.warn(" on stderr)
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                        category=FutureWarning)

app = typer.Typer(
    help="kgr: knowledge-graph reasoning service (Neo4j store, GNN encoder, graph QA).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(neo4j_cmd.app, name="neo4j")
app.add_typer(read.entity_app, name="entity")
app.command("paths")(read.paths)
app.command("subgraph")(read.subgraph)
app.command("schema")(read.schema)
app.add_typer(keys.app, name="keys")
app.command("audit")(audit.audit)
app.command("serve")(serve.serve)
app.command("up")(serve.up)
app.add_typer(migrate.app, name="migrate")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(encoder.app, name="embeddings")
app.add_typer(models.app, name="models")
if hasattr(qa, "ask"):
    app.command("ask")(qa.ask)
app.command("phrasings")(qa.phrasings)

if __name__ == "__main__":
    app()
