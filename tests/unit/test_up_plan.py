"""`kgr up --domains`: which built-in domains are loaded and trained, which migrations skipped."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.serve import UpPlan, plan_up
from core.errors import InvalidInputError
from core.settings import PROJECT_ROOT


def test_default_all_one_or_none() -> None:
    both = UpPlan(domains=("medical", "finance"), skip_migrations=())
    assert plan_up("medical,finance") == both and plan_up("all") == both
    assert plan_up(" Finance , medical,finance") == both  # built-in order, once each
    assert plan_up("finance") == UpPlan(("finance",), ("V3__medical_hpo.py",))
    assert plan_up("medical") == UpPlan(("medical",), ("V4__finance_findkg.py",))
    assert plan_up("none") == UpPlan((), ("V3__medical_hpo.py", "V4__finance_findkg.py"))


def test_skipped_migrations_are_the_built_in_ones() -> None:
    for script in plan_up("none").skip_migrations:
        assert (PROJECT_ROOT / "migrations" / script).is_file(), script


@pytest.mark.parametrize("bad", ["", " , ", "medical,legal", "none,medical", "everything"])
def test_unknown_domains_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="--domains"):
        plan_up(bad)


def test_kgr_up_refuses_an_unknown_domain_before_starting_anything() -> None:
    result = CliRunner().invoke(app, ["up", "--domains", "legal", "--no-serve"])
    assert result.exit_code == 4
    assert "unknown domain(s) for --domains: legal" in result.output
