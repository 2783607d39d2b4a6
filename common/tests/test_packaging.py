"""`pip install -e common` alone gives an importable package: every distribution common needs is declared."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

COMMON = Path(__file__).resolve().parents[1]
PACKAGE = COMMON / "common"
REQUIREMENTS = COMMON.parent / "requirements"
# Named as dotted paths in the settings common hands out (middleware, URL includes), not imported.
NAMED_IN_SETTINGS = {"django_prometheus", "whitenoise", "redis"}


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((COMMON / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {}).values()
    lines = [*project.get("dependencies", []), *(line for extra in extras for line in extra)]
    return {canonicalize_name(requirement.name): requirement for requirement in map(Requirement, lines)}


def imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.partition(".")[0])
    return modules - set(sys.stdlib_module_names) - {"common", "__future__"}


def pins() -> dict[str, str]:
    found = {}
    for requirements_file in REQUIREMENTS.glob("*.txt"):
        for line in requirements_file.read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s#]+)", line.strip())
            if match:
                found[canonicalize_name(match.group(1))] = match.group(3)
    return found


@pytest.mark.parametrize("module", sorted(imported_top_level_modules() | NAMED_IN_SETTINGS))
def test_each_module_common_uses_comes_from_a_declared_distribution(module):
    distributions = {canonicalize_name(name) for name in packages_distributions().get(module, [])}

    assert distributions, f"{module} is not installed at all"
    assert distributions & set(declared()), f"{module} comes from {distributions}, none declared in pyproject.toml"


@pytest.mark.parametrize("name", sorted(declared()))
def test_each_declared_range_admits_the_pinned_version(name):
    pinned = pins().get(name)

    assert pinned is not None, f"{name} is declared by common but pinned in no requirements file"
    assert declared()[name].specifier.contains(pinned), f"{name}=={pinned} is outside {declared()[name].specifier}"
