"""An ASGI guard for upload routes: the API key, its role and the size limit are checked before
the body is read.

FastAPI parses a multipart body (spooling its files to disk) before it runs a route's
dependencies, so a route-level key check comes after the whole upload was received: an
unauthenticated multi-GB chunked upload would be read and written first. This guard sits in
front of the app and answers 401/403 without reading a byte of the body, 413 when the declared
``Content-Length`` is over the limit, and 413 as soon as a body without one (chunked) passes
the limit while it streams in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import kgr_error_response
from api.security import KeyRing, Role
from core.errors import KgrError, PayloadTooLargeError

API_KEY_HEADER = b"x-api-key"


def _settings_limit(app: Any) -> int:
    return int(app.state.settings.max_upload_bytes)


class UploadGuard:
    """Guards ``POST`` requests to ``paths``: ``role`` is needed, and at most ``limit(app)``
    bytes of body (the app's ``state.settings.max_upload_bytes`` by default)."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...] = ("/v1/migrations",),
                 role: Role = "admin", limit: Callable[[Any], int] | None = None) -> None:
        self.app = app
        self.paths = {p.rstrip("/") for p in paths}
        self.role = role
        self.limit = limit or _settings_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") != "POST"
                or scope.get("path", "").rstrip("/") not in self.paths):
            await self.app(scope, receive, send)
            return
        app = scope["app"]  # the FastAPI app: Starlette puts itself in the scope first
        headers = dict(scope.get("headers") or [])
        limit = self.limit(app)
        try:
            ring: KeyRing = app.state.keyring
            key = headers.get(API_KEY_HEADER)
            ring.authorize(ring.authenticate(key.decode("latin-1") if key else None), self.role)
            declared = headers.get(b"content-length", b"").decode("latin-1")
            if declared.isdigit() and int(declared) > limit:
                raise PayloadTooLargeError(f"the upload is over the limit of {limit:,} bytes")
        except KgrError as exc:
            await kgr_error_response(exc)(scope, receive, send)  # the body is never read
            return
        await self._guarded(scope, receive, send, limit)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app, counting the body as it streams in; past ``limit`` the guard answers
        413 itself, tells the app the client left, and drops whatever the app answers."""
        received = 0
        rejected = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    rejected = True
                    if not started:
                        error = PayloadTooLargeError(
                            f"the upload is over the limit of {limit:,} bytes")
                        await kgr_error_response(error)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not rejected:  # the app failed by itself: let the error middleware answer
                raise
