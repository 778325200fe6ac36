"""Fuzz the live API from its own OpenAPI document (schemathesis): every route, the mutating
ones included, with valid (positive) and invalid (negative) requests and an admin key.

Starts ``uvicorn api.main:create_app`` on a free port against the configured Neo4j (the per-key
limits off, its own scratch ``KGR_HOME`` for uploads and model artifacts), loads a small scratch
domain for the requests to find, and counts:

- ``cases``: requests sent;
- ``server_errors``: answers with a 5xx status (503 included: Neo4j is up throughout);
- ``undocumented_status``: answers whose status the operation does not list;
- ``schema_violations``: answers with a listed status whose body does not match its schema.

Writes ``bench/results/fuzz_api.json``::

    .venv/bin/python -m bench.fuzz_api [--per-operation 100] [--seed 1]

``--per-operation`` is per operation and mode (positive, negative): 28 operations x 2 x 90
gives about 5,000 cases. ``tests/integration/test_fuzz_api.py`` runs a bounded version.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import api_server
from core.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "fuzz_api.json"


@dataclass
class FuzzReport:
    cases: int = 0
    server_errors: int = 0
    undocumented_status: int = 0
    schema_violations: int = 0
    operations: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    # up to a few examples of each kind of finding: (operation, status, what)
    examples: list[tuple[str, int, str]] = field(default_factory=list)

    def note(self, label: str, status: int, what: str) -> None:
        if len(self.examples) < 40:
            self.examples.append((label, status, what[:300]))

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["statuses"] = {str(k): v for k, v in sorted(self.statuses.items())}
        return data


def live_api(cfg: Settings, home: Path) -> AbstractContextManager[tuple[str, str]]:
    """The API on a free port with an admin key, against ``cfg``'s Neo4j, with its own home
    (uploads, artifacts, keys, audit); yields (url, key)."""
    return api_server({"KGR_HOME": str(home), "KGR_NEO4J_URI": cfg.resolved_uri,
                       "KGR_NEO4J_PASSWORD": cfg.resolved_password()})


@contextmanager
def scratch_domain(cfg: Settings) -> Iterator[str]:
    """A small graph in a domain of its own, deleted afterwards."""
    from graph.driver import make_driver
    from graph.schema import bootstrap_schema
    from graph.writer import (
        delete_domain,
        entity_row,
        relation_row,
        write_entities,
        write_relations,
    )

    domain = f"fuzz{uuid.uuid4().hex[:8]}"
    with make_driver(cfg) as driver:
        bootstrap_schema(driver, cfg.neo4j_database)
        uids = [f"{domain}:n{i}" for i in range(6)]
        write_entities(driver, cfg.neo4j_database, [
            entity_row(uid, f"Fuzz thing {i}", domain, ["Thing"]) for i, uid in enumerate(uids)])
        write_relations(driver, cfg.neo4j_database, [
            relation_row(uids[i], "LINKS", uids[(i + 1) % len(uids)], source="fuzz")
            for i in range(len(uids))])
        try:
            yield domain
        finally:
            delete_domain(driver, cfg.neo4j_database, domain)


def fuzz(url: str, key: str, per_operation: int, seed: int = 1) -> FuzzReport:
    """Run ``per_operation`` cases per operation and mode; count what came back."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, settings
    from schemathesis.core.result import Ok
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    report = FuzzReport()
    headers = {"X-API-Key": key}
    started = time.monotonic()
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):  # an operation schemathesis cannot read: a finding
            report.schema_violations += 1
            report.note("(schema)", 0, str(result.err()))
            continue
        operation = result.ok()
        report.operations += 1
        documented = {str(s) for s in operation.definition.raw.get("responses", {})}

        def check(case: Any, label: str = operation.label,
                  documented: set[str] = documented) -> None:
            # the generated key would be refused (401): every case uses the admin key, so that
            # what is fuzzed is the request itself (authentication has its own tests)
            case.headers = {**(case.headers or {}), **headers}
            response = case.call(base_url=url, timeout=60)
            status = response.status_code
            report.cases += 1
            report.statuses[status] += 1
            if status >= 500:
                report.server_errors += 1
                report.note(label, status, response.text)
            if str(status) not in documented and "default" not in documented:
                report.undocumented_status += 1
                report.note(label, status, f"undocumented: {response.text} "
                            f"({case.as_curl_command()})")
                return
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as exc:  # noqa: BLE001 - a failed check is what we count
                report.schema_violations += 1
                report.note(label, status, f"schema: {exc}")

        for mode in schemathesis.GenerationMode:
            run = hypothesis.given(case=operation.as_strategy(generation_mode=mode))(
                _one_case(check))
            run = settings(max_examples=per_operation, deadline=None, database=None,
                           suppress_health_check=list(HealthCheck),
                           phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])(run)
            try:
                hypothesis.seed(seed)(run)()
            except hypothesis.errors.Unsatisfiable:
                pass  # no invalid request exists (an operation without parameters)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _one_case(check: Any) -> Any:
    """A test function of one argument (hypothesis refuses functions with defaults)."""
    def run(case: Any) -> None:
        check(case)
    return run


def run_fuzz(per_operation: int, seed: int = 1, cfg: Settings | None = None) -> FuzzReport:
    """Fuzz an API served against ``cfg``'s Neo4j (default: the configured one)."""
    cfg = cfg or Settings()
    with tempfile.TemporaryDirectory(prefix="kgr-fuzz-") as home, scratch_domain(cfg), \
            live_api(cfg, Path(home)) as (url, key):
        return fuzz(url, key, per_operation, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-operation", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report = run_fuzz(args.per_operation, args.seed)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    summary = report.summary()
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "examples"}))
    for example in report.examples[:15]:
        print(example)


if __name__ == "__main__":
    main()
