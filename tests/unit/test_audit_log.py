"""The audit file: JSON lines, rotated by size, read back across the rotated files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.audit import AuditLog, read_audit


def test_rotation_keeps_every_record_in_order(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    log = AuditLog(path, max_bytes=2048, backups=50)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(100):
        log.write({"time": (start + timedelta(seconds=i)).isoformat(), "n": i,
                   "key_id": "key_a" if i % 2 else "key_b"})
    log.close()
    assert len(list(path.parent.glob("audit.jsonl.*"))) >= 2  # it did rotate
    assert all(p.stat().st_size <= 2048 for p in path.parent.iterdir())
    assert [r["n"] for r in read_audit(path)] == list(range(100))
    recent_a = [r["n"] for r in read_audit(path, since=start + timedelta(seconds=90),
                                           key_id="key_a")]
    assert recent_a == [91, 93, 95, 97, 99]
    naive = [r["n"] for r in read_audit(path, since=datetime(2026, 1, 1, 0, 1, 38))]
    assert naive == [98, 99]  # a time without a zone is UTC
