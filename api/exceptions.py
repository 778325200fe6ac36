"""Errors raised by the API layer itself (authentication and authorisation)."""

from graph.exceptions import KgrError


class ApiError(KgrError):
    """Root of the API layer's own errors."""


class AuthenticationError(ApiError):
    """No API key was given, or the key is not known."""


class PermissionDeniedError(ApiError):
    """The API key is valid but its role may not do this."""
