"""The package's floors (issue #11): one import root, and every import points down.

    photo2cad (version, device, errors, atomic files)  <  photo2cad.models (the networks, how they embed)
    <  photo2cad.weights (checkpoints, ImageNet start)  <  photo2cad.shapes (pool, meshes, renderers, render cache)
    <  photo2cad.models.datasets  <  photo2cad.indexer  <  photo2cad.models.evaluation, photo2cad.service
    <  photo2cad.models.training  <  photo2cad.cli

A module may import its own package or a package on a lower floor: never a higher one, never one beside it. Imports
inside functions count too (they are imports all the same).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pkgutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import photo2cad

FLOORS: tuple[tuple[str, ...], ...] = (
    ("photo2cad",),
    ("photo2cad.models",),
    ("photo2cad.weights",),
    ("photo2cad.shapes",),
    ("photo2cad.models.datasets",),
    ("photo2cad.indexer",),
    ("photo2cad.models.evaluation", "photo2cad.service"),
    ("photo2cad.models.training",),
    ("photo2cad.cli",),
)
PACKAGE_FLOOR = {package: floor for floor, packages in enumerate(FLOORS) for package in packages}
REPOSITORY = Path(__file__).resolve().parents[1]


def package_of(module: str) -> str:
    """The floor package a module belongs to: the longest listed prefix."""
    matches = [p for p in PACKAGE_FLOOR if module == p or module.startswith(p + ".")]
    if not matches:
        raise ValueError(f"{module} belongs to no floor of FLOORS; add its package")
    return max(matches, key=len)


def floor_violations(imports: Mapping[str, Iterable[str]]) -> list[str]:
    """Every import (importer -> imported module) that climbs a floor or reaches across to a package beside it."""
    problems = []
    for importer, imported_modules in sorted(imports.items()):
        own = package_of(importer)
        for imported in sorted(set(imported_modules)):
            target = package_of(imported)
            if target != own and PACKAGE_FLOOR[target] >= PACKAGE_FLOOR[own]:
                where = "above" if PACKAGE_FLOOR[target] > PACKAGE_FLOOR[own] else "beside"
                problems.append(f"{importer} imports {imported}: {target} is {where} {own}")
    return problems


def installed_modules() -> dict[str, Path]:
    modules = {"photo2cad": Path(photo2cad.__file__)}
    for info in pkgutil.walk_packages(photo2cad.__path__, "photo2cad."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin is not None
        modules[info.name] = Path(spec.origin)
    return modules


def photo2cad_imports(module: str, source: Path, known: set[str]) -> set[str]:
    """The photo2cad modules `module` imports anywhere in its source (relative imports resolved)."""
    found = set()
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:  # `from photo2cad.indexer import layout` imports the module layout
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name == "photo2cad" or name.startswith("photo2cad.")}


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    modules = installed_modules()
    return {name: photo2cad_imports(name, path, set(modules)) for name, path in modules.items()}


def test_every_module_lives_on_a_floor(import_graph: dict[str, set[str]]) -> None:
    for module in import_graph:
        package_of(module)  # raises for a module outside every floor


def test_no_import_climbs_a_floor_or_reaches_beside_it(import_graph: dict[str, set[str]]) -> None:
    assert floor_violations(import_graph) == []


def test_the_check_catches_a_back_edge_and_a_pair_importing_each_other() -> None:
    graph = {
        "photo2cad.weights.checkpoint": {"photo2cad.models.amvml"},  # down: fine
        "photo2cad.models.backbones": {"photo2cad.weights.pretrained"},  # up: a back-edge
        "photo2cad.service.app": {"photo2cad.models.evaluation.evaluate"},  # beside: same floor
    }
    assert floor_violations(graph) == [
        "photo2cad.models.backbones imports photo2cad.weights.pretrained: photo2cad.weights is above photo2cad.models",
        "photo2cad.service.app imports photo2cad.models.evaluation.evaluate: "
        "photo2cad.models.evaluation is beside photo2cad.service",
    ]


@pytest.mark.parametrize("name", ["models", "indexer", "service", "weights", "shapes", "cli", "core"])
def test_nothing_but_photo2cad_lands_at_the_top_of_site_packages(name: str, tmp_path: Path) -> None:
    # From an empty folder: the installed package alone decides what is importable.
    result = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr


def test_a_source_folder_imported_from_the_repository_root_refuses_with_the_real_name() -> None:
    env = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", "import models"], cwd=REPOSITORY, capture_output=True, text=True, env=env
    )
    assert result.returncode != 0 and "import photo2cad.models" in result.stderr
    works = subprocess.run(
        [sys.executable, "-c", "import photo2cad.models"], cwd=REPOSITORY, capture_output=True, text=True, env=env
    )
    assert works.returncode == 0, works.stderr
