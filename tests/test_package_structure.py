"""The public surface follows the project's conventions (after scanpy's test_package_structure)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import celltwin

#: The public packages, bottom floor first (tests/test_architecture.py holds the floors). Kept in
#: sync with the folders by test_the_list_is_the_packages_on_disk; ``cli`` is the command line,
#: not a Python API.
SUBPACKAGES = [
    "io",
    "priors",
    "pp",
    "simulate",
    "split",
    "data",
    "models",
    "testing",
    "eval",
    "explain",
    "screen",
    "pl",
    "benchmark",
]


def _public_callables():
    for sub in SUBPACKAGES:
        mod = importlib.import_module(f"celltwin.{sub}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"celltwin.{sub}.{name}", obj


def test_the_list_is_the_packages_on_disk() -> None:
    src = Path(celltwin.__file__).parent
    on_disk = {p.parent.name for p in src.glob("*/__init__.py")} - {"cli"}
    assert sorted(SUBPACKAGES) == sorted(on_disk)


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_all_names_exist(sub: str) -> None:
    mod = importlib.import_module(f"celltwin.{sub}")
    assert isinstance(getattr(mod, "__all__", None), list), f"celltwin.{sub} has no __all__ list"
    for name in mod.__all__:
        assert hasattr(mod, name), f"celltwin.{sub}.__all__ lists missing name {name!r}"
    doubles = {n for n in mod.__all__ if mod.__all__.count(n) > 1}
    assert not doubles, f"celltwin.{sub}.__all__ lists {sorted(doubles)} twice"


def test_data_first_then_keyword_only() -> None:
    """Public functions take the data (at most two positional parameters), then keyword-only options."""
    offenders = []
    for qualname, func in _public_callables():
        params = list(inspect.signature(func).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) > 2:
            offenders.append(f"{qualname}{inspect.signature(func)}")
    assert not offenders, "options must be keyword-only:\n" + "\n".join(offenders)


def test_public_functions_have_docstrings() -> None:
    missing = [q for q, f in _public_callables() if not (f.__doc__ or "").strip()]
    assert not missing, f"public functions without docstrings: {missing}"


def test_test_modules_have_unique_names() -> None:
    """Test folders are not packages, so two test files with one name break collection."""
    from collections import Counter

    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names
