"""``api/routes/migrations.py``: its response models say what the runner's records say."""

from __future__ import annotations

from api.routes.migrations import AppliedOut, MigrationList
from graph.lock import LockInfo
from graph.migrate.history import AppliedMigration
from graph.migrate.runner import MigrationStatus

APPLIED = AppliedMigration(
    namespace="kgr/upload", version=2, description="load shop", script="U2__load_shop",
    kind="load", checksum="abc", applied_at="2026-01-01T00:00:00Z", duration_s=1.5,
    nodes_created=3, relationships_created=4, installed_by="alice", source="upload")


def test_an_applied_record_is_served_with_its_label_and_without_internals() -> None:
    served = AppliedOut.model_validate(APPLIED, from_attributes=True).model_dump()
    assert served == {
        "version": 2, "description": "load shop", "script": "U2__load_shop", "kind": "load",
        "checksum": "abc", "applied_at": "2026-01-01T00:00:00Z", "duration_s": 1.5,
        "nodes_created": 3, "relationships_created": 4, "source": "upload", "label": "U2"}


def test_the_list_nests_the_applied_record_and_the_lock_holder() -> None:
    rows = [MigrationStatus(version=2, description="load shop", script="U2__load_shop",
                            kind="load", state="applied", checksum="abc", applied=APPLIED,
                            source="upload"),
            MigrationStatus(version=5, description="more", script="V5__more", kind="cypher",
                            state="pending", checksum=None)]
    holder = LockInfo(owner="o", pid=7, host="h", acquired_at="t", heartbeat_age_s=2)
    served = MigrationList.model_validate({"migrations": rows, "lock": holder},
                                          from_attributes=True).model_dump()
    assert [m["label"] for m in served["migrations"]] == ["U2", "V5"]
    assert served["migrations"][0]["applied"]["label"] == "U2"
    assert served["migrations"][1]["applied"] is None
    assert served["lock"] == {"pid": 7, "host": "h", "acquired_at": "t", "heartbeat_age_s": 2}
