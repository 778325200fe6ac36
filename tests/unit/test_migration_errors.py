"""The migration errors: one root under the project's, each mapped to its HTTP status."""

from __future__ import annotations

import json

import pytest

from api.errors import kgr_error_response
from core.errors import KgrError
from graph.migrate.exceptions import (
    MigrationChecksumError,
    MigrationError,
    MigrationFailedError,
    MigrationLockedError,
    MigrationValidationError,
    Problem,
)


@pytest.mark.parametrize("error,status,code", [
    (MigrationValidationError("2 problems", [Problem("V1__a.yaml", 3, "bad")]), 422,
     "invalid_input"),
    (MigrationFailedError("V3 failed"), 422, "invalid_input"),
    (MigrationLockedError("held by host-1"), 409, "conflict"),
    (MigrationChecksumError("V2 was changed"), 409, "conflict"),
])
def test_every_migration_error_is_one_root_and_keeps_its_status(
        error: MigrationError, status: int, code: str) -> None:
    assert isinstance(error, MigrationError) and isinstance(error, KgrError)
    response = kgr_error_response(error)
    assert response.status_code == status
    body = json.loads(bytes(response.body))
    assert body["error"]["code"] == code and body["error"]["message"] == error.message


def test_a_validation_error_carries_its_problems() -> None:
    problem = Problem("V1__a.yaml", 3, "bad column")
    error = MigrationValidationError("1 problem", [problem])
    assert error.problems == [problem]
    body = json.loads(bytes(kgr_error_response(error).body))
    assert body["error"]["details"] == [{"file": "V1__a.yaml", "line": 3,
                                         "message": "bad column"}]
