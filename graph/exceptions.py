"""Errors of the graph layer (the Neo4j store and its local server). Each derives from
``GraphError`` and from the ``core.errors`` category whose HTTP status it takes."""

from core.errors import KgrError, UnavailableError


class GraphError(KgrError):
    """Root of the graph layer's own errors (``except GraphError`` catches them all)."""


class DatabaseUnavailableError(GraphError, UnavailableError):
    """Neo4j cannot be reached or did not answer in time."""


class ServerLaunchError(GraphError):
    """The local Neo4j server could not be built, started or stopped."""
