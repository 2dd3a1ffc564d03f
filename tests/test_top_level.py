"""``import celltwin as ct`` is cheap, and ``ct.io``, ``ct.models``, ... load on first use."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import celltwin

SRC = Path(celltwin.__file__).parent
ROOT = SRC.parents[1]
#: Packages that are not part of the Python API: the command line is reached as ``celltwin ...``.
NOT_ATTRIBUTES = {"cli"}
HEAVY = ("torch", "scanpy", "anndata", "pandas", "numpy", "scipy", "sklearn", "matplotlib")


def _fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this one has imported everything already)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def _public_packages() -> set[str]:
    return {
        p.parent.name
        for p in SRC.glob("*/__init__.py")
        if not p.parent.name.startswith("_") and p.parent.name not in NOT_ATTRIBUTES
    }


def test_all_is_the_public_packages_and_the_version() -> None:
    assert set(celltwin.__all__) == _public_packages() | {"__version__"}
    assert len(celltwin.__all__) == len(set(celltwin.__all__))


def test_import_loads_no_subpackage_and_no_heavy_dependency() -> None:
    code = (
        "import sys, celltwin\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('celltwin.')]\n"
        "print(sorted(loaded))"
    )
    assert _fresh(code) == "[]"


def test_attribute_loads_only_that_subpackage() -> None:
    code = (
        "import sys, celltwin as ct\n"
        "module = ct.io\n"
        "print(module.__name__, 'celltwin.models' in sys.modules, 'torch' in sys.modules)"
    )
    assert _fresh(code) == "celltwin.io False False"


@pytest.mark.parametrize("name", sorted(_public_packages()))
def test_subpackage_is_an_attribute(name: str) -> None:
    assert getattr(celltwin, name) is importlib.import_module(f"celltwin.{name}")
    assert name in dir(celltwin)


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from celltwin import *", namespace)
    assert set(celltwin.__all__) <= set(namespace)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'screens'"):
        _ = celltwin.screens
    assert not hasattr(celltwin, "cli_helpers")


def test_version_has_one_source() -> None:
    from celltwin._version import __version__

    assert celltwin.__version__ == __version__ == importlib.metadata.version("celltwin")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]
    assert _fresh("from celltwin import __version__; print(__version__)") == __version__


def test_type_hints_ship_with_the_package() -> None:
    """PEP 561: ``py.typed`` marks the package as typed and is installed with it."""
    assert (SRC / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in package_data["package-data"]["celltwin"]
