"""``kgr audit``: read this host's API audit trail (``$KGR_HOME/audit/audit.jsonl``)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from itertools import islice

import typer

from api.audit import audit_path, read_audit
from cli.common import handle_errors, print_table, settings
from core.errors import InvalidInputError


def parse_since(value: str | None) -> datetime | None:
    """An ISO time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(f"--since {value!r} is not an ISO time "
                                "(e.g. 2026-01-31T08:00:00Z)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@handle_errors
def audit(
    since: str | None = typer.Option(None, "--since", help="ISO time (UTC without a zone)"),
    key: str | None = typer.Option(None, "--key", help="Only this key id"),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many records"),
    as_json: bool = typer.Option(False, "--json", help="One JSON record per line"),
) -> None:
    """Requests to this host's API: time, key id, route, status, domains and entity uids."""
    records = list(islice(read_audit(audit_path(settings()), parse_since(since), key), limit))
    if as_json:
        for record in records:
            sys.stdout.write(json.dumps(record) + "\n")
        return
    print_table("audit", ["time", "key", "method", "route", "status", "domains", "uids"],
                [[r["time"], r.get("key_id") or "-", r.get("method"), r.get("route"),
                  r.get("status"), ",".join(r.get("domains", [])), r.get("uids_total", 0)]
                 for r in records], no_wrap=("key",))
