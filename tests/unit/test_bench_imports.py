"""Every benchmark script names only project modules and names that exist: the scripts run
rarely (minutes to hours each), so a module moved under them would otherwise surface only when
someone runs them. Imports are checked without running the scripts (no third-party extras such
as PyKEEN are needed)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"api", "bench", "cli", "core", "domains", "fusion", "graph", "migrations", "usecases"}
SCRIPTS = sorted((ROOT / "bench").glob("*.py"))


def project_imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) of each import of a project module in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] in PROJECT:
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names
                      if alias.name.split(".")[0] in PROJECT]
    return found


def test_there_are_benchmark_scripts() -> None:
    assert len(SCRIPTS) > 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_imports_resolve(script: Path) -> None:
    missing = []
    for module, name, line in project_imports(script):
        if module.split(".")[0] == "bench":
            target = ROOT / (module.replace(".", "/") + ".py")
            if not target.exists():
                missing.append(f"line {line}: {module}")
            continue
        try:
            imported = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            missing.append(f"line {line}: {module} ({exc})")
            continue
        if name is not None and name != "*" and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"line {line}: {module}.{name}")
    assert not missing, f"{script.name}: " + "; ".join(missing)
