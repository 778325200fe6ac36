"""The audit trail: one JSON line per API request in ``$KGR_HOME/audit/audit.jsonl``.

Written by one ASGI middleware around the whole app (not per route): the key's id (never the
key), the route, the domains and entity uids the response named (at most ``MAX_UIDS``), the
status and the time. The file is rotated by size (``logging.handlers.RotatingFileHandler``).
It is local to each API host; ``kgr audit`` reads it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings

AUDIT_FILE = "audit.jsonl"
MAX_UIDS = 50
# responses larger than this are not parsed for uids (the line says so: "uids_truncated")
MAX_PARSED_BYTES = 4 * 1024 * 1024
# probes and scrapes would drown the trail; they return no data of any domain
UNAUDITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json",
                             "/redoc", "/docs/oauth2-redirect", "/ui"})
# the graph view's static files (api/routes/ui.py): public, no data; its data calls are audited
UNAUDITED_PREFIXES = ("/ui/static/",)


def audit_path(settings: Settings) -> Path:
    return settings.home / "audit" / AUDIT_FILE


class AuditLog:
    """Appends records as JSON lines, rotated by size; thread-safe (logging's handler lock)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                            encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        # a logger of its own, outside logging's registry: never propagated to the root's
        # handlers (the console), and one per app (tests build several)
        self._logger = logging.Logger("kgr.audit")
        self._logger.addHandler(self._handler)
        self._logger.propagate = False

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLog:
        return cls(audit_path(settings), settings.audit_max_bytes, settings.audit_backups)

    def write(self, record: dict[str, Any]) -> None:
        self._logger.info(json.dumps(record, separators=(",", ":"), sort_keys=True))

    def close(self) -> None:
        self._handler.close()


def _walk(value: Any, uids: list[str], seen: set[str], domains: set[str]) -> int:
    """Collect the ``uid`` values (and ``domain`` values) a JSON response holds; returns how
    many distinct uids there were."""
    if isinstance(value, dict):
        uid, domain = value.get("uid"), value.get("domain")
        if isinstance(uid, str) and uid not in seen:
            seen.add(uid)
            if len(uids) < MAX_UIDS:
                uids.append(uid)
        if isinstance(domain, str):
            domains.add(domain)
        for item in value.values():
            if isinstance(item, (dict, list)):
                _walk(item, uids, seen, domains)
    elif isinstance(value, list):
        for item in value:
            _walk(item, uids, seen, domains)
    return len(seen)


@dataclass
class _Response:
    status: int = 500
    json: bool = False
    body: bytearray | None = None
    too_large: bool = False


class AuditMiddleware:
    """Pure ASGI (the response body streams through untouched and is copied, when JSON, to
    read the uids it names)."""

    def __init__(self, app: ASGIApp, log: AuditLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or path in UNAUDITED_PATHS
                or path.startswith(UNAUDITED_PREFIXES)):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        response = _Response()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.status = message["status"]
                headers = dict(message.get("headers") or [])
                response.json = headers.get(b"content-type", b"").startswith(
                    b"application/json")
                response.body = bytearray() if response.json else None
            elif message["type"] == "http.response.body" and response.body is not None:
                response.body.extend(message.get("body", b""))
                if len(response.body) > MAX_PARSED_BYTES:
                    response.body, response.too_large = None, True
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.log.write(self._record(scope, response, at, time.perf_counter() - started))

    @staticmethod
    def _record(scope: Scope, response: _Response, at: str, seconds: float) -> dict[str, Any]:
        state = scope.get("state") or {}
        principal = state.get("principal") if isinstance(state, dict) else None
        route = scope.get("route")
        uids: list[str] = []
        domains: set[str] = set()
        total = 0
        if response.status < 400 and response.body:
            try:
                total = _walk(json.loads(response.body), uids, set(), domains)
            except ValueError:
                pass
        query = dict(_query_pairs(scope))
        if query.get("domain"):
            domains.add(query["domain"])
        domains.update(uid.split(":", 1)[0] for uid in uids if ":" in uid)
        return {
            "time": at,
            "key_id": getattr(principal, "key_id", None),
            "role": getattr(principal, "role", None),
            "method": scope.get("method"),
            "route": getattr(route, "path", None) or "unmatched",
            "path": scope.get("path"),
            "status": response.status,
            "ms": round(1000 * seconds, 2),
            "domains": sorted(domains),
            "uids": uids,
            "uids_total": total,
            **({"uids_truncated": True} if response.too_large else {}),
        }


def _query_pairs(scope: Scope) -> Iterator[tuple[str, str]]:
    from urllib.parse import parse_qsl

    raw = scope.get("query_string", b"").decode("latin-1")
    yield from parse_qsl(raw, keep_blank_values=False)


def read_audit(path: Path, since: datetime | None = None,
               key_id: str | None = None) -> Iterator[dict[str, Any]]:
    """The records of the audit file and its rotated predecessors, oldest first, filtered by
    time (``since``, inclusive; UTC without a zone) and key id."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    files = sorted(path.parent.glob(path.name + ".*"),
                   key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0,
                   reverse=True)
    for file in [*files, path]:
        if not file.exists():
            continue
        with file.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
                if key_id is not None and record.get("key_id") != key_id:
                    continue
                if since is not None and datetime.fromisoformat(record["time"]) < since:
                    continue
                yield record
