"""Errors raised by the API layer itself (authentication and authorisation)."""

from core.errors import KgrError


class ApiError(KgrError):
    """Root of the API layer's own errors."""


class AuthenticationError(ApiError):
    """No API key was given, or the key is not known."""


class PermissionDeniedError(ApiError):
    """The API key is valid but its role may not do this."""


class RateLimitedError(ApiError):
    """The key sent more requests a second, or more questions at once, than its limit."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServerUnreachableError(ApiError):
    """The kgr server a client talks to cannot be reached, or did not answer in time."""


class UnexpectedResponseError(ApiError):
    """The kgr server answered with an error kgr has no class for (e.g. a 500), or with a
    body that is not kgr's."""

    def __init__(self, message: str, *, status: int, details: object | None = None) -> None:
        super().__init__(message, details=details)
        self.status = status
