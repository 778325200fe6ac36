"""The error tree: one root in core, a root per package below it, and every error class of a
package under its package's root and under a category the API maps to a status."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import api
import core
import fusion
import graph
from api.errors import STATUS_BY_ERROR
from api.exceptions import ApiError
from core import errors as categories
from core.errors import KgrError
from fusion.exceptions import FusionError
from graph.exceptions import GraphError

ROOT_BY_PACKAGE: dict[str, type[KgrError]] = {
    "graph": GraphError, "fusion": FusionError, "api": ApiError,
}
MAPPED = tuple(cls for cls, _, _ in STATUS_BY_ERROR)


def _error_classes(package: object) -> list[type[KgrError]]:
    found: dict[str, type[KgrError]] = {}
    path = package.__path__  # type: ignore[attr-defined]
    for info in pkgutil.walk_packages(path, prefix=f"{package.__name__}."):  # type: ignore[attr-defined]
        name = info.name
        if name.endswith(("exceptions", "errors")) or ".migrate.exceptions" in name:
            module = importlib.import_module(name)
            for obj in vars(module).values():
                if (inspect.isclass(obj) and issubclass(obj, KgrError)
                        and obj.__module__ == module.__name__):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


@pytest.mark.parametrize("package", [graph, fusion, api], ids=lambda p: p.__name__)
def test_every_error_of_a_package_is_under_its_root(package: object) -> None:
    classes = _error_classes(package)
    root = ROOT_BY_PACKAGE[package.__name__]  # type: ignore[attr-defined]
    assert root in classes
    for cls in classes:
        assert issubclass(cls, root), f"{cls.__qualname__} is not a {root.__qualname__}"


@pytest.mark.parametrize("package", [graph, fusion, api], ids=lambda p: p.__name__)
def test_every_raised_leaf_error_takes_a_mapped_status(package: object) -> None:
    roots = set(ROOT_BY_PACKAGE.values())
    unmapped = [cls.__qualname__ for cls in _error_classes(package)
                if cls not in roots and not issubclass(cls, MAPPED)
                and cls.__qualname__ not in {"ServerLaunchError", "ServerUnreachableError",
                                             "UnexpectedResponseError", "MigrationError"}]
    assert unmapped == []


def test_the_categories_live_in_core_and_derive_from_the_root() -> None:
    defined = [obj for obj in vars(categories).values()
               if inspect.isclass(obj) and obj.__module__ == "core.errors"]
    assert KgrError in defined and len(defined) >= 8
    assert all(issubclass(cls, KgrError) for cls in defined)
    assert all(issubclass(cls, categories.KgrError) for cls in MAPPED)


def test_core_imports_no_other_kgr_package() -> None:
    kgr_packages = {"graph", "fusion", "api", "cli", "domains", "migrations", "bench"}
    for source in Path(core.__path__[0]).glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & kgr_packages, (source.name, names)
