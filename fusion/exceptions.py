"""Errors of the QA layer; each subclasses a graph.exceptions class the API already maps."""

from graph.exceptions import InvalidInputError, ModelNotReadyError


class QuestionError(InvalidInputError):
    """The question or a training example is unusable (empty, too long, malformed)."""


class TrainingDataError(InvalidInputError):
    """A QA training or evaluation file has no usable example."""


class QAModelNotReadyError(ModelNotReadyError):
    """No fine-tuned QA model is active for the domain yet."""
