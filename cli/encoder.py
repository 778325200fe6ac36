"""Encoder commands (placeholder: filled in by the encoder work).

Adds ``kgr train encoder`` / ``kgr eval encoder`` to ``cli.groups`` and defines ``app`` for
``kgr embeddings ...`` (similar entities, link prediction).
"""

import typer

app = typer.Typer(help="Entity embeddings: similar entities, link prediction.",
                  no_args_is_help=True)
