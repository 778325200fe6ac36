"""Command groups that several feature modules add commands to (``kgr train``, ``kgr eval``)."""

import typer

train_app = typer.Typer(help="Train models (encoder, qa).", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate models (encoder, qa).", no_args_is_help=True)
