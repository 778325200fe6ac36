"""The root of every error kgr raises on purpose, and the categories the API maps to HTTP
statuses in one place (``api/errors.py``).

Each package has its own root that subclasses ``KgrError`` (``graph.exceptions.GraphError``,
``graph.migrate.exceptions.MigrationError``, ``fusion.exceptions.FusionError``,
``api.exceptions.ApiError``); a package's error also derives from the category whose status it
takes, so ``except GraphError`` catches the graph layer's errors and the status map needs to
know only the categories.
"""


class KgrError(Exception):
    """Root of every error kgr raises on purpose."""

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(KgrError):
    """A requested entity, domain, migration, job or artifact does not exist."""


class InvalidInputError(KgrError):
    """Input failed validation: a bad label, relationship type, parameter or file."""


class ConflictError(KgrError):
    """The request conflicts with the current state: a held lock, a running job, a duplicate."""


class ModelBusyError(ConflictError):
    """Another run trains or activates this model kind for the domain right now."""


class TooManyJobsError(KgrError):
    """The configured number of training jobs already runs (across every API process)."""


class PayloadTooLargeError(KgrError):
    """An uploaded file or request body is over the configured size limit."""


class UnavailableError(KgrError):
    """A service kgr depends on (the database) cannot be reached or did not answer in time."""


class ModelNotReadyError(KgrError):
    """No trained model (artifact) is active for the requested domain yet."""


class TrainingDivergedError(KgrError):
    """A model's weights or scores are NaN or infinite: training diverged (e.g. the learning
    rate is too high), and ranking with them would be meaningless."""
