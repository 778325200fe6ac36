"""A bounded run of bench/fuzz_api.py: a few hundred schemathesis cases against the live API
(every route, mutating ones included) give no 5xx, no status the OpenAPI document does not
list, and no body that does not match its schema."""

from __future__ import annotations

import pytest

from core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_fuzzed_requests_get_documented_answers(settings: Settings) -> None:
    pytest.importorskip("schemathesis", reason="schemathesis is in the dev and bench extras")
    from bench.fuzz_api import run_fuzz

    report = run_fuzz(per_operation=6, cfg=settings)
    assert report.operations >= 25
    assert report.cases >= 250
    assert report.server_errors == 0, report.examples
    assert report.undocumented_status == 0, report.examples
    assert report.schema_violations == 0, report.examples
    assert report.statuses[200] > 0  # the admin key and the scratch domain were used
