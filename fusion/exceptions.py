"""Errors of the QA layer: each derives from ``FusionError`` and from the ``core.errors`` category
whose HTTP status it takes."""

from core.errors import InvalidInputError, KgrError, ModelNotReadyError


class FusionError(KgrError):
    """Root of the QA layer's own errors (``except FusionError`` catches them all)."""


class QuestionError(FusionError, InvalidInputError):
    """The question or a training example is unusable (empty, too long, malformed)."""


class TrainingDataError(FusionError, InvalidInputError):
    """A QA training or evaluation file has no usable example."""


class QAModelNotReadyError(FusionError, ModelNotReadyError):
    """No fine-tuned QA model is active for the domain yet."""
