"""Ask: answer questions from the graph (``kgr ask`` and ``POST /v1/ask``, ``/v1/ask/batch``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fusion.serve.pipeline import QAService
from fusion.serve.schemas import MAX_BATCH_QUESTIONS, AskOptions, AskResponse


def ask_arguments(options: AskOptions) -> dict[str, Any]:
    """The options as ``QAService.ask``'s keyword arguments (an ``AskRequest`` is an
    ``AskOptions`` too: its question is left out)."""
    return {name: getattr(options, name) for name in AskOptions.model_fields}


def ask(service: QAService, question: str, options: AskOptions,
        allowed: list[str] | None = None) -> AskResponse:
    """The answer to one question; ``allowed``: the domains the caller may see (None: all)."""
    return service.ask(question, **ask_arguments(options), allowed=allowed)


def ask_batch(service: QAService, questions: Sequence[str], options: AskOptions,
              allowed: list[str] | None = None) -> list[AskResponse]:
    """The answers to ``questions``, in their order, asked in batches of at most
    ``MAX_BATCH_QUESTIONS`` (a batch links and encodes its questions at once)."""
    arguments = ask_arguments(options)
    return [response for start in range(0, len(questions), MAX_BATCH_QUESTIONS)
            for response in service.ask_batch(
                list(questions[start:start + MAX_BATCH_QUESTIONS]), **arguments,
                allowed=allowed)]
